"""Contrasts of accuracies (a difference, or a difference of differences) and whether they
are beyond noise, by the report's rules: with two or more seeds on every side, a t-test at
5 % on the per-seed contrasts; with one seed, two standard errors of the test set's
sampling (binomial, each accuracy an independent sample of its images)."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from .seeds import ALPHA


def seed_of(r: dict) -> int:
    return (r.get("config") or {}).get("seed") or 0


@dataclass(frozen=True)
class Term:
    """One accuracy in a contrast: its sign, its value per seed (%), and the images behind
    one value (for the binomial standard error)."""
    sign: int
    values: dict[int, float]
    n: int


def accuracy(rs: list[dict], key: str = "test_acc", sign: int = 1) -> Term:
    """A Term of the seed results `rs`: test accuracy, or the train sample's (key
    "train_eval_acc", scored on min(train_eval_images, training images) images)."""
    if key == "test_acc":
        n = rs[0]["dataset"]["n_test"]
    else:
        n = min(rs[0]["config"].get("train_eval_images") or 0, rs[0]["dataset"]["n_train"])
    return Term(sign, {seed_of(r): r[key] for r in rs if r.get(key) is not None}, max(n, 1))


@dataclass(frozen=True)
class Contrast:
    value: float                # sum of sign x mean, in points
    beyond_noise: bool
    note: str                   # how noise was judged, for the evidence


def contrast(terms: list[Term]) -> Contrast:
    """The contrast of `terms` and whether it is beyond noise (the module's rules)."""
    value = sum(t.sign * statistics.fmean(t.values.values()) for t in terms)
    seeds = set.intersection(*(set(t.values) for t in terms))
    if len(seeds) >= 2:
        per_seed = [sum(t.sign * t.values[s] for t in terms) for s in sorted(seeds)]
        if len(set(per_seed)) == 1:
            return Contrast(value, value != 0, f"identical in all {len(seeds)} seeds")
        from scipy import stats
        p = float(stats.ttest_1samp(per_seed, 0.0).pvalue)
        shown = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
        return Contrast(value, p < ALPHA, f"t-test over {len(seeds)} seeds: {shown}")
    var = 0.0
    for t in terms:
        q = statistics.fmean(t.values.values()) / 100
        var += q * (1 - q) / t.n
    two_se = 200 * math.sqrt(var)
    side = "beyond" if abs(value) > two_se else "within"
    return Contrast(value, abs(value) > two_se,
                    f"{side} two standard errors, {two_se:.2f} points; one seed")


def direction(c: Contrast) -> str:
    """supported when the contrast is positive beyond noise, not supported when negative."""
    if not c.beyond_noise:
        return "within noise"
    return "supported" if c.value > 0 else "not supported"


def overall(verdicts: list[str]) -> str:
    """Several comparisons into one verdict: any contradiction wins, then any doubt."""
    if not verdicts:
        return "not run"
    if "not supported" in verdicts:
        return "not supported"
    return "supported" if all(v == "supported" for v in verdicts) else "within noise"
