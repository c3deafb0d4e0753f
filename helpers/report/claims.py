"""Problem 3 in the report: a verdict per claim of the homework, computed from the runs.

A verdict is one of VERDICTS. Each rests on a contrast of accuracies (a difference, or a
difference of differences) judged by the report's noise rules (contrast.py). What a
verdict means for each claim is in its function's docstring.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from ..config import RANDOM_INIT
from ..grid import row_name
from .contrast import Contrast, Term, accuracy, contrast, direction, overall, seed_of
from .seeds import ALPHA

VERDICTS = ("supported", "not supported", "within noise", "not run")
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
CAPTIONS = {
    "claims_data": "Problem 3, data efficiency: test accuracy (solid) and accuracy on a fixed "
                   "train sample (dashed) against training images, at matched optimiser steps",
    "claims_attention": "Problem 3, how far models look: each ViT's mean attention distance "
                        "per block and head, and ResNet-18's receptive field per stage",
    "claims_resolution": "Problem 3, resolution: Swin-Tiny fine-tuned at each input size, "
                         "test accuracy and training time per epoch",
    "claims_epochs": "Problem 3, epochs: test accuracy after each epoch, frozen vs full "
                     "fine-tune at the largest input size",
}
MODE_NAMES = {"finetune": "frozen backbone", "finetune_full": "full fine-tune"}


@dataclass(frozen=True)
class Verdict:
    claim: int
    verdict: str                # one of VERDICTS
    evidence: str               # the numbers it rests on, as sentences


# ----------------------------------------------------------------------------- gathering
def grouped(runs: dict, keep) -> dict[str, list[dict]]:
    """Complete results for which keep(r) holds, by grid row (their seeds together)."""
    out: dict[str, list[dict]] = {}
    for r in runs.values():
        if r.get("status") == "complete" and keep(r):
            out.setdefault(row_name(r["run_name"], seed_of(r)), []).append(r)
    return out


def study_points(runs: dict, study: str, key: str, by: str) -> dict[str, dict]:
    """{group: {x: [seed results]}} of one Problem 3 study: group by the result's `by`
    (label or config mode), x the config value `key` (train_fraction or img_size)."""
    out: dict[str, dict] = {}
    for rs in grouped(runs, lambda r: (r.get("config") or {}).get("study") == study).values():
        cfg = rs[0]["config"]
        group = rs[0]["label"] if by == "label" else cfg[by]
        out.setdefault(group, {})[cfg[key] or 1.0] = rs
    return out


def pct(x: float) -> str:
    return f"{100 * x:.0f} %"


# ----------------------------------------------------------------------------- claims 1, 2
def _data_pairs(runs: dict):
    """(ResNet-18's points, {ViT label: points}, smallest share, largest share) of the data
    study, or None when it lacks ResNet-18 or a ViT at two shares they all have."""
    points = study_points(runs, "data_efficiency", "train_fraction", "label")
    res = points.get("ResNet-18")
    vits = {k: v for k, v in points.items() if k.startswith("ViT")}
    if not res or not vits:
        return None
    shares = sorted(set(res).intersection(*(set(v) for v in vits.values())))
    if len(shares) < 2:
        return None
    return res, vits, shares[0], shares[-1]


def claim1(runs: dict) -> Verdict:
    """Supported when, for every ViT, ResNet-18 leads it at the smallest share beyond noise
    and that lead shrinks by the largest share beyond noise; not supported when a ViT does
    not trail, or the lead grows, beyond noise."""
    pairs = _data_pairs(runs)
    if pairs is None:
        return Verdict(1, "not run", "The data-efficiency study has no ResNet-18 and ViT "
                                     "runs at two shares of the data.")
    res, vits, lo, hi = pairs
    verdicts, parts = [], []
    for label, v in vits.items():
        trail = contrast([accuracy(res[lo]), accuracy(v[lo], sign=-1)])
        closes = contrast([accuracy(res[lo]), accuracy(v[lo], sign=-1),
                           accuracy(res[hi], sign=-1), accuracy(v[hi])])
        verdict = (direction(trail) if direction(trail) != "supported"
                   else direction(closes))
        verdicts.append(verdict)
        parts.append(f"{label}: ResNet-18 leads by {trail.value:.2f} points at {pct(lo)} of "
                     f"the data ({trail.note}) and by {trail.value - closes.value:.2f} at "
                     f"{pct(hi)}, so the gap shrinks by {closes.value:.2f} ({closes.note})")
    return Verdict(1, overall(verdicts), "; ".join(parts) + ".")


def claim2(runs: dict) -> Verdict:
    """Supported when, at the smallest share, every ViT's train - test gap exceeds
    ResNet-18's beyond noise; not supported when one falls short beyond noise (a ViT that
    fits its training images no better than new ones underfits, it does not overfit)."""
    pairs = _data_pairs(runs)
    if pairs is None:
        return Verdict(2, "not run", "The data-efficiency study has no ResNet-18 and ViT "
                                     "runs at two shares of the data.")
    res, vits, lo, _ = pairs
    if any(r.get("train_eval_acc") is None for rs in [res[lo], *(v[lo] for v in vits.values())]
           for r in rs):
        return Verdict(2, "not run", "The runs scored no train sample (train_eval_images=0).")
    gap_res = contrast([accuracy(res[lo], "train_eval_acc"), accuracy(res[lo], sign=-1)])
    verdicts, parts = [], [f"at {pct(lo)} of the data ResNet-18's train - test gap is "
                           f"{gap_res.value:.2f} points"]
    for label, v in vits.items():
        more = contrast([accuracy(v[lo], "train_eval_acc"), accuracy(v[lo], sign=-1),
                         accuracy(res[lo], "train_eval_acc", -1), accuracy(res[lo])])
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


def claim3(runs: dict) -> Verdict:
    """Supported when, in every ViT, some head of the first block attends farther on average
    than the radius of ResNet-18's receptive field after its first stage, beyond noise (seeds,
    or two standard errors over the probe images); not supported when a ViT's first block
    stays within that radius beyond noise."""
    vits, fields = vit_probes(runs), resnet_fields(runs)
    if not vits or not fields:
        return Verdict(3, "not run", "It needs a trained ViT's attention probes and "
                                     "ResNet-18's receptive field (a ResNet-18 run).")
    first = next(f for f in fields if f["stage"] != "stem")
    radius = (first["receptive_field_px"] - 1) / 2
    verdicts, parts = [], []
    for row, rs in sorted(vits.items()):
        reach = []
        for r in rs:
            heads = r["probes"]["attention_distance_px"][0]
            h = max(range(len(heads)), key=heads.__getitem__)
            se = r["probes"].get("attention_distance_se_px")
            reach.append((heads[h], se[0][h] if se else math.inf))   # no SE: nothing beyond
        value = statistics.fmean(d for d, _ in reach) - radius
        if len(reach) >= 2:
            from scipy import stats
            p = float(stats.ttest_1samp([d - radius for d, _ in reach], 0.0).pvalue)
            beyond, note = p < ALPHA, f"t-test over {len(reach)} seeds: p = {p:.3f}"
        else:
            se = reach[0][1]
            beyond, note = abs(value) > 2 * se, f"two standard errors {2 * se:.2f} px"
        verdicts.append(direction(Contrast(value, beyond, note)))
        uniform = rs[0]["probes"]["uniform_distance_px"]
        parts.append(f"{rs[0]['label']} ({row}): its farthest first-block head reaches "
                     f"{value + radius:.1f} px on average ({note}); uniform attention over "
                     f"the image would give {uniform:.1f} px")
    last = fields[-1]
    text = (f"ResNet-18's receptive field is {first['receptive_field_px']} px after "
            f"{first['stage']} (radius {radius:.0f} px) and {last['receptive_field_px']} px "
            f"after {last['stage']}. " + "; ".join(parts) + ". An untrained ViT attends "
            "almost uniformly, so a long distance alone does not show that it was learned.")
    return Verdict(3, overall(verdicts), text)


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
    gain = contrast([accuracy(frozen[hi]), accuracy(frozen[lo], sign=-1)])
    cost = (statistics.fmean(r["epoch_time_s"] for r in frozen[hi])
            / statistics.fmean(r["epoch_time_s"] for r in frozen[lo]))
    return Verdict(4, direction(gain), (
        f"The frozen fine-tune gains {gain.value:.2f} points from {lo} to {hi} px "
        f"({gain.note}), for {cost:.1f}x the time per epoch."))


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
    """From Problems 1 and 2: supported when the largest ViT beats the smallest, and
    Swin-S beats Swin-T (full fine-tune, else from scratch), beyond noise, each at more
    FLOPs or time per epoch; not supported when a larger model is less accurate beyond
    noise."""
    rows = grouped(runs, lambda r: r.get("problem") in (1, 2))
    vits = sorted((rs for rs in rows.values() if rs[0]["model"] == "vit"
                   and rs[0].get("params")), key=lambda rs: rs[0]["params"])
    pairs = [(vits[0], vits[-1])] if len(vits) >= 2 else []
    for mode in ("finetune_full", "scratch"):
        t, s = rows.get(f"p2-swin_tiny-{mode}"), rows.get(f"p2-swin_small-{mode}")
        if t and s:
            pairs.append((t, s))
            break
    if not pairs:
        return Verdict(6, "not run", "It needs two ViT sizes or both Swins of Problems 1-2.")
    verdicts, parts = [], []
    for small, large in pairs:
        gain = contrast([accuracy(large), accuracy(small, sign=-1)])
        verdicts.append(direction(gain))
        cost = (statistics.fmean(r["epoch_time_s"] for r in large)
                / statistics.fmean(r["epoch_time_s"] for r in small))
        parts.append(f"{large[0]['label']} vs {small[0]['label']}: {gain.value:+.2f} points "
                     f"({gain.note}) at {cost:.1f}x the time per epoch")
    return Verdict(6, overall(verdicts), "; ".join(parts) + ".")


def verdicts(runs: dict) -> list[Verdict]:
    return [claim1(runs), claim2(runs), claim3(runs), claim4(runs), claim5(runs), claim6(runs)]
