"""Seeds: one row per grid row, with the spread of its seeds, and the test that decides
which differences the report may call real.

A result file is one (row, seed) run (helpers.grid.seed_run_name). `seed_rows` groups
them into one row dict that reads like a result (so tables, prose and figures take either)
plus the spread: test_acc and epoch_time_s become the means over the complete seeds, with
`*_sd` (sample standard deviation), `n_seeds` and the per-seed values beside them.

The rule for "a difference is supported", named in the report: Welch's t-test (unequal
variances) on the per-seed test accuracies, two-sided, at the 5 % level, when both sides
have at least 2 seeds. With one seed on either side, seed-to-seed noise is not tested.
"""
from __future__ import annotations

import math
import statistics

from ..changes import config_changes
from ..grid import row_name, seed_run_name

ALPHA = 0.05
TEST_NAME = "Welch's t-test at 5 %"


# ----------------------------------------------------------------------------- grouping
def _seed(r: dict) -> int:
    return int((r.get("config") or {}).get("seed") or 0)


def _mean_sd(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) >= 2 else None)


def _mean_history(histories: list[list[dict]]) -> tuple[list[dict], list[dict]]:
    """Per-epoch mean (and sd) of test accuracy and loss over the epochs all seeds reached;
    a value that no seed has (a non-finite loss stored as null) stays None."""
    epochs = min(len(h) for h in histories)
    mean, sd = [], []
    for i in range(epochs):
        m, s = {"epoch": histories[0][i]["epoch"]}, {"epoch": histories[0][i]["epoch"]}
        for key in ("test_acc", "test_loss", "train_eval_acc"):
            values = [h[i][key] for h in histories if h[i].get(key) is not None]
            m[key], s[key] = _mean_sd(values) if values else (None, None)
        mean.append(m)
        sd.append(s)
    return mean, sd


SIZE_KEYS = ("params", "trainable_params", "macs_thop", "flops")


def _mismatch(ref: dict, r: dict) -> str | None:
    """Why seed result `r` cannot be averaged with `ref` (the row's first complete seed):
    another config (seed and run name aside) or other sizes; None when it can."""
    def training(c):
        return {k: v for k, v in (c or {}).items() if k not in ("seed", "run_name")}
    changes = config_changes(training(ref.get("config")), training(r.get("config")))
    if changes:
        return "another config than `" + ref["run_name"] + "` (" + "; ".join(changes) + ")"
    sizes = [f"{k} {ref.get(k)} vs {r.get(k)}" for k in SIZE_KEYS
             if None not in (ref.get(k), r.get(k)) and ref.get(k) != r.get(k)]
    if sizes:   # sizes and FLOPs do not depend on the seed: one of the two files is wrong
        return f"other sizes than `{ref['run_name']}` ({'; '.join(sizes)})"
    return None


def combine(row: str, results: list[dict]) -> dict:
    """One row dict from the results of one row's seeds (see the module docstring). Seeds
    that cannot be averaged with the row's first complete seed (another config, other
    sizes, or a second file for the same seed) are left out and listed in `seed_mismatches`
    (plausibility check (e))."""
    results = sorted(results,
                     key=lambda r: (_seed(r), r["run_name"] != seed_run_name(row, _seed(r))))
    mismatches, kept, seen = {}, [], set()
    for r in results:
        if _seed(r) in seen:
            mismatches[r["run_name"]] = f"a second result for seed {_seed(r)}"
        else:
            seen.add(_seed(r))
            kept.append(r)
    done = [r for r in kept if r["status"] == "complete"]
    for r in done[1:]:
        why = _mismatch(done[0], r)
        if why:
            mismatches[r["run_name"]] = why
    done = [r for r in done if r["run_name"] not in mismatches]
    base = dict(done[0] if done else kept[0])
    base.update(run_name=row, seeds=[_seed(r) for r in kept],
                seed_runs=[r["run_name"] for r in kept], n_seeds=len(done),
                n_seed_files=len(results), test_acc_sd=None, epoch_time_s_sd=None,
                seed_statuses={r["run_name"]: r["status"] for r in results},
                seed_mismatches=mismatches)
    if len(done) >= 2:
        accs = [r["test_acc"] for r in done]
        base["test_accs"] = accs
        base["test_acc"], base["test_acc_sd"] = _mean_sd(accs)
        train = [r.get("train_eval_acc") for r in done]
        if None not in train:
            base["train_eval_accs"] = train
            base["train_eval_acc"], base["train_eval_acc_sd"] = _mean_sd(train)
        else:                          # a gap needs both sides from the same seeds
            base["train_eval_acc"] = None
        times = [r["epoch_time_s"] for r in done if r.get("epoch_time_s") is not None]
        if times:
            base["epoch_times"] = times
            base["epoch_time_s"], base["epoch_time_s_sd"] = _mean_sd(times)
        base["history"], base["history_sd"] = _mean_history([r["history"] for r in done])
    return base


def seed_rows(runs: dict) -> dict:
    """run name -> result, for every seed  =>  row name -> one row dict (idempotent)."""
    groups: dict[str, list[dict]] = {}
    for r in runs.values():
        if "n_seeds" in r:                       # already a row
            return runs
        groups.setdefault(row_name(r["run_name"], _seed(r)), []).append(r)
    return {row: combine(row, rs) for row, rs in sorted(groups.items())}


# ----------------------------------------------------------------------------- the test
def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom."""
    from scipy import stats
    return float(2.0 * stats.t.sf(abs(t), df))


def welch(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Welch's t-test of mean(a) != mean(b): (t, degrees of freedom, two-sided p), by
    scipy.stats.ttest_ind(equal_var=False); identical seeds on both sides, where scipy has
    no answer, give p = 1 for equal means and 0 otherwise."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("Welch's t-test needs at least 2 values on each side")
    (ma, sa), (mb, sb) = _mean_sd(a), _mean_sd(b)
    va, vb = sa * sa / len(a), sb * sb / len(b)
    if va + vb == 0.0:          # every seed identical on both sides
        return (0.0 if ma == mb else math.copysign(math.inf, ma - mb)), math.inf, \
            (1.0 if ma == mb else 0.0)
    from scipy import stats
    res = stats.ttest_ind(a, b, equal_var=False)
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    return float(res.statistic), df, float(res.pvalue)


def seed_accs(r: dict | None) -> list[float]:
    """The per-seed test accuracies of a row (one value for a single seed)."""
    if not r:
        return []
    return list(r.get("test_accs") or ([r["test_acc"]] if r.get("test_acc") is not None else []))


def compare(ra: dict | None, rb: dict | None) -> tuple[str, float | None]:
    """('supported' | 'within noise' | 'not tested', p) for the accuracy difference of two
    rows: Welch's t-test when both have 2 or more seeds, else not tested."""
    a, b = seed_accs(ra), seed_accs(rb)
    if len(a) < 2 or len(b) < 2 or (len(set(a)) == 1 and len(set(b)) == 1):
        return "not tested", None     # (identical seeds on both sides: no spread to test)
    _, _, p = welch(a, b)
    return ("supported" if p < ALPHA else "within noise"), p
