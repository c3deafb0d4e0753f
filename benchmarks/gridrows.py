"""The GPU check's grid part: every grid row end to end through Experiment(cfg).run() for 2
epochs on synthetic CIFAR-shaped data, and the grid at its default budget projected from
what each row measured (project_row). After every row, the grid's time record
(grid/logs/grid_time.json) and the projection (grid/logs/projection.json) are written, so a
part killed at its deadline keeps the rows it finished.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time

import torch

from helpers.config import CIFAR100_SIZES, ExperimentConfig, is_swin, row_overrides, swin_variant
from helpers.grid import EPOCHS
from helpers.gridrun import Outcome, write_time_record
from helpers.results import now_iso
from .benchfile import write_json
from .timing import attempt, measured, release_memory

FULL = dict(p1=CIFAR100_SIZES, p2=(10_000, 2_000), epochs=2)
QUICK = dict(p1=(256, 128), p2=(32, 16), epochs=2, p2_img_size=32)
PROJECTION_RULE = (f"the last epoch's training time x default epochs x {CIFAR100_SIZES[0]:,} / "
                   f"train images, the last evaluation's time x evaluations x "
                   f"{CIFAR100_SIZES[1]:,} / test images, plus the row's one-off seconds: its "
                   "wall time less those steady epochs and evaluations as it ran them (start, "
                   "data, build, compile of training and evaluation, writes; each counted once; "
                   "0 where the last epoch ran slower than the first)")


def project_row(r: dict, wall_s: float) -> dict:
    """One row at the grid's default epochs on CIFAR-100 (PROJECTION_RULE), from its result.
    The last epoch and evaluation are the steady ones: the first carry the compiles and
    autotuning, which stay in once_s, counted once."""
    epochs = EPOCHS[r["problem"]]
    history, n_tr, n_te = r["history"], r["dataset"]["n_train"], r["dataset"]["n_test"]
    evaluated = [h for h in history if h.get("test_acc") is not None]
    steady_train = history[-1]["epoch_time_s"]
    steady_eval = evaluated[-1]["eval_time_s"] if evaluated else 0.0
    train = steady_train * epochs * CIFAR100_SIZES[0] / n_tr
    evals = steady_eval * epochs * CIFAR100_SIZES[1] / n_te
    # Never below 0: only noise (a last epoch slower than the first) makes it so.
    once = max(0.0, wall_s - steady_train * len(history) - steady_eval * len(evaluated))
    return dict(epochs=epochs, train_s=train, eval_s=evals, once_s=once,
                total_s=train + evals + once)


def projection_summary(rows: dict, n_grid: int) -> dict:
    return dict(rows=rows, total_s=sum(p["total_s"] for p in rows.values()),
                rows_projected=len(rows), rows_in_grid=n_grid, rule=PROJECTION_RULE)


def projection_path(grid_dir: str) -> str:
    return os.path.join(grid_dir, "logs", "projection.json")


def grid_rows(entries: list[dict], sizes: dict, grid_dir: str, device: torch.device,
              deadline: float) -> tuple[list, dict]:
    """Every row through Experiment(cfg).run(), sharing one synthetic .npz in a temporary
    folder (removed at the end). Each row is measured afresh: its earlier result and
    checkpoint go first, and its checkpoint goes afterwards, so a row cut at the deadline
    leaves nothing that a rerun would trip over. The time record (grid/logs/grid_time.json)
    and the projection (grid/logs/projection.json) are written after every row. Returns
    (the rows' outcomes, the projection)."""
    g0, started = time.perf_counter(), now_iso()
    outcomes, rows = [], {}

    def write():
        rows_s = time.perf_counter() - g0
        write_time_record(grid_dir, outcomes, rows_s=rows_s, total_s=rows_s, started=started,
                          finished=now_iso(), settings=dict(kind="gpu-check grid", sizes=sizes))
        write_json(projection_summary(rows, len(entries)), projection_path(grid_dir),
                   allow_nan=True)
    os.makedirs(grid_dir, exist_ok=True)
    # The data and weights files: out of the output folder, which a part killed at its
    # deadline would leave them in (184 MB at the GPU sizes).
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        npz = _synthetic_npz(sizes, tmp)
        for e in entries:
            if time.monotonic() >= deadline:
                outcomes.append(Outcome(e["run_name"], "not run",
                                        note="the check's budget was spent"))
                continue
            params = _row_params(e, sizes, npz, grid_dir, device, tmp)
            r, outcome = _run_row(ExperimentConfig.from_params(**params).resolved(), deadline)
            outcomes.append(outcome)
            if r and r.get("history"):
                rows[e["run_name"]] = project_row(r, outcome.wall_s)
            print(f"{e['run_name']:<28} {outcome.status:<8} {outcome.wall_s:6.1f} s "
                  f"{outcome.note}", file=sys.stderr, flush=True)
            write()
            release_memory(device)
    write()
    return outcomes, projection_summary(rows, len(entries))


def _synthetic_npz(sizes: dict, folder: str) -> str:
    """One synthetic .npz with as many images as the largest problem's share."""
    import numpy as np
    from helpers.data import make_synthetic
    n_train = max(sizes["p1"][0], sizes["p2"][0])
    n_test = max(sizes["p1"][1], sizes["p2"][1])
    data = make_synthetic(n_train, n_test, seed=0)
    npz = os.path.join(folder, f"synthetic-{n_train}-{n_test}.npz")
    np.savez(npz, x_train=data.x_train.numpy(), y_train=data.y_train.numpy(),
             x_test=data.x_test.numpy(), y_test=data.y_test.numpy())
    return npz


def _random_swin_weights(model: str, folder: str) -> str:
    """A randomly initialised ImageNet-shaped weights file for a Swin fine-tune (made once)."""
    import timm
    variant = swin_variant(model)
    path = os.path.join(folder, f"swin_{variant}.pth")
    if not os.path.exists(path):
        torch.save(timm.create_model(f"swin_{variant}_patch4_window7_224",
                                     num_classes=1000).state_dict(), path)
    return path


def _row_params(e: dict, sizes: dict, npz: str, results_dir: str, device, tmp: str) -> dict:
    p2 = is_swin(e["model"])
    n_tr, n_te = sizes["p2" if p2 else "p1"]
    params = dict(row_overrides(e), run_name=e["run_name"], dataset=npz,
                  epochs=sizes["epochs"], train_subset=n_tr, test_subset=n_te,
                  results_dir=results_dir, device=str(device), seed=0)
    if p2 and sizes.get("p2_img_size"):
        params["img_size"] = sizes["p2_img_size"]
    if p2 and params.get("mode") != "scratch":
        params["weights"] = _random_swin_weights(e["model"], tmp)
    return params


def _remove(*paths: str) -> None:
    for path in paths:
        if os.path.exists(path):
            os.remove(path)


def _run_row(cfg: ExperimentConfig, deadline: float) -> tuple[dict | None, Outcome]:
    """One row, measured afresh and cut at the deadline; no checkpoint is left behind."""
    from helpers.experiment import Experiment
    t0 = time.perf_counter()
    _remove(cfg.result_path, cfg.checkpoint_path)
    ran = attempt(lambda: dict(result=Experiment(cfg).run(progress=False)), deadline)
    _remove(cfg.checkpoint_path)
    wall_s = time.perf_counter() - t0
    if not measured(ran):                       # it raised, or ran past the deadline
        return None, Outcome(cfg.run_name, "failed", note=ran["reason"], wall_s=wall_s)
    return ran["result"], Outcome(cfg.run_name, ran["result"]["status"], wall_s=wall_s)
