"""The report's one statistics engine: which accuracy differences it may call real, for
Problems 1-3 alike, and how a mean over seeds is written.

A comparison is a contrast of accuracies: a difference (B - A), or a difference of
differences (how a gap changes), always of each side's mean over its seeds, the tables'
values. `RULE` is the rule, stated once in the report; tests are two-sided, at 5 %:
- every side has the same 2 or more seeds: a t-test of the per-seed contrast against 0
  (for a difference, the paired t-test);
- every side has 2 or more seeds, but not the same ones (a seed failed): Welch's t-test of
  the contrast of means (Welch-Satterthwaite degrees of freedom);
- a single seed somewhere: the contrast is beyond noise when it exceeds two standard errors
  of the test set's sampling (each accuracy a binomial sample of its images).
A trend (accuracy against model size) is judged step by step, never on its two ends.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

ALPHA = 0.05
RULE = ("a difference (of means over seeds) is *beyond noise* when, with two or more seeds "
        "on every side, a t-test gives p < 0.05 (paired by seed where every side has the "
        "same seeds, else Welch's), or, with one seed, when it exceeds two standard errors "
        "of the test set's sampling; otherwise it is *within noise*, and no explanation is "
        "drawn from it")
DASH = "—"


def seed_of(r: dict) -> int:
    return int((r.get("config") or {}).get("seed") or 0)


def mean_sd(values: list[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for a single value)."""
    return statistics.fmean(values), (statistics.stdev(values) if len(values) >= 2 else None)


def spread(values: list[float]) -> str:
    """'41.00' for one value, '41.00 ± 1.00' (mean ± sample sd) for several, a dash for none:
    how every table of the report writes a value over seeds."""
    return fmt_mean_sd(*mean_sd(values)) if values else DASH


def fmt_mean_sd(mean: float | None, sd: float | None) -> str:
    """'41.00', or '41.00 ± 1.00' with a standard deviation; a dash for no mean."""
    return DASH if mean is None else f"{mean:.2f}" + ("" if sd is None else f" ± {sd:.2f}")


@dataclass(frozen=True)
class Term:
    """One accuracy in a contrast: its sign, its value per seed (%), and the images behind
    one value (for the binomial standard error)."""
    sign: int
    values: dict[int, float]
    n: int


def term(rows, key: str = "test_acc", sign: int = 1) -> Term:
    """A Term of a grid row: a list of its seeds' results, or a row dict from
    seeds.seed_rows (its per-seed values under `<key>_by_seed`). key "test_acc", or
    "train_eval_acc" (scored on min(train_eval_images, training images) images)."""
    rs = [rows] if isinstance(rows, dict) else rows
    first = rs[0]
    if isinstance(rows, dict) and f"{key}_by_seed" in rows:
        values = {int(s): v for s, v in rows[f"{key}_by_seed"].items() if v is not None}
    else:
        values = {seed_of(r): r[key] for r in rs if r.get(key) is not None}
    if key == "test_acc":
        n = first["dataset"]["n_test"]
    else:
        n = min(first["config"].get("train_eval_images") or 0, first["dataset"]["n_train"])
    return Term(sign, values, max(n, 1))


def diff(b, a, key: str = "test_acc") -> list[Term]:
    """The terms of b - a."""
    return [term(b, key), term(a, key, -1)]


@dataclass(frozen=True)
class Contrast:
    value: float                # sum of sign x mean, in points
    beyond_noise: bool
    note: str                   # how noise was judged, for the evidence

    @property
    def mark(self) -> str:
        """'beyond noise' or 'within noise': how the report marks a comparison."""
        return "beyond noise" if self.beyond_noise else "within noise"


def contrast(terms: list[Term]) -> Contrast:
    """The contrast of `terms` (accuracies) and whether it is beyond noise, by RULE."""
    value = sum(t.sign * statistics.fmean(t.values.values()) for t in terms)
    seeds = set(terms[0].values)
    if len(seeds) >= 2 and all(set(t.values) == seeds for t in terms):
        return judged(value, [sum(t.sign * t.values[s] for t in terms) for s in sorted(seeds)],
                      0.0, "points")
    if all(len(t.values) >= 2 for t in terms):
        return welch(value, [list(t.values.values()) for t in terms])
    var = 0.0
    for t in terms:
        q = statistics.fmean(t.values.values()) / 100
        var += q * (1 - q) / t.n
    return judged(value, None, 2 * 100 * math.sqrt(var), "points")


def welch(value: float, samples: list[list[float]]) -> Contrast:
    """Welch's t-test of a contrast of independent means (each sample one side's seeds):
    t = value / sqrt(sum s_i^2 / n_i), on the Welch-Satterthwaite degrees of freedom."""
    parts = [statistics.variance(x) / len(x) for x in samples]
    seeds = "/".join(str(len(x)) for x in samples)
    if sum(parts) == 0:
        return Contrast(value, value != 0, f"{seeds} seeds, each side's identical")
    from scipy import stats
    df = sum(parts) ** 2 / sum(v * v / (len(x) - 1) for v, x in zip(parts, samples))
    p = float(2 * stats.t.sf(abs(value) / math.sqrt(sum(parts)), df))
    return Contrast(value, p < ALPHA, f"{seeds} seeds, Welch, {_p(p)}")


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def judged(value: float, per_seed: list[float] | None, two_se: float, unit: str) -> Contrast:
    """RULE applied to a measured difference: a t-test of its per-seed values against 0
    when there are 2 or more, else |value| against two standard errors of one seed's
    measurement (`two_se`, in `unit`)."""
    if per_seed:
        if len(set(per_seed)) == 1:
            return Contrast(value, value != 0, f"identical in all {len(per_seed)} seeds")
        from scipy import stats
        p = float(stats.ttest_1samp(per_seed, 0.0).pvalue)
        return Contrast(value, p < ALPHA, f"{len(per_seed)} seeds, {_p(p)}")
    return Contrast(value, abs(value) > two_se, f"one seed, two standard errors "
                                                 f"{two_se:.2f} {unit}")


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


def steps(rows: list) -> list[Contrast]:
    """Each step of a trend: rows[i + 1] - rows[i] (rows in the trend's order)."""
    return [contrast(diff(b, a)) for a, b in zip(rows, rows[1:])]


def trend(rows: list) -> str:
    """A trend's verdict from every step: supported when each step gains beyond noise,
    not supported when a step loses beyond noise, else within noise."""
    return overall([direction(c) for c in steps(rows)])
