"""Problem 3 in the report: a verdict per claim of the homework, computed from the runs,
and the report's section that shows them beside the studies' tables and figures.

A verdict is one of VERDICTS. Each rests on contrasts of accuracies (a difference, or a
difference of differences) judged by the report's one noise rule (stats.py), the rule the
analysis of Problems 1-2 uses, on the same seeds (seeds.averageable). What a verdict
means for each claim is in its function's docstring. A verdict drawn from synthetic data
is marked as a demo (`Verdict.shown`).
"""
from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass

from .. import grid
from ..config import RANDOM_INIT, models_of
from .analysis import vit_ladder
from .seeds import averageable, by_row
from .stats import (DASH, Contrast, Term, contrast, direction, judged, overall, seed_of,
                    spread, steps, term)
from .tables import (MODE_LABELS, MODE_PROSE, done_rows, figure_md, is_demo, md_escape,
                     md_table, missing_rows, pct, ratio, shown_acc)

VERDICTS = ("supported", "not supported", "within noise", "cannot tell", "not run")
CLAIMS = {
    1: "ViTs trail a CNN on small data for lack of inductive bias, and close the gap with "
       "more data.",
    2: "ViTs generalise poorly on small data: they overfit.",
    3: "Self-attention relates the whole image, while a CNN stays local.",
    4: "Pretrained Swin features transfer poorly because CIFAR images are 32 px against "
       "ImageNet's 224.",
    5: "Five epochs are not enough for the freshly initialised head to adapt.",
    6: "Larger models are better, but cost more.",
}
CLAIM_FIGURE = {1: "claims_data", 2: "claims_data", 3: "claims_attention",
                4: "claims_resolution", 5: "claims_epochs", 6: None}
CLAIM_CAPTIONS = {
    "claims_data": "Problem 3, data efficiency: test accuracy (solid) and accuracy on a fixed "
                   "train sample (dashed) against training images, at matched optimiser steps",
    "claims_attention": "Problem 3, how far models look: each ViT's mean attention distance "
                        "per block and head, and ResNet-18's receptive field per stage",
    "claims_resolution": "Problem 3, resolution: Swin-Tiny fine-tuned at each input size, "
                         "test accuracy and training time per epoch",
    "claims_epochs": "Problem 3, epochs: test accuracy after each epoch, frozen vs full "
                     "fine-tune at the largest input size",
}


@dataclass(frozen=True)
class Verdict:
    claim: int
    verdict: str                # one of VERDICTS
    evidence: str               # the numbers it rests on, as sentences
    demo: bool = False          # drawn from synthetic data

    @property
    def shown(self) -> str:
        """The verdict as the report writes it: a demo's says so (except 'not run')."""
        if self.demo and self.verdict != "not run":
            return f"{self.verdict} (demo data, not a finding)"
        return self.verdict


# ----------------------------------------------------------------------------- gathering
def grouped(runs: dict, keep) -> dict[str, list[dict]]:
    """Complete results for which keep(r) holds, by grid row: the seeds the tables average
    (seeds.averageable), so a claim and a table rest on the same seeds."""
    groups = by_row(runs, lambda r: r.get("status") == "complete" and keep(r))
    out = {row: averageable(row, rs)[1] for row, rs in groups.items()}
    return {row: rs for row, rs in out.items() if rs}


def study_points(runs: dict, study: str, key: str, by: str) -> dict[str, dict]:
    """{group: {x: [seed results]}} of one Problem 3 study: group by the result's `by`
    (label or config mode), x the config value `key` (train_fraction or img_size)."""
    out: dict[str, dict] = {}
    for rs in grouped(runs, lambda r: (r.get("config") or {}).get("study") == study).values():
        cfg = rs[0]["config"]
        group = rs[0]["label"] if by == "label" else cfg[by]
        out.setdefault(group, {})[cfg[key] or 1.0] = rs
    return out


# ----------------------------------------------------------------------------- claims 1, 2
def _data_pairs(runs: dict):
    """(ResNet-18's points, {ViT label: points}, the shares they all have, smallest first)
    of the data study, or None when it lacks ResNet-18 or a ViT at two such shares."""
    points = study_points(runs, "data_efficiency", "train_fraction", "label")
    model = {label: next(iter(by_x.values()))[0]["model"] for label, by_x in points.items()}
    res = next((v for k, v in points.items() if model[k] == "resnet18"), None)
    vits = {k: v for k, v in points.items() if model[k] == "vit"}
    if not res or not vits:
        return None
    shares = sorted(set(res).intersection(*(set(v) for v in vits.values())))
    return (res, vits, shares) if len(shares) >= 2 else None


def claim1(runs: dict) -> Verdict:
    """Supported when, for every ViT, ResNet-18 leads it at the smallest share beyond noise
    and that lead shrinks beyond noise at every step to the next share (a trend, judged
    step by step); not supported when a ViT does not trail, or the lead grows at a step,
    beyond noise."""
    pairs = _data_pairs(runs)
    if pairs is None:
        return Verdict(1, "not run", "The data-efficiency study has no ResNet-18 and ViT "
                                     "runs at two shares of the data.")
    res, vits, shares = pairs
    verdicts, parts = [], []
    for label, v in vits.items():
        leads = [contrast([term(res[x]), term(v[x], sign=-1)]) for x in shares]
        closes = [contrast([term(res[a]), term(v[a], sign=-1), term(res[b], sign=-1),
                            term(v[b])])
                  for a, b in zip(shares, shares[1:])]
        verdicts.append(direction(leads[0]) if direction(leads[0]) != "supported"
                        else overall([direction(c) for c in closes]))
        parts.append(f"{label}: ResNet-18's lead is {leads[0].value:+.2f} points at "
                     f"{pct(shares[0])} of the data ({leads[0].note}), then " + ", ".join(
                         f"{lead.value:+.2f} at {pct(x)}" for lead, x in zip(leads[1:], shares[1:]))
                     + "; step by step it changes by " + ", ".join(
                         f"{-c.value:+.2f} ({c.mark}; {c.note})" for c in closes))
    return Verdict(1, overall(verdicts), "; ".join(parts) + ".")


def claim2(runs: dict) -> Verdict:
    """Supported when, at the smallest share, every ViT's train - test gap exceeds
    ResNet-18's beyond noise; not supported when one falls short beyond noise (a ViT that
    fits its training images no better than new ones underfits, it does not overfit)."""
    pairs = _data_pairs(runs)
    if pairs is None:
        return Verdict(2, "not run", "The data-efficiency study has no ResNet-18 and ViT "
                                     "runs at two shares of the data.")
    res, vits, (lo, *_) = pairs
    if any(r.get("train_eval_acc") is None for rs in [res[lo], *(v[lo] for v in vits.values())]
           for r in rs):
        return Verdict(2, "not run", "The runs scored no train sample (train_eval_images=0).")
    gap_res = contrast([term(res[lo], "train_eval_acc"), term(res[lo], sign=-1)])
    verdicts, parts = [], [f"at {pct(lo)} of the data ResNet-18's train - test gap is "
                           f"{gap_res.value:.2f} points"]
    for label, v in vits.items():
        more = contrast([term(v[lo], "train_eval_acc"), term(v[lo], sign=-1),
                         term(res[lo], "train_eval_acc", -1), term(res[lo])])
        verdicts.append(direction(more))
        parts.append(f"{label}'s is {gap_res.value + more.value:.2f} ({more.note})")
    text = "; ".join(parts) + "."
    return Verdict(2, overall(verdicts), text[0].upper() + text[1:])


# ----------------------------------------------------------------------------- claim 3
def vit_probes(runs: dict) -> dict[str, list[dict]]:
    """ViT results with attention probes, by row: Problem 1's ViTs and the data study's
    full-data runs (seeds together)."""
    def keep(r):
        cfg = r.get("config") or {}
        return (r.get("model") == "vit" and (r.get("probes") or {}).get("attention_distance_px")
                and (cfg.get("train_fraction") or 1.0) == 1.0)
    return grouped(runs, keep)


def resnet_fields(runs: dict) -> list[dict] | None:
    """ResNet-18's receptive field per stage, from any complete run that recorded it."""
    for r in runs.values():
        fields = (r.get("probes") or {}).get("receptive_field")
        if r.get("status") == "complete" and fields:
            return fields
    return None


def _reach(r: dict, key: str) -> tuple[float, float]:
    """(distance, standard error) of the farthest-reaching first-block head, in pixels, of
    the probe `key` ("attention_distance" trained, "untrained_distance" at initialisation);
    no standard error recorded: infinite (nothing is beyond noise)."""
    heads = r["probes"][f"{key}_px"][0]
    h = max(range(len(heads)), key=heads.__getitem__)
    se = r["probes"].get(f"{key}_se_px")
    return heads[h], (se[0][h] if se else math.inf)


def _against(rs: list[dict], other) -> Contrast:
    """The trained reach minus other(r) -> (px, se), per seed, by the noise rule."""
    pairs = [(_reach(r, "attention_distance"), other(r)) for r in rs]
    diffs = [d - o for (d, _), (o, _) in pairs]
    (_, se_t), (_, se_o) = pairs[0]
    return judged(statistics.fmean(diffs), diffs if len(diffs) >= 2 else None,
                  2 * math.hypot(se_t, se_o), "px")


# How far a head's reach must move to count as another way of attending: a quarter of a
# 4-px patch. Over 256 probe images a change of a few hundredths of a pixel is beyond
# noise, and still no evidence that training changed where the model looks.
MIN_REACH_CHANGE_PX = 1.0


def _changed(c: Contrast) -> bool:
    """Whether the reach moved beyond noise, by MIN_REACH_CHANGE_PX or more."""
    return c.beyond_noise and abs(c.value) >= MIN_REACH_CHANGE_PX


def _change_mark(c: Contrast) -> str:
    if _changed(c):
        return c.mark
    return c.mark if not c.beyond_noise else f"beyond noise, but under {MIN_REACH_CHANGE_PX:g} px"


def claim3(runs: dict) -> Verdict:
    """Judged per ViT on its farthest-reaching first-block head. It cannot tell unless that
    head's reach differs from uniform attention over the image and from the same ViT
    untrained, each beyond noise and by MIN_REACH_CHANGE_PX or more (an untrained ViT
    attends almost uniformly, so a long distance alone does not show that anything was
    learned). Then: supported when it reaches farther than the
    radius of ResNet-18's receptive field after its first stage, beyond noise; not supported
    when it stays within that radius beyond noise."""
    vits, fields = vit_probes(runs), resnet_fields(runs)
    if not vits or not fields:
        return Verdict(3, "not run", "It needs a trained ViT's attention probes and "
                                     "ResNet-18's receptive field (a ResNet-18 run).")
    first = next(f for f in fields if f["stage"] != "stem")
    radius = (first["receptive_field_px"] - 1) / 2
    verdicts, parts = [], []
    for row, rs in sorted(vits.items()):
        reach = statistics.fmean(_reach(r, "attention_distance")[0] for r in rs)
        uniform = rs[0]["probes"]["uniform_distance_px"]
        vs_uniform = _against(rs, lambda r: (r["probes"]["uniform_distance_px"], 0.0))
        text = (f"{rs[0]['label']} ({row}): its farthest first-block head reaches {reach:.2f} "
                f"px; uniform attention gives {uniform:.2f} px ({_change_mark(vs_uniform)})")
        if not all(r["probes"].get("untrained_distance_px") for r in rs):
            verdicts.append("cannot tell")
            parts.append(text + "; no untrained probe was recorded, so it cannot tell")
            continue
        vs_untrained = _against(rs, lambda r: _reach(r, "untrained_distance"))
        untrained = statistics.fmean(_reach(r, "untrained_distance")[0] for r in rs)
        text += f", the same ViT untrained {untrained:.2f} px ({_change_mark(vs_untrained)})"
        if not (_changed(vs_uniform) and _changed(vs_untrained)):
            verdicts.append("cannot tell")
            parts.append(text + ", so training did not measurably change how far it looks")
            continue
        vs_radius = _against(rs, lambda r: (radius, 0.0))
        verdicts.append(direction(vs_radius))
        parts.append(text + f"; against ResNet-18's radius, {vs_radius.value:+.1f} px "
                            f"({vs_radius.mark})")
    last = fields[-1]
    verdict = ("not supported" if "not supported" in verdicts else
               "cannot tell" if "cannot tell" in verdicts else overall(verdicts))
    return Verdict(3, verdict, (
        f"ResNet-18's receptive field is {first['receptive_field_px']} px after "
        f"{first['stage']} (radius {radius:.0f} px) and {last['receptive_field_px']} px after "
        f"{last['stage']}. " + "; ".join(parts) + "."))


# ----------------------------------------------------------------------------- claims 4, 5
def _resolution(runs: dict):
    points = study_points(runs, "resolution", "img_size", "mode")
    random = any((r.get("config") or {}).get("weights") == RANDOM_INIT
                 for by_px in points.values() for rs in by_px.values() for r in rs)
    return points, random


NO_WEIGHTS = ("The fine-tunes started from a random init (no ImageNet weights here), so "
              "they say nothing about pretrained features")


def claim4(runs: dict) -> Verdict:
    """Supported when the frozen fine-tune (the pretrained features as they are) is more
    accurate at the largest input size than at 32 px, beyond noise; not supported when it
    is less accurate, beyond noise."""
    points, random = _resolution(runs)
    frozen = points.get("finetune") or {}
    if random:
        return Verdict(4, "not run", NO_WEIGHTS + "; the figure still shows what each input "
                                                  "size costs.")
    if len(frozen) < 2:
        return Verdict(4, "not run", "The resolution study has fewer than two input sizes.")
    lo, hi = min(frozen), max(frozen)
    gain = contrast([term(frozen[hi]), term(frozen[lo], sign=-1)])
    hi_s, lo_s = (statistics.fmean(r["epoch_time_s"] for r in frozen[px]) for px in (hi, lo))
    return Verdict(4, direction(gain), (
        f"The frozen fine-tune gains {gain.value:.2f} points from {lo} to {hi} px "
        f"({gain.note}), for {ratio(hi_s, lo_s)} the time per epoch."))


def claim5(runs: dict) -> Verdict:
    """On the frozen fine-tune's curve at the largest input size: supported when the last
    epoch still gains beyond noise; not supported when it loses beyond noise, or when the
    last epoch's change is within noise after the curve rose beyond noise (levelled off);
    within noise when the whole curve is."""
    points, random = _resolution(runs)
    if random:
        return Verdict(5, "not run", NO_WEIGHTS + " or how long a pretrained head takes to "
                                                  "settle; the figure shows the curves.")
    frozen = points.get("finetune") or {}
    if not frozen:
        return Verdict(5, "not run", "The resolution study has no frozen fine-tune.")
    rs = frozen[max(frozen)]
    hist = [[h for h in r["history"] if h.get("test_acc") is not None] for r in rs]
    if min(len(h) for h in hist) < 2:
        return Verdict(5, "not run", "The frozen fine-tune was evaluated fewer than twice.")
    n = rs[0]["dataset"]["n_test"]

    def at(i, sign=1):
        return Term(sign, {seed_of(r): h[i]["test_acc"] for r, h in zip(rs, hist)}, n)
    last = contrast([at(-1), at(-2, -1)])
    rise = contrast([at(-1), at(0, -1)])
    if last.beyond_noise:
        verdict = "supported" if last.value > 0 else "not supported"
    else:
        verdict = "not supported" if rise.beyond_noise and rise.value > 0 else "within noise"
    epochs = hist[0][-1]["epoch"]
    return Verdict(5, verdict, (
        f"At {max(frozen)} px the frozen fine-tune gains {rise.value:.2f} points from its "
        f"first evaluation to epoch {epochs} ({rise.note}) and {last.value:.2f} in its last "
        f"epoch ({last.note}; the epochs share one test set, so this overstates the noise)."))


# ----------------------------------------------------------------------------- claim 6
def claim6(runs: dict) -> Verdict:
    """From Problems 1 and 2, judged on every step, never on the two ends: supported when
    each step up Table 1's ViT sizes (by parameters) and each step from Swin-Tiny to
    Swin-Small, in every mode, gains accuracy beyond noise; not supported when a step
    loses beyond noise; within noise otherwise. The cost of each step is in the evidence.
    A row without a complete run is named, and the trend skips it, so only a step that
    loses beyond noise still decides (not supported); otherwise it cannot tell. The ViT
    steps are the analysis's (analysis.vit_ladder), judged alike."""
    vits = [r for *_, r in vit_ladder(done_rows(runs, 1))]
    ladders = [("", vits)] if len(vits) >= 2 else []
    swins = {name: r for name, *_, r in done_rows(runs, 2)}
    for mode, label in MODE_LABELS.items():
        found = [swins.get(grid.run_name_of(model=m, mode=mode)) for m in models_of(2)]
        if len([r for r in found if r]) >= 2:
            ladders.append((f", {label.lower()}", [r for r in found if r]))
    if not ladders:
        return Verdict(6, "not run", "It needs two ViT sizes or both Swins of Problems 1-2.")
    verdicts, parts = [], []
    for mode, ladder in ladders:
        for (small, large), c in zip(zip(ladder, ladder[1:]), steps(ladder)):
            verdicts.append(direction(c))
            parts.append(f"{large['label']} vs {small['label']}{mode}: "
                         f"{shown_acc(large) - shown_acc(small):+.2f} points "
                         f"({c.mark}; {c.note}) at "
                         f"{ratio(large.get('epoch_time_s'), small.get('epoch_time_s'))} "
                         "the time per epoch")
    missing = [e["run_name"] for e in missing_rows(runs) if e["model"] != "resnet18"]
    verdict = overall(verdicts)
    return Verdict(6, "cannot tell" if missing and verdict != "not supported" else verdict,
                   "; ".join(parts) + "." + (f" Not judged, with no complete run: "
                                             f"{', '.join(missing)}." if missing else ""))


def verdicts(runs: dict) -> list[Verdict]:
    """Every claim's verdict; on synthetic data each is marked as a demo (Verdict.shown)."""
    demo = is_demo(runs)
    found = [claim1(runs), claim2(runs), claim3(runs), claim4(runs), claim5(runs), claim6(runs)]
    return [dataclasses.replace(v, demo=demo) for v in found]


# ----------------------------------------------------------------------------- section
HOW = ("*How:* the data-efficiency runs train ResNet-18 and two ViTs on nested, "
       "class-balanced shares of the training set at matched optimiser steps (the same batch, "
       "steps and warm-up as the full-data run), so only the number of distinct images "
       "changes; the resolution runs fine-tune Swin-Tiny at each input size for the same "
       "epochs. Verdicts use the report's one noise rule (in the header), as the analysis "
       "of Problems 1 and 2 does.")
RUN_IT = "Run it with `python -m helpers.run --problems 3` (sizes: `helpers/claims.py`)."


def _spread_of(rs: list[dict], key: str) -> str:
    return spread([r[key] for r in rs if r.get(key) is not None])


def _gap(rs: list[dict]) -> str:
    return spread([r["train_eval_acc"] - r["test_acc"] for r in rs
                    if r.get("train_eval_acc") is not None])


def _study_table(head: list[str], rows: list[list[str]]) -> str:
    return md_table(head, rows, "l" * 2 + "r" * (len(head) - 2))


def data_table(runs: dict) -> str | None:
    points = study_points(runs, "data_efficiency", "train_fraction", "label")
    rows = []
    for label, by_share in sorted(points.items()):
        for f in sorted(by_share):
            rs = by_share[f]
            rows.append([label, pct(f), str(rs[0]["dataset"]["n_train"]),
                         str(rs[0]["config"]["epochs"]), _spread_of(rs, "test_acc"),
                         _spread_of(rs, "train_eval_acc"), _gap(rs), str(len(rs))])
    return _study_table(["Model", "Share", "Train images", "Epochs", "Test acc (%)",
                         "Train-sample acc (%)", "Train − test gap", "Seeds"],
                        rows) if rows else None


def resolution_table(runs: dict) -> str | None:
    points = study_points(runs, "resolution", "img_size", "mode")
    rows = []
    for mode, by_px in sorted(points.items()):
        for px in sorted(by_px):
            rs = by_px[px]
            rows.append([f"{rs[0]['label']}, {MODE_PROSE.get(mode, mode)}", f"{px} px",
                         _spread_of(rs, "epoch_time_s"), _spread_of(rs, "test_acc"), _gap(rs),
                         str(len(rs))])
    return _study_table(["Model", "Input", "Time/epoch (s)", "Test acc (%)", "Train − test gap",
                         "Seeds"], rows) if rows else None


def claims_parts(runs: dict, figures: dict[str, str]) -> list[tuple[str, str | None]]:
    """The section as (markdown, figure name or None) pieces: how, the verdicts table, the
    studies' tables, then per claim its verdict and evidence, each followed by the figure it
    rests on (a figure shared by two claims follows the first)."""
    p3 = [r for r in runs.values() if r.get("problem") == 3]
    found = verdicts(runs)
    out = ["## Problem 3: the homework's claims, tested"]
    if p3 and is_demo(runs):
        out.append("**Demo:** these runs are on synthetic data at demo sizes; the verdicts "
                   "show the pipeline working and say nothing about CIFAR-100.")
    out.append(HOW if p3 else "No Problem 3 run yet. " + RUN_IT)
    head = ["Claim", "Verdict", "Figure"]
    rows = [[f"{v.claim}. {CLAIMS[v.claim]}", v.shown,
             CLAIM_CAPTIONS[CLAIM_FIGURE[v.claim]].split(":")[0] if CLAIM_FIGURE[v.claim] in figures
             else DASH] for v in found]
    out.append(md_table(head, rows, "lll", labels=()))
    out += [t for t in (data_table(runs), resolution_table(runs)) if t]
    parts: list[tuple[str, str | None]] = [("\n\n".join(out), None)]
    for v in found:
        name = CLAIM_FIGURE[v.claim]
        shown = name in figures and CLAIM_FIGURE.get(v.claim - 1) != name
        parts.append((f"### Claim {v.claim}: {CLAIMS[v.claim]}\n\n**Verdict: {v.shown}.** "
                      f"{md_escape(v.evidence)}", name if shown else None))
    return parts


def claims_md(runs: dict, figures: dict[str, str], base_dir: str = ".") -> str:
    """claims_parts as markdown, each figure an image relative to base_dir."""
    out = []
    for text, name in claims_parts(runs, figures):
        out.append(text)
        if name:
            out.append(figure_md(CLAIM_CAPTIONS[name], figures[name], base_dir))
    return "\n\n".join(out)
