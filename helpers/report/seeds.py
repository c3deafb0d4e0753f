"""Seeds: one row per grid row, with the spread of its seeds.

A result file is one (row, seed) run (helpers.config.seed_run_name). `by_row` groups them,
and `averageable` says which of a row's seeds may be averaged; Problems 1-3 use both.
`seed_rows` makes one row dict that reads like a result (so tables, prose and figures take
either) plus the spread: test_acc, train_eval_acc and epoch_time_s become the means over
the complete seeds, with `test_acc_sd` and `epoch_time_s_sd` (sample standard deviation),
`n_seeds`, and `test_acc_by_seed` / `train_eval_acc_by_seed` for the report's test
(stats.py).
"""
from __future__ import annotations

from ..changes import config_changes
from ..config import row_name, seed_run_name
from .stats import mean_sd, seed_of


# ----------------------------------------------------------------------------- grouping
def by_row(runs: dict, keep=lambda r: True) -> dict[str, list[dict]]:
    """The results for which keep(r) holds, by grid row (their seeds together)."""
    out: dict[str, list[dict]] = {}
    for r in runs.values():
        if keep(r):
            out.setdefault(row_name(r["run_name"], seed_of(r)), []).append(r)
    return out


def _mean_history(histories: list[list[dict]]) -> tuple[list[dict], list[dict]]:
    """Per-epoch mean (and sd) of test accuracy and loss over the epochs all seeds reached;
    a value that no seed has (a non-finite loss stored as null) stays None."""
    epochs = min(len(h) for h in histories)
    mean, sd = [], []
    for i in range(epochs):
        m, s = {"epoch": histories[0][i]["epoch"]}, {"epoch": histories[0][i]["epoch"]}
        for key in ("test_acc", "test_loss", "train_eval_acc"):
            values = [h[i][key] for h in histories if h[i].get(key) is not None]
            m[key], s[key] = mean_sd(values) if values else (None, None)
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


def averageable(row: str, results: list[dict]) -> tuple[list[dict], list[dict], dict]:
    """(one result per seed, the complete ones that may be averaged, {run name: why left
    out}): a seed that cannot be averaged with the row's first complete seed (another
    config, other sizes, or a second file for the same seed) is left out (plausibility
    check (d))."""
    results = sorted(results,
                     key=lambda r: (seed_of(r), r["run_name"] != seed_run_name(row, seed_of(r))))
    mismatches, kept, seen = {}, [], set()
    for r in results:
        if seed_of(r) in seen:
            mismatches[r["run_name"]] = f"a second result for seed {seed_of(r)}"
        else:
            seen.add(seed_of(r))
            kept.append(r)
    done = [r for r in kept if r["status"] == "complete"]
    for r in done[1:]:
        why = _mismatch(done[0], r)
        if why:
            mismatches[r["run_name"]] = why
    return kept, [r for r in done if r["run_name"] not in mismatches], mismatches


def combine(row: str, results: list[dict]) -> dict:
    """One row dict from the results of one row's seeds (see the module docstring)."""
    kept, done, mismatches = averageable(row, results)
    base = dict(done[0] if done else kept[0])
    base.update(run_name=row, n_seeds=len(done), n_seed_files=len(results),
                test_acc_sd=None, epoch_time_s_sd=None, seed_mismatches=mismatches,
                test_acc_by_seed={seed_of(r): r["test_acc"] for r in done},
                train_eval_acc_by_seed={seed_of(r): r.get("train_eval_acc") for r in done})
    if len(done) >= 2:
        base["test_acc"], base["test_acc_sd"] = mean_sd([r["test_acc"] for r in done])
        train = [r.get("train_eval_acc") for r in done]
        # A gap needs both sides from the same seeds.
        base["train_eval_acc"] = None if None in train else mean_sd(train)[0]
        times = [r["epoch_time_s"] for r in done if r.get("epoch_time_s") is not None]
        if times:
            base["epoch_time_s"], base["epoch_time_s_sd"] = mean_sd(times)
        base["history"], base["history_sd"] = _mean_history([r["history"] for r in done])
    return base


def seed_rows(runs: dict) -> dict:
    """run name -> result, for every seed  =>  row name -> one row dict (idempotent)."""
    if any("n_seeds" in r for r in runs.values()):      # already rows
        return runs
    return {row: combine(row, rs) for row, rs in sorted(by_row(runs).items())}
