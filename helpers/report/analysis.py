"""Plausibility checks and the written analysis, computed from result dicts.

Every comparative sentence uses the same (rounded) numbers the report's tables show, so
prose cannot contradict a table. The checks flag results to look at before believing
them; they prove nothing. helpers.report puts both into report.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import grid
from ..config import SWIN_VARIANTS, problem_of

MODE_LABELS = {"finetune": "Fine-tuned (frozen backbone)", "finetune_full": "Fine-tuned (full)",
               "scratch": "From scratch"}
MODE_PROSE = {"finetune": "frozen-backbone fine-tune", "finetune_full": "full fine-tune",
              "scratch": "from scratch"}
DASH = "—"


# ----------------------------------------------------------------------------- shared
# Used by helpers.report's tables too; here because report imports this module, not back.
def is_synthetic(r: dict) -> bool:
    ds = r.get("dataset") or {}
    return bool(ds.get("synthetic")) or ds.get("name") == "synthetic"


def table_rows(runs: dict, problem: int) -> list[tuple[str, str, str, dict | None]]:
    """(run_name, label, mode, result or None) in table order: the grid, then extra runs.

    Extra runs (in the folder, not in the grid, e.g. a ViT with patch 8) follow the grid
    rows in name order; their label gets the run name when it would repeat a grid label.
    """
    entries = grid.problem1_runs() if problem == 1 else grid.problem2_runs()
    rows = [(e["run_name"], e["label"], e.get("mode", "scratch"), runs.get(e["run_name"]))
            for e in entries]
    labels = {(label, mode) for _, label, mode, _ in rows}
    for name in sorted(set(runs) - {e["run_name"] for e in entries}):
        r = runs[name]
        if r["problem"] != problem:
            continue
        label = r.get("label") or name
        mode = (r.get("config") or {}).get("mode", "scratch")
        if (label, mode) in labels:
            label = f"{label} [{name}]"
        rows.append((name, label, mode, r))
    return rows


def _fixed(x, digits: int = 2) -> str:
    return DASH if x is None else f"{x:.{digits}f}"


# ----------------------------------------------------------------------------- checks
# Credibility ceilings: the highest CIFAR-100 test accuracy (%) we find believable for a
# model family given at most N epochs (first matching row wins; None = any budget). They
# are deliberately generous upper bounds from the general literature, not from any one
# report: well-tuned CNNs trained from scratch for ~200 epochs end near 75-80 %, and far
# lower after a handful of epochs; ViTs and Swins from scratch lack the convolutional prior
# and trail CNNs on 50k small images; ImageNet-pretrained Swins fine-tuned end near
# 85-90 %, a frozen backbone with a linear head a few points lower. Exceeding a ceiling
# proves nothing; it says "look for leakage before believing this".
CEILINGS = {
    "cnn_scratch": ((10, 75.0), (50, 80.0), (None, 85.0)),
    "vit_scratch": ((10, 60.0), (50, 70.0), (None, 80.0)),
    "swin_scratch": ((10, 60.0), (50, 72.0), (None, 82.0)),
    "swin_finetune": ((None, 90.0),),
    "swin_finetune_full": ((None, 94.0),),
}
CHANCE_MARGIN = 3.0          # points above 100/num_classes that still count as "at chance"
SWIN_SCRATCH_EPOCHS = 10     # a scratch Swin beating a pretrained one this fast is suspect
LEAKAGE_CHECK = ("test-set leakage (test images or labels reaching training; the recorded "
                 "train/test overlap is {overlap}), evaluation on the test split rather than "
                 "the training split, and accuracy computed in percent of the whole test set.")


MD_SPECIALS = set("\\`*_<>|[]")


def md_escape(text: str) -> str:
    """Backslash-escape markdown syntax in free text (failure reasons): "weights=<file>"
    would otherwise read as an HTML tag and vanish from the PDF, "|" as a column break."""
    return "".join("\\" + ch if ch in MD_SPECIALS else ch for ch in text)


@dataclass
class Flag:
    check: str                   # "a" .. "d", as listed in the report
    title: str
    detail: str
    what_to_check: str
    runs: list[str] = field(default_factory=list)


def _acc(r: dict) -> float:
    """Accuracy rounded as the tables show it, so every comparison matches the tables."""
    return round(float(r["test_acc"]), 2)


def _epochs(r: dict) -> int:
    return (r.get("config") or {}).get("epochs") or len(r.get("history") or [])


def _family(r: dict) -> str | None:
    model, mode = r.get("model", ""), (r.get("config") or {}).get("mode", "scratch")
    if problem_of(model) == 2:
        return f"swin_{mode}" if mode != "scratch" else "swin_scratch"
    return {"resnet18": "cnn_scratch", "vit": "vit_scratch"}.get(model)


def ceiling(r: dict) -> float | None:
    for max_epochs, ceil in CEILINGS.get(_family(r), ()):
        if max_epochs is None or _epochs(r) <= max_epochs:
            return ceil
    return None


def _ceilings_apply(r: dict) -> bool:
    """The ceilings describe CIFAR-100; synthetic data is easy, other data unknown."""
    return (r.get("dataset") or {}).get("name") == "cifar100" and not is_synthetic(r)


def _overlap(r: dict) -> str:
    n = (r.get("dataset") or {}).get("train_test_overlap")
    return "not recorded" if n is None else f"{n} image(s)"


def plausibility_flags(runs: dict) -> list[Flag]:
    """(a) scratch Swin beating its fine-tune fast, (b) accuracy above the credibility
    ceiling (real data only), (c) accuracy at chance, (d) failed/skipped/missing runs."""
    flags = []
    done = {n: r for n, r in runs.items() if r["status"] == "complete"}
    for v in SWIN_VARIANTS:
        sc = done.get(f"p2-swin_{v}-scratch")
        for mode in ("finetune", "finetune_full"):
            ft = done.get(f"p2-swin_{v}-{mode}")
            if sc and ft and _epochs(sc) <= SWIN_SCRATCH_EPOCHS and _acc(sc) > _acc(ft):
                note = (" On synthetic data ImageNet features need not help, so this may be "
                        "benign here." if is_synthetic(sc) else "")
                flags.append(Flag(
                    "a", f"Swin-{v.capitalize()} from scratch beats its pretrained "
                         f"{MODE_PROSE[mode]} within {_epochs(sc)} epochs",
                    f"`{sc['run_name']}` {_acc(sc):.2f} % vs `{ft['run_name']}` "
                    f"{_acc(ft):.2f} %.{note}",
                    "were the pretrained weights really loaded (config.weights, timm tag) and "
                    "is it the intended ImageNet checkpoint; was the 1000-class head replaced "
                    "by a fresh one; " + LEAKAGE_CHECK.format(overlap=_overlap(sc)),
                    [sc["run_name"], ft["run_name"]]))
    for n, r in done.items():
        ceil = ceiling(r) if _ceilings_apply(r) else None
        if ceil is not None and _acc(r) > ceil:
            flags.append(Flag(
                "b", f"`{n}` is above the credible ceiling for its model and budget",
                f"{_acc(r):.2f} % after {_epochs(r)} epochs; ceiling {ceil:.0f} % "
                f"({_family(r)}).", LEAKAGE_CHECK.format(overlap=_overlap(r)), [n]))
    for n, r in done.items():
        chance = 100.0 / ((r.get("dataset") or {}).get("num_classes") or 100)
        if _acc(r) <= chance + CHANCE_MARGIN:
            flags.append(Flag(
                "c", f"`{n}` is at chance", f"{_acc(r):.2f} % vs chance {chance:.2f} %.",
                "does the training loss fall at all; is the learning rate too high "
                "(divergence) or too low; are labels aligned with images; is the input "
                "normalised; for a fine-tune, were pretrained weights loaded.", [n]))
    grid_names = [e["run_name"] for e in grid.grid()]
    for label, names, hint in (
        ("missing (not run)", [n for n in grid_names if n not in runs],
         "run them (the runner skips finished runs and resumes from checkpoints)."),
        ("failed", [n for n, r in runs.items() if r["status"] == "failed"],
         "the reason above and the run's log; rerunning resumes from its checkpoint."),
        ("skipped", [n for n, r in runs.items() if r["status"] == "skipped"],
         "the reason above (e.g. pretrained weights unavailable offline: pass a local "
         "weights file)."),
    ):
        if names:
            detail = "`" + "`, `".join(names) + "`."
            reasons = {}                         # each distinct reason once, with its runs
            for n in names:
                if n in runs:
                    reason = " ".join(str(runs[n].get("reason") or "no reason recorded").split())
                    reasons.setdefault(reason, []).append(n)
            for reason, which in reasons.items():
                detail += f" Reason (`{'`, `'.join(which)}`): {md_escape(reason)}"
            flags.append(Flag("d", f"{len(names)} run(s) {label}", detail, hint, names))
    return flags


# ----------------------------------------------------------------------------- analysis
def _done_rows(runs: dict, problem: int, grid_only: bool = False) -> list:
    names = {e["run_name"] for e in grid.grid()}
    return [row for row in table_rows(runs, problem) if row[3] and row[3]["status"] ==
            "complete" and (row[0] in names or not grid_only)]


def _ratio(a, b) -> str:
    return "n/a" if a is None or b is None or not b else f"{a / b:.2f}×"


def _lead(d: float, a: str, b: str, ra: dict | None = None, rb: dict | None = None) -> str:
    """'a is ahead by 1.23 points' / 'b is ahead ...' / 'a and b tie'; d = acc(a) - acc(b).

    Given the two results, a gap smaller than two standard errors of the difference of
    two accuracies measured on n_test images each is called noise, so a one-image
    difference on a small test set is not read as a ranking.
    """
    if d == 0:
        return f"{a} and {b} tie"
    return f"{a if d > 0 else b} is ahead by {abs(d):.2f} points" + _noise_note(d, ra, rb)


def _noise_note(d: float, ra: dict | None, rb: dict | None) -> str:
    if not _noisy(d, ra, rb):
        return ""
    n = min(r["dataset"]["n_test"] for r in (ra, rb))
    return (f" (within noise: two standard errors are {_two_se(ra, rb):.2f} points at "
            f"{n} test images)")


def _two_se(ra: dict | None, rb: dict | None) -> float | None:
    """Two standard errors (points) of the difference of two test accuracies."""
    n = min(((r or {}).get("dataset") or {}).get("n_test") or 0 for r in (ra, rb))
    if not (ra and rb and n):
        return None
    pa, pb = _acc(ra) / 100, _acc(rb) / 100
    return 200 * ((pa * (1 - pa) + pb * (1 - pb)) / n) ** 0.5


def _noisy(d: float, ra: dict | None, rb: dict | None) -> bool:
    two_se = _two_se(ra, rb)
    return two_se is not None and abs(d) < two_se


def analysis_problem1(runs: dict) -> str:
    out = ["### Problem 1: ResNet-18 vs ViT"]
    rows = _done_rows(runs, 1)
    if not rows:
        return out[0] + "\n\nNo complete Problem 1 run yet, so there is nothing to compare."
    synthetic = any(is_synthetic(r) for *_, r in rows)
    ranked = sorted(rows, key=lambda row: -_acc(row[3]))     # stable: ties keep table order
    (_, bl, _, br), rest = ranked[0], ranked[1:]
    if not rest:
        out.append(f"**Best model:** {bl} with {_acc(br):.2f} % test accuracy "
                   "(the only complete run).")
    elif _acc(rest[0][3]) == _acc(br):
        out.append(f"**Best model:** {bl} and {rest[0][1]} tie at {_acc(br):.2f} %.")
    else:
        (_, sl, _, sr), d = rest[0], _acc(br) - _acc(rest[0][3])
        out.append(f"**Best model:** {bl} with {_acc(br):.2f} % test accuracy, {d:.2f} points "
                   f"ahead of the runner-up, {sl}, at {_acc(sr):.2f} %{_noise_note(d, br, sr)}.")
    res = runs.get("p1-resnet18") if any(row[0] == "p1-resnet18" for row in rows) else None
    vits = [row for row in rows if row[3].get("model") == "vit"]
    if res and vits:
        _, vl, _, vr = max(vits, key=lambda row: _acc(row[3]))
        d = _acc(res) - _acc(vr)
        out.append(f"**ResNet-18 vs the best ViT:** ResNet-18 reaches {_acc(res):.2f} % and the "
                   f"best ViT, {vl}, {_acc(vr):.2f} %: {_lead(d, 'ResNet-18', vl, res, vr)}. "
                   f"{vl} has "
                   f"{_ratio(vr.get('params'), res.get('params'))} the parameters, "
                   f"{_ratio(vr.get('flops'), res.get('flops'))} the exact FLOPs and "
                   f"{_ratio(vr.get('epoch_time_s'), res.get('epoch_time_s'))} the training "
                   "time per epoch of ResNet-18.")
        if synthetic:
            out.append("No explanation is drawn from this: the data is synthetic.")
        elif _noisy(d, res, vr):
            out.append("No explanation is drawn from a gap within noise.")
        elif d > 0:
            out.append("This matches the usual picture for small images and modest data: "
                       "convolutions build in locality and translation equivariance, which a "
                       "ViT has to learn from data, and "
                       f"{(res.get('dataset') or {}).get('n_train', 'the')} training images "
                       "are few for that. ResNet-18 wins with "
                       f"{_ratio(res.get('params'), vr.get('params'))} the parameters and "
                       f"{_ratio(res.get('flops'), vr.get('flops'))} the FLOPs of {vl}.")
        elif d < 0:
            out.append("This runs against the usual expectation that ResNet-18 beats ViTs "
                       "trained from scratch on small images with a short budget; no "
                       "explanation is offered here, see the plausibility checks below.")
    presets = [f"p1-vit-{k}" for k in grid.VIT_PRESETS]
    sized = sorted((row for row in rows if row[0] in presets),
                   key=lambda row: (row[3].get("params") or 0, presets.index(row[0])))
    if len(sized) >= 2:
        accs = [_acc(r) for *_, r in sized]
        steps = [b - a for a, b in zip(accs, accs[1:])]
        if all(s > 0 for s in steps):
            shape = "rises monotonically with size"
        elif all(s < 0 for s in steps):
            shape = "falls monotonically with size"
        else:
            peak = sized[accs.index(max(accs))]
            shape = f"is not monotone in size: it peaks at {peak[1]}, with {max(accs):.2f} %"
        seq = " → ".join(f"{label} {a:.2f} %" for (_, label, _, _), a in zip(sized, accs))
        small, large = sized[0][3], sized[-1][3]
        out.append(f"**ViT size:** ordered by parameters, {seq}. Test accuracy {shape}. "
                   f"From the smallest to the largest ViT: "
                   f"{_ratio(large.get('params'), small.get('params'))} the parameters, "
                   f"{accs[-1] - accs[0]:+.2f} points.")
    return "\n\n".join(out)


def analysis_problem2(runs: dict, flags: list[Flag] = ()) -> str:
    out = ["### Problem 2: Swin, fine-tuned vs from scratch"]
    done = {row[0]: row[3] for row in _done_rows(runs, 2, grid_only=True)}
    if not done:
        return out[0] + "\n\nNo complete Problem 2 run yet, so there is nothing to compare."
    synthetic = any(is_synthetic(r) for r in done.values())
    flagged = {n for f in flags if f.check == "a" for n in f.runs}
    for v in SWIN_VARIANTS:
        name, get = f"Swin-{v.capitalize()}", (lambda m, v=v: done.get(f"p2-swin_{v}-{m}"))
        sc, fts = get("scratch"), [(m, get(m)) for m in ("finetune_full", "finetune") if get(m)]
        if sc and fts:
            bm, bft = max(fts, key=lambda mr: _acc(mr[1]))
            d = _acc(bft) - _acc(sc)
            parts = ", ".join(f"{MODE_PROSE[m]} {_acc(r):.2f} %" for m, r in fts)
            out.append(f"**{name}, fine-tuned vs from scratch:** {parts}; from scratch "
                       f"{_acc(sc):.2f} %. " + _cap(_lead(d, f"the {MODE_PROSE[bm]}",
                                                          "training from scratch", bft, sc)) + ".")
            if d > 0 and not synthetic and not _noisy(d, bft, sc):
                out.append(f"Pretraining transfers: ImageNet features give the fine-tune a head "
                           f"start that a Swin trained from scratch on "
                           f"{(sc.get('dataset') or {}).get('n_train', 'these')} images does "
                           f"not make up within {_epochs(sc)} epochs.")
            elif d < 0 and not _noisy(d, bft, sc):
                see = ("flag (a) under " if sc["run_name"] in flagged else "") + \
                    "the plausibility checks below"
                out.append(f"No explanation is drawn from this: the data is synthetic "
                           f"(see {see})." if synthetic else "This contradicts the usual "
                           "expectation that ImageNet pretraining wins at this budget; rather "
                           f"than explain it, see {see}.")
        elif sc or fts:
            lacking = [f"`p2-swin_{v}-{m}`" for m in ("scratch", "finetune_full", "finetune")
                       if not get(m)]
            out.append(f"**{name}, fine-tuned vs from scratch:** not comparable yet; "
                       f"{', '.join(lacking)} did not complete.")
        fr, fu = get("finetune"), get("finetune_full")
        if fr and fu:
            tf, tu = (_round(r.get("epoch_time_s")) for r in (fr, fu))
            d = _acc(fu) - _acc(fr)
            speed = ("" if tf is None or tu is None or tf == tu else
                     f" (the frozen backbone is {_ratio(max(tf, tu), min(tf, tu))} "
                     f"{'faster' if tf < tu else 'slower'})")
            out.append(f"**{name}, frozen backbone vs full fine-tuning:** {_fixed(tf)} s vs "
                       f"{_fixed(tu)} s per epoch{speed}; "
                       + _lead(d, "full fine-tuning", "the frozen backbone", fu, fr) + ".")
            if d > 0 and not synthetic and not _noisy(d, fu, fr):
                out.append("A frozen backbone only learns a linear read-out of fixed ImageNet "
                           "features, which cannot adapt to new classes and upsampled images; "
                           "full fine-tuning adapts them, paying for a backward pass through "
                           "the whole network.")
            elif d < 0 and not synthetic and not _noisy(d, fu, fr):
                out.append("Full fine-tuning usually wins given enough epochs; that it does "
                           "not here is not explained, see the plausibility checks below.")
    for m, label in MODE_LABELS.items():
        t, s = done.get(f"p2-swin_tiny-{m}"), done.get(f"p2-swin_small-{m}")
        if t and s:
            out.append(f"**Swin-Small vs Swin-Tiny, {label.lower()}:** "
                       + _lead(_acc(s) - _acc(t), "Swin-Small", "Swin-Tiny", s, t)
                       + f", at {_ratio(s.get('epoch_time_s'), t.get('epoch_time_s'))} "
                         "the time per epoch.")
    sizes = sorted({(r.get("config") or {}).get("img_size") for r in done.values()} - {None})
    if sizes and sizes != [32]:
        out.append(f"**Resolution:** the Swin runs take {', '.join(map(str, sizes))}-px inputs, "
                   "so the 32-px images are upsampled; the pretrained features were learned on "
                   "native-resolution ImageNet photos, and the blurry upsampled inputs are a "
                   "shift the fine-tune has to absorb, while every epoch pays the compute of "
                   "the larger input for 32 px of information.")
    return "\n\n".join(out)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _round(x):
    return None if x is None else round(float(x), 2)


def flags_md(flags: list[Flag], runs: dict) -> str:
    lines = [f"- **FLAG ({f.check}) {f.title}.** {f.detail} *Check:* {f.what_to_check}"
             for f in flags] or ["No plausibility flag raised."]
    done = [n for n, r in runs.items() if r["status"] == "complete"]
    exempt = [n for n in done if not _ceilings_apply(runs[n])]
    if exempt:
        scope = "" if len(exempt) == len(done) else f" to `{'`, `'.join(exempt)}`"
        why = ("the data is synthetic, where high accuracy is easy and says nothing about "
               "CIFAR-100" if all(is_synthetic(runs[n]) for n in exempt) else
               "the ceilings are calibrated for CIFAR-100 only")
        lines.append(f"\n*Check (b), the credibility ceilings, is not applied{scope}: {why}.*")
    lines.append(f"\n*The checks:* (a) a Swin trained from scratch for at most "
                 f"{SWIN_SCRATCH_EPOCHS} epochs beating its pretrained fine-tune; (b) test "
                 "accuracy above a credible ceiling for the model family and epoch budget "
                 "(documented in `helpers/analysis.py`); (c) test accuracy within "
                 f"{CHANCE_MARGIN:.0f} points of chance (100 / number of classes); (d) a "
                 "failed, skipped or missing run.")
    return "\n".join(lines)
