"""The report: tables, plausibility flags and written analysis, rendered from result files.

Nothing here trains or measures. Every number in report.md is read from a
`<results_dir>/<run_name>.json` file, and every comparative sentence is computed from
the same (rounded) numbers the tables show, so prose cannot contradict a table. Rows
come from `helpers.grid`, so a run that never finished is a marked row, not a gap.

    python -m helpers.report results --out report.md --figures figures
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass, field

import pandas as pd

from . import grid

STATUSES = ("complete", "failed", "skipped")
REQUIRED_KEYS = ("run_name", "problem", "status")
MODE_LABELS = {"finetune": "Fine-tuned (frozen backbone)", "finetune_full": "Fine-tuned (full)",
               "scratch": "From scratch"}
TABLE1_COLUMNS = ["Model", "# Params (M)", "MACs (thop, M)", "FLOPs exact (M)",
                  "Train time/epoch (s)", "Test accuracy (%)"]
TABLE2_COLUMNS = ["Model", "Training mode", "Trainable params (M)", "Avg epoch time (s)",
                  "Test accuracy (%)"]
TEXT_COLUMNS = ("Model", "Training mode")
MD_SPECIALS = set("\\`*_<>|[]")
MODE_PROSE = {"finetune": "frozen-backbone fine-tune", "finetune_full": "full fine-tune",
              "scratch": "from scratch"}
MISSING = "missing — not run"
DASH = "—"
DEMO_BANNER = "> **DEMO on synthetic data — these are not CIFAR-100 results.**"


# ----------------------------------------------------------------------------- loading
def load_runs(results_dir: str) -> dict[str, dict]:
    """run_name -> result dict for every `*.json` directly in `results_dir`.

    Read here rather than through helpers.results.load_results: the report needs the
    nested dicts (config, dataset, provenance, history) as they are, and checks each file.
    Hidden files (the `.tmp-*.json` of an unfinished atomic write) are skipped.
    """
    if not os.path.isdir(results_dir):
        raise FileNotFoundError(f"results_dir={results_dir!r} is not a folder; run the "
                                "experiments first or point results_dir at the folder "
                                "holding the <run_name>.json files")
    runs: dict[str, dict] = {}
    for name in sorted(os.listdir(results_dir)):
        path = os.path.join(results_dir, name)
        if not name.endswith(".json") or name.startswith(".") or not os.path.isfile(path):
            continue
        try:
            with open(path) as f:
                r = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
        missing = [k for k in REQUIRED_KEYS if k not in r]
        if missing:
            raise ValueError(f"{path}: missing key(s) {missing}; "
                             f"every result needs {REQUIRED_KEYS}")
        if r["status"] not in STATUSES:
            raise ValueError(f"{path}: status={r['status']!r}; valid statuses: {STATUSES}")
        if r["problem"] not in (1, 2):
            raise ValueError(f"{path}: problem={r['problem']!r}; valid problems: 1, 2")
        if r["status"] == "complete" and r.get("test_acc") is None:
            raise ValueError(f"{path}: status is 'complete' but test_acc is missing")
        if r["run_name"] in runs:
            raise ValueError(f"{path}: run_name {r['run_name']!r} also appears in another file")
        runs[r["run_name"]] = r
    return runs


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


# ----------------------------------------------------------------------------- tables
def _millions(x, digits: int) -> str:
    return DASH if x is None else f"{x / 1e6:.{digits}f}"


def _fixed(x, digits: int = 2) -> str:
    return DASH if x is None else f"{x:.{digits}f}"


def status_text(r: dict | None) -> str | None:
    """What a non-complete row shows instead of its accuracy; None for complete runs."""
    if r is None:
        return MISSING
    if r["status"] == "complete":
        return None
    reason = " ".join(str(r.get("reason") or "no reason recorded").split())
    return f"{r['status']}: {reason[:100]}"


def table1(runs: dict) -> pd.DataFrame:
    """Problem 1 as display strings, indexed by run name, columns TABLE1_COLUMNS."""
    rows, names = [], []
    for name, label, _, r in table_rows(runs, 1):
        r_, status = r or {}, status_text(r)
        names.append(name)
        rows.append([label, _millions(r_.get("params"), 2), _millions(r_.get("macs_thop"), 1),
                     _millions(r_.get("flops"), 1),
                     DASH if status else _fixed(r_.get("epoch_time_s")),
                     status or _fixed(r_["test_acc"])])
    return pd.DataFrame(rows, columns=TABLE1_COLUMNS, index=pd.Index(names, name="run"))


def table2(runs: dict) -> pd.DataFrame:
    """Problem 2 as display strings, indexed by run name, columns TABLE2_COLUMNS."""
    rows, names = [], []
    for name, label, mode, r in table_rows(runs, 2):
        r_, status = r or {}, status_text(r)
        names.append(name)
        rows.append([label, MODE_LABELS.get(mode, mode),
                     _millions(r_.get("trainable_params"), 2),
                     DASH if status else _fixed(r_.get("epoch_time_s")),
                     status or _fixed(r_["test_acc"])])
    return pd.DataFrame(rows, columns=TABLE2_COLUMNS, index=pd.Index(names, name="run"))


def to_markdown(df: pd.DataFrame) -> str:
    """A pipe table (the index is not shown). Dash counts follow the column widths, which
    pandoc uses as relative widths when the table is wider than a page (the PDF)."""
    def cell(v):
        # Backslash-escape markdown syntax: a reason like "pass weights=<file>" would
        # otherwise be read as an HTML tag (and vanish from the PDF), a "|" as a column break.
        return "".join("\\" + ch if ch in MD_SPECIALS else ch for ch in " ".join(str(v).split()))
    head = [cell(c) for c in df.columns]
    body = [[cell(v) for v in row] for row in df.itertuples(index=False)]
    # Text columns left-aligned, number columns right-aligned. Pandoc sizes the PDF's
    # columns by dash count: a number column's header may wrap (its longest word counts),
    # and clamping keeps a long failure reason from squeezing the other columns.
    dashes = []
    for i, h in enumerate(head):
        cells = [len(row[i]) for row in body]
        if h in TEXT_COLUMNS:
            dashes.append(min(max([len(h), 16] + cells), 30))
        else:
            dashes.append(min(max([len(w) for w in h.split()] + [10] + cells), 20))
    pads = [max(d, len(h)) for h, d in zip(head, dashes)]    # spaces after dashes don't count
    rule = [("-" * d if h in TEXT_COLUMNS else "-" * (d - 1) + ":").ljust(p)
            for h, d, p in zip(head, dashes, pads)]

    def line(row):
        return "| " + " | ".join(c.ljust(p) if h in TEXT_COLUMNS else c.rjust(p)
                                 for c, h, p in zip(row, head, pads)) + " |"
    return "\n".join([line(head), "| " + " | ".join(rule) + " |"] + [line(r) for r in body])


def time_note(runs: dict, problem: int) -> str:
    """How 'time per epoch' is defined, as recorded by the runs themselves."""
    notes: dict[str, list[str]] = {}
    for name, _, _, r in table_rows(runs, problem):
        if r and r["status"] == "complete" and r.get("epoch_time_note"):
            notes.setdefault(r["epoch_time_note"], []).append(name)
    text = ("*Time* is the mean wall-clock training time per epoch, in seconds. "
            "How each run averaged it, as recorded in its result file: ")
    if not notes:
        return text + "no complete run recorded a note."
    if len(notes) == 1:
        return text + f"{next(iter(notes))}."
    return text + "; ".join(f"{n} (`{'`, `'.join(names)}`)" for n, names in notes.items()) + "."


# ----------------------------------------------------------------------------- header
def _agree(values: dict[str, object]) -> str:
    """One value when all runs agree, else each value with the runs that have it."""
    groups: dict[str, list[str]] = {}
    for name, v in values.items():
        groups.setdefault("unknown" if v is None else str(v), []).append(name)
    if len(groups) <= 1:
        return next(iter(groups), "unknown")
    ranked = sorted(groups.items(), key=lambda kv: -len(kv[1]))   # the majority first

    def who(names, i):
        return f"{len(names)} runs" if i == 0 and len(names) > 3 else f"`{'`, `'.join(names)}`"
    return "; ".join(f"{v} ({who(names, i)})" for i, (v, names) in enumerate(ranked))


def report_title(runs: dict) -> str:
    """Plain-text title; never claims CIFAR-100 unless every run used CIFAR-100."""
    names = {(r.get("dataset") or {}).get("name") for r in runs.values()}
    if not runs:
        return "HW6 report: no results yet"
    if any(is_synthetic(r) for r in runs.values()):
        return "Pipeline demo on synthetic data (not CIFAR-100): ResNet-18, ViT and Swin"
    if names == {"cifar100"}:
        return "CIFAR-100: ResNet-18 vs ViT from scratch, and Swin fine-tuned vs from scratch"
    return f"Results on {', '.join(sorted(map(str, names)))}: ResNet-18, ViT and Swin"


def header_md(runs: dict, flags: list[Flag] | None = None) -> str:
    """Banner (synthetic data), title, and where the numbers came from."""
    lines = []
    synthetic = [n for n, r in runs.items() if is_synthetic(r)]
    if synthetic:
        lines.append(DEMO_BANNER if len(synthetic) == len(runs) else
                     DEMO_BANNER + f" (runs on synthetic data: `{'`, `'.join(synthetic)}`)")
        lines.append("")
    lines += [f"# {report_title(runs)}", ""]

    def ds(r):
        d = r.get("dataset") or {}
        return (f"{d.get('name', 'unknown')}, {d.get('num_classes', '?')} classes, "
                f"{d.get('n_train', '?')} train / {d.get('n_test', '?')} test images")

    prov = {n: r.get("provenance") or {} for n, r in runs.items()}
    dates = sorted({str(p.get(k))[:10] for p in prov.values() for k in ("started", "finished")
                    if p.get(k)})
    commits = {n: (p["git_commit"][:10] + (" (dirty)" if p.get("git_dirty") else ""))
               if p.get("git_commit") else None for n, p in prov.items()}
    grid_names = [e["run_name"] for e in grid.grid()]
    counts = {s: sum(1 for n in grid_names if n in runs and runs[n]["status"] == s)
              for s in STATUSES}
    missing = sum(1 for n in grid_names if n not in runs)
    extra = len(set(runs) - set(grid_names))
    lines += [
        f"- **Dataset:** {_agree({n: ds(r) for n, r in runs.items()})}",
        f"- **Budget (epochs per run):** "
        f"{_agree({n: (r.get('config') or {}).get('epochs') for n, r in runs.items()})}",
        f"- **Device(s):** {_agree({n: p.get('device') for n, p in prov.items()})}",
        f"- **Date(s):** {', '.join(dates) or 'unknown'}",
        f"- **Git commit(s):** {_agree(commits)}",
        f"- **Runs:** {len(grid_names)} in the grid: {counts['complete']} complete, "
        f"{counts['failed']} failed, {counts['skipped']} skipped, {missing} missing"
        + (f"; {extra} extra run(s) outside the grid" if extra else ""),
    ]
    if flags is not None:
        lines.append(f"- **Plausibility flags raised:** {len(flags)} (listed at the end)")
    return "\n".join(lines)


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
    if model.startswith("swin"):
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
    for v in grid.SWIN_VARIANTS:
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
         "the reason in the table and the run's log; rerunning resumes from its checkpoint."),
        ("skipped", [n for n, r in runs.items() if r["status"] == "skipped"],
         "the reason in the table (e.g. pretrained weights unavailable offline: pass a local "
         "weights file)."),
    ):
        if names:
            flags.append(Flag("d", f"{len(names)} run(s) {label}",
                              "`" + "`, `".join(names) + "`.", hint, names))
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
    for v in grid.SWIN_VARIANTS:
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


# ----------------------------------------------------------------------------- report
class Table:
    """A table that shows as a DataFrame (HTML) in Jupyter and as a pipe table in
    markdown, which nbconvert's LaTeX exporter turns into a real table in the PDF."""

    def __init__(self, df: pd.DataFrame):
        self.df = df

    def _repr_html_(self):
        return self.df.to_html()

    def _repr_markdown_(self):
        return to_markdown(self.df)

    def __repr__(self):
        return self.df.to_string()


@dataclass
class Report:
    results_dir: str
    runs: dict
    flags: list[Flag]
    figures: dict[str, str] = field(default_factory=dict)   # name -> PNG path

    @property
    def title(self) -> str:
        return report_title(self.runs)

    def sections(self, base_dir: str = ".") -> dict[str, str]:
        """The report's markdown, by section; figure links are relative to base_dir."""
        figs = "\n\n".join(f"![{FIGURE_CAPTIONS.get(k, k)}]({os.path.relpath(p, base_dir)})"
                           for k, p in self.figures.items()) or "*Figures not rendered.*"
        return {
            "header": header_md(self.runs, self.flags),
            "table1": "## Problem 1: ResNet-18 vs ViT (from scratch)\n\n"
                      + to_markdown(table1(self.runs)) + "\n\n" + time_note(self.runs, 1)
                      + " MACs are counted by thop (conv/linear layers); exact FLOPs by "
                        "PyTorch's FLOP counter (2 per multiply-add); both for one image.",
            "table2": "## Problem 2: Swin-Tiny and Swin-Small\n\n" + to_markdown(table2(self.runs))
                      + "\n\n" + time_note(self.runs, 2),
            "figures": "## Figures\n\n" + figs,
            "analysis": "## Analysis\n\n" + analysis_problem1(self.runs) + "\n\n"
                        + analysis_problem2(self.runs, self.flags),
            "flags": "## Plausibility checks\n\n" + flags_md(self.flags, self.runs),
        }

    def markdown(self, base_dir: str = ".") -> str:
        return "\n\n".join(self.sections(base_dir).values()) + "\n"

    def show(self, part: str) -> None:
        """Display one part in a notebook: header, tables, figures, analysis or flags."""
        from IPython.display import Image, Markdown, display
        s = self.sections()
        if part == "tables":
            for p, df in ((1, table1(self.runs)), (2, table2(self.runs))):
                text = s[f"table{p}"]
                display(Markdown(text.split("\n\n")[0]), Table(df),
                        Markdown(text.split("\n\n", 2)[2]))
        elif part == "figures":
            display(Markdown("## Figures"))
            for k, p in self.figures.items():
                display(Markdown(f"**{FIGURE_CAPTIONS.get(k, k)}**"), Image(filename=p))
        elif part in s:
            display(Markdown(s[part]))
        else:
            raise ValueError(f"part={part!r}; valid parts: header, tables, figures, "
                             "analysis, flags")


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
                 "(documented in `helpers/report.py`); (c) test accuracy within "
                 f"{CHANCE_MARGIN:.0f} points of chance (100 / number of classes); (d) a "
                 "failed, skipped or missing run.")
    return "\n".join(lines)


FIGURE_CAPTIONS = {
    "curves": "Test accuracy and test loss per epoch, every run",
    "p1_acc_vs_params": "Problem 1: test accuracy vs parameters (log scale)",
    "p1_acc_vs_flops": "Problem 1: test accuracy vs exact FLOPs per image (log scale)",
    "p2_time_vs_acc": "Problem 2: test accuracy vs training time per epoch",
}


def build_report(results_dir: str, figures_dir: str | None = "figures") -> Report:
    """Load results, run the checks and (unless figures_dir is None) draw the figures."""
    runs = load_runs(results_dir)
    figures = {}
    if figures_dir is not None:
        from .figures import make_figures
        figures = make_figures(runs, figures_dir)
    return Report(results_dir, runs, plausibility_flags(runs), figures)


def write_report(results_dir: str, out_md: str = "report.md",
                 figures_dir: str | None = "figures") -> Report:
    """Write report.md (atomically: a reader never sees half a report); returns the Report."""
    rep = build_report(results_dir, figures_dir)
    out_dir = os.path.dirname(os.path.abspath(out_md))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".tmp-", suffix=".md")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(rep.markdown(out_dir))
        os.chmod(tmp, 0o644)                      # mkstemp's 0600 would hide it from others
        os.replace(tmp, out_md)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return rep


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="Render report.md and figures from result JSONs.")
    ap.add_argument("results_dir", nargs="?", default="results")
    ap.add_argument("--out", default="report.md")
    ap.add_argument("--figures", default="figures")
    args = ap.parse_args(argv)
    try:
        rep = write_report(args.results_dir, args.out, args.figures)
    except (FileNotFoundError, ValueError) as err:     # no folder, or a malformed result file
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({len(rep.runs)} result files, {len(rep.flags)} flag(s)) "
          f"and {len(rep.figures)} figures in {args.figures}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
