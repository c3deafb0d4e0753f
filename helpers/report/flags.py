"""Plausibility checks: results to look at before believing them. They prove nothing.

(a) accuracy above a credible ceiling for the model family and budget; (b) accuracy at
chance; (c) a failed, skipped or missing run; (d) a seed that cannot be averaged with its
row's others. A Swin from scratch beating its fine-tune is no flag: the analysis calls
it a contradiction and says what to check.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import grid
from ..config import family_of
from .tables import epochs_of, md_escape, result_is_synthetic, shown_acc
from .seeds import seed_rows


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


def _family(r: dict) -> str | None:
    return family_of(r.get("model"), (r.get("config") or {}).get("mode", "scratch"))


def ceiling(r: dict) -> float | None:
    for max_epochs, ceil in CEILINGS.get(_family(r), ()):
        if max_epochs is None or epochs_of(r) <= max_epochs:
            return ceil
    return None


def _ceilings_apply(r: dict) -> bool:
    """The ceilings describe CIFAR-100; synthetic data is easy, other data unknown."""
    return (r.get("dataset") or {}).get("name") == "cifar100" and not result_is_synthetic(r)


def _overlap(r: dict) -> str:
    n = (r.get("dataset") or {}).get("train_test_overlap")
    return "not recorded" if n is None else f"{n} image(s)"


def plausibility_flags(runs: dict) -> list[Flag]:
    """Every flag raised on `runs`, in check order (a) to (d); see the module docstring.
    "missing" and (d) are about grid rows (their seeds combined); (a), (b), failed and
    skipped are about each run, so a flag raised by one seed of several names that seed."""
    rows = seed_rows(runs)
    done = {n: r for n, r in runs.items() if r["status"] == "complete"}
    return (_above_ceiling(done) + _at_chance(done) + _not_complete(runs, rows)
            + _seeds_left_out(rows))


def _above_ceiling(done: dict) -> list[Flag]:
    """(a) accuracy above the credibility ceiling, on CIFAR-100 only."""
    flags = []
    for n, r in done.items():
        ceil = ceiling(r) if _ceilings_apply(r) else None
        if ceil is not None and shown_acc(r) > ceil:
            flags.append(Flag(
                "a", f"`{n}` is above the credible ceiling for its model and budget",
                f"{shown_acc(r):.2f} % after {epochs_of(r)} epochs; ceiling {ceil:.0f} % "
                f"({_family(r)}).", LEAKAGE_CHECK.format(overlap=_overlap(r)), [n]))
    return flags


def _at_chance(done: dict) -> list[Flag]:
    """(b) accuracy within CHANCE_MARGIN points of chance."""
    flags = []
    for n, r in done.items():
        chance = 100.0 / ((r.get("dataset") or {}).get("num_classes") or 100)
        if shown_acc(r) <= chance + CHANCE_MARGIN:
            flags.append(Flag(
                "b", f"`{n}` is at chance", f"{shown_acc(r):.2f} % vs chance {chance:.2f} %.",
                "does the training loss fall at all; is the learning rate too high "
                "(divergence) or too low; are labels aligned with images; is the input "
                "normalised; for a fine-tune, were pretrained weights loaded.", [n]))
    return flags


def _not_complete(runs: dict, rows: dict) -> list[Flag]:
    """(c) grid rows missing, and runs failed or skipped, each kind with its reasons."""
    flags = []
    grid_names = [e["run_name"] for e in grid.grid()]
    for label, names, hint in (
        ("missing (not run)", [n for n in grid_names if n not in rows],
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
            flags.append(Flag("c", f"{len(names)} run(s) {label}", detail, hint, names))
    return flags


def _seeds_left_out(rows: dict) -> list[Flag]:
    """(d) seed runs that cannot be averaged with their row's others."""
    left_out = {n: why for r in rows.values()
                for n, why in (r.get("seed_mismatches") or {}).items()}
    if not left_out:
        return []
    return [Flag(
        "d", f"{len(left_out)} seed run(s) left out of their row's mean",
        " ".join(f"`{n}`: {md_escape(why)}." for n, why in left_out.items()),
        "train every seed of a row with the same config (the runner does, for one "
        "--seeds list); sizes and FLOPs never depend on the seed, so differing ones mean "
        "a result file from another code version: rerun that seed.", list(left_out))]


# ----------------------------------------------------------------------------- markdown
def flags_md(flags: list[Flag], runs: dict) -> str:
    lines = [f"- **FLAG ({f.check}) {f.title}.** {f.detail} *Check:* {f.what_to_check}"
             for f in flags] or ["No plausibility flag raised."]
    done = [n for n, r in runs.items() if r["status"] == "complete"]
    exempt = [n for n in done if not _ceilings_apply(runs[n])]
    if exempt:
        scope = "" if len(exempt) == len(done) else f" to `{'`, `'.join(exempt)}`"
        why = ("the data is synthetic, where high accuracy is easy and says nothing about "
               "CIFAR-100" if all(result_is_synthetic(runs[n]) for n in exempt) else
               "the ceilings are calibrated for CIFAR-100 only")
        lines.append(f"\n*Check (a), the credibility ceilings, is not applied{scope}: {why}.*")
    lines.append("\n*The checks:* (a) test accuracy above a credible ceiling for the model "
                 "family and epoch budget (documented in `helpers/report/flags.py`); (b) test "
                 f"accuracy within {CHANCE_MARGIN:.0f} points of chance (100 / number of "
                 "classes); (c) a failed, skipped or missing run; (d) a seed run that cannot "
                 "be averaged with its row's other seeds (another config, other sizes, or a "
                 "second file for the same seed), so it is left out of the row's mean.")
    return "\n".join(lines)
