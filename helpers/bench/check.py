"""`python -m helpers.bench check`: everything a GPU session should measure, in one command.

Within a time budget (default 8 minutes), in this order, so that the answers that decide
the speed defaults (helpers/speed.py) come first, each part written as it goes:
  1. compile_swin: Swin-T scratch with fused attention and with its blocks compiled
     (regional compile), cold and warm, against eager;
  2. compile_p1: torch.compile against eager for Problem 1 (whole model);
  3. bench: the benchmark of every grid row, eager with timm's and the fused Swin
     attention, against the typical loop, plus the data path; merged with 1 and 2 per
     row, so no row loses what another part measured;
  4. grid: every grid row end to end through Experiment(cfg).run() for 2 epochs on
     synthetic CIFAR-shaped data (Problem 1 at 50k/10k images, Problem 2 at 10k/2k; the
     Swin fine-tunes load a randomly initialised weights file), each row measured afresh,
     with its phases, and the grid at its default budget projected from the steady epochs.
Everything goes into one folder, --out-dir (default results/gpu-check):
  <device-slug>.json       the benchmark (copy it to benchmarks/results/ to commit it)
  grid/                    the grid part's result files; grid/logs/grid_time.json
  gpu_check.json           each part's status and seconds, and the projection
A part that runs out of time records what it did not measure; nothing else is left
behind (no checkpoint of a cut row, no temporary files).
`--dry-run` goes through every part on the CPU at tiny sizes, with torch.compile's
"eager" backend for the benchmark parts (dynamo traces, nothing is generated), to prove
the parts, the merge and the file layout before any GPU time is spent; it runs in CI.

Needs only torch, torchvision and timm (and numpy, tqdm, which they bring): no Jupyter,
papermill, thop, pandas or matplotlib. See benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

import torch

from .. import speed
from ..atomic import write_text
from ..config import CIFAR100_SIZES, ExperimentConfig, is_swin, swin_variant
from ..device import device_name, resolve_device
from ..grid import EPOCHS
from ..records import Outcome, write_grid_record
from ..results import now_iso
from .runs import device_slug, run_benchmark, select_runs
from .settings import BenchSettings
from .timing import time_limit

# The share of the budget by which each part must have finished. Part 1 compiles Swin's
# blocks twice (cold, then warm) beside two eager variants; part 3 times every row twice
# per variant and the typical loop once; part 4 runs every row for 2 epochs.
DEADLINES = {"compile_swin": 0.25, "compile_p1": 0.40, "bench": 0.72, "grid": 1.0}
BENCH_REPEATS = 2                 # timed passes per variant in part 3
FULL = dict(p1=CIFAR100_SIZES, p2=(10_000, 2_000), epochs=2)
QUICK = dict(p1=(256, 128), p2=(32, 16), epochs=2, p2_img_size=32)
DRY_MODELS = "resnet18,vit-2L-2H-128,swin_tiny-scratch,swin_tiny-finetune"
DRY_COMPILE_BACKEND = "eager"     # dynamo traces, nothing is generated
SWIN_COMPILE_ROW = "p2-swin_tiny-scratch"
PROJECTION_RULE = (f"steady epoch x default epochs x {CIFAR100_SIZES[0]:,} / train images, "
                   f"eval per epoch x epochs x {CIFAR100_SIZES[1]:,} / test images, plus the "
                   "row's measured one-off seconds (start, data, build, compile, writes)")


@dataclasses.dataclass(frozen=True)
class CheckSettings:
    """The check's options, resolved: --dry-run means quick sizes, the CPU and DRY_MODELS."""
    budget_s: float = 480.0
    device: str = "auto"
    models: str | None = None
    quick: bool = False
    dry_run: bool = False
    out_dir: str = "results/gpu-check"
    readmes: tuple = ()


# ----------------------------------------------------------------------------- part 4
def grid_rows(entries: list[dict], sizes: dict, results_dir: str, device: torch.device,
              deadline: float, log=print) -> tuple[list, dict]:
    """Part 4: every row through Experiment(cfg).run(), sharing one synthetic .npz in a
    temporary folder (removed at the end). Each row is measured afresh: its earlier
    result and checkpoint go first, and its checkpoint goes afterwards, so a row cut at
    the deadline leaves nothing that a rerun would trip over.
    Returns (outcomes for the time record, the projection)."""
    with tempfile.TemporaryDirectory(prefix="gpu-check-", dir=results_dir) as tmp:
        npz = _synthetic_npz(sizes, tmp)
        outcomes, projection = [], {}
        for e in entries:
            params = _row_params(e, sizes, npz, results_dir, device, tmp)
            if time.monotonic() >= deadline:
                outcomes.append(Outcome(e["run_name"], "not run",
                                        note="the check's budget was spent"))
                continue
            r, outcome = _run_row(ExperimentConfig.from_params(**params).resolved(), deadline)
            outcomes.append(outcome)
            if r and r.get("epoch_time_s"):
                projection[e["run_name"]] = project_row(r, outcome.wall_s)
            log(f"{e['run_name']:<28} {outcome.status:<8} {outcome.wall_s:6.1f} s {outcome.note}")
            if device.type == "cuda":
                torch.cuda.empty_cache()
    total = sum(p["total_s"] for p in projection.values())
    return outcomes, dict(rows=projection, total_s=total, rows_projected=len(projection),
                          rows_in_grid=len(entries), rule=PROJECTION_RULE)


def _synthetic_npz(sizes: dict, folder: str) -> str:
    """One synthetic .npz with as many images as the largest problem's share."""
    import numpy as np
    from ..data import make_synthetic
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
    params = {k: v for k, v in e.items() if k != "label"}
    params.update(dataset=npz, epochs=sizes["epochs"], train_subset=n_tr, test_subset=n_te,
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
    from ..experiment import Experiment
    t0 = time.perf_counter()
    _remove(cfg.result_path, cfg.checkpoint_path)
    try:
        with time_limit(deadline):
            r = Experiment(cfg).run(progress=False)
        status, note = r["status"], ""
    except Exception as err:  # noqa: BLE001  (record it, go on with the next row)
        r, status, note = None, "failed", f"{type(err).__name__}: {err}"[:300]
    finally:
        _remove(cfg.checkpoint_path)
    return r, Outcome(cfg.run_name, status, note=note, wall_s=time.perf_counter() - t0)


def project_row(r: dict, wall_s: float) -> dict:
    """One row at the grid's default epochs on CIFAR-100 (PROJECTION_RULE), from its result."""
    epochs = EPOCHS[r["problem"]]
    ph, n_tr, n_te = r["phases"], r["dataset"]["n_train"], r["dataset"]["n_test"]
    train = r["epoch_time_s"] * epochs * CIFAR100_SIZES[0] / n_tr
    evals = (ph["eval_s"] / len(r["history"])) * epochs * CIFAR100_SIZES[1] / n_te
    once = wall_s - ph["train_s"] - ph["eval_s"]        # start, data, build, compile...
    return dict(epochs=epochs, train_s=train, eval_s=evals, once_s=once,
                total_s=train + evals + once)


# ----------------------------------------------------------------------------- the parts
def bench_parts(check: CheckSettings, device, out: str, entries: list[dict]) -> list[tuple]:
    """(name, BenchSettings, why it is skipped or None) of parts 1-3, which all merge into
    the one benchmark file `out`."""
    base = BenchSettings(
        device=str(device), out=out, merge=True, readmes=check.readmes, quick=check.quick,
        img_size=QUICK["p2_img_size"] if check.quick else None,
        compile_backend=DRY_COMPILE_BACKEND if check.dry_run else speed.COMPILE_BACKEND)
    only_ours = dict(reference=False, feature_cache=False, data_path=False)
    names = [e["run_name"] for e in entries]
    p1 = [e["run_name"] for e in entries if not is_swin(e["model"])]
    return [
        ("compile_swin", dataclasses.replace(base, models=SWIN_COMPILE_ROW, compile="both",
                                             compile_scope="blocks", attention="both",
                                             **only_ours),
         None if SWIN_COMPILE_ROW in names else f"{SWIN_COMPILE_ROW} not selected"),
        ("compile_p1", dataclasses.replace(base, models=",".join(p1), compile="both",
                                           **only_ours),
         None if p1 else "no Problem 1 row selected"),
        ("bench", dataclasses.replace(base, models=check.models, compile="off",
                                      repeats=BENCH_REPEATS), None),
    ]


class Summary:
    """gpu_check.json, written after every part: each part's status, seconds and note."""

    def __init__(self, check: CheckSettings, device, out_dir: str, bench_file: str,
                 grid_dir: str):
        self.t0, self.budget_s = time.monotonic(), check.budget_s
        self.out_dir, self.path = out_dir, os.path.join(out_dir, "gpu_check.json")
        self.data = dict(kind="gpu-check", started=now_iso(), device=device_name(device),
                         torch=torch.__version__, budget_s=check.budget_s,
                         dry_run=check.dry_run, bench_file=bench_file, grid_dir=grid_dir,
                         parts={})

    def deadline(self, part: str) -> float:
        return self.t0 + DEADLINES[part] * self.budget_s

    def save(self) -> None:
        self.data["elapsed_s"] = time.monotonic() - self.t0
        os.makedirs(self.out_dir, exist_ok=True)
        write_text(self.path, json.dumps(self.data, indent=1) + "\n")

    def run_part(self, name: str, fn, skip: str | None = None) -> None:
        """fn() returns a note; a part that raises is recorded as failed, and the next
        part runs."""
        s = time.monotonic()
        if skip:
            self.data["parts"][name] = dict(status="skipped", seconds=0.0, note=skip)
            self.save()
            return
        print(f"== {name} ({s - self.t0:.0f} s into the budget)", file=sys.stderr, flush=True)
        try:
            note = fn()
            status = "done" if time.monotonic() < self.deadline(name) else "cut at its deadline"
        except (SystemExit, Exception) as err:  # noqa: BLE001  (record it, go on)
            note, status = f"{type(err).__name__}: {err}"[:500], "failed"
        self.data["parts"][name] = dict(status=status, seconds=time.monotonic() - s, note=note)
        self.save()


def grid_part(check: CheckSettings, entries: list[dict], device, grid_dir: str,
              deadline: float) -> dict:
    """Part 4 with its time record (grid/logs/grid_time.json); returns the projection."""
    g0, started = time.perf_counter(), now_iso()
    os.makedirs(grid_dir, exist_ok=True)
    sizes = QUICK if check.quick else FULL
    outcomes, projection = grid_rows(entries, sizes, grid_dir, device, deadline,
                                     log=lambda m: print(m, file=sys.stderr, flush=True))
    rows_s = time.perf_counter() - g0
    write_grid_record(grid_dir, outcomes, rows_s=rows_s, total_s=rows_s, started=started,
                      finished=now_iso(), settings=dict(kind="gpu-check grid", sizes=sizes))
    return projection


# ----------------------------------------------------------------------------- the CLI
def parse_args(argv=None) -> CheckSettings:
    p = argparse.ArgumentParser(prog="python -m helpers.bench check",
                                description=__doc__.split("\n")[0])
    p.add_argument("--budget-s", type=float, default=CheckSettings.budget_s,
                   help=f"seconds in all (default {CheckSettings.budget_s:g})")
    p.add_argument("--device", default=CheckSettings.device)
    p.add_argument("--models", help="run names or globs, as helpers.bench (default: the grid)")
    p.add_argument("--quick", action="store_true",
                   help="CPU-sized: the benchmark's quick sizes and a tiny grid")
    p.add_argument("--dry-run", action="store_true",
                   help="every part on the CPU at tiny sizes, compile with the "
                        f"{DRY_COMPILE_BACKEND!r} backend (models: {DRY_MODELS} unless --models)")
    p.add_argument("--out-dir", default=CheckSettings.out_dir,
                   help="the one folder everything is written to "
                        f"(default {CheckSettings.out_dir})")
    p.add_argument("--readme", nargs="*", default=[],
                   help="READMEs whose benchmark table to refresh (default: none)")
    args = p.parse_args(argv)
    if not args.budget_s > 0:
        p.error(f"--budget-s={args.budget_s}: must be a positive number of seconds")
    dry = args.dry_run
    return CheckSettings(budget_s=args.budget_s, device="cpu" if dry else args.device,
                         models=args.models or (DRY_MODELS if dry else None),
                         quick=args.quick or dry, dry_run=dry, out_dir=args.out_dir,
                         readmes=tuple(args.readme))


def main(argv=None) -> dict:
    """Every part in order, within the budget; returns what gpu_check.json holds."""
    check = parse_args(argv)
    device = resolve_device(check.device)
    entries = select_runs(check.models)                # a bad --models fails here, at once
    out_dir = os.path.abspath(check.out_dir)
    out = os.path.join(out_dir, f"{device_slug(device)}.json")
    grid_dir = os.path.join(out_dir, "grid")
    summary = Summary(check, device, out_dir, out, grid_dir)
    for name, settings, skip in bench_parts(check, device, out, entries):
        summary.run_part(name, lambda s=settings, n=name: run_benchmark(
            s, deadline=summary.deadline(n)) and None, skip=skip)

    def grid():
        summary.data["projection"] = p = grid_part(check, entries, device, grid_dir,
                                                   summary.deadline("grid"))
        return f"{p['rows_projected']} of {p['rows_in_grid']} rows projected"
    summary.run_part("grid", grid)
    summary.data["finished"] = now_iso()
    summary.save()
    print(f"wrote {out_dir}/: {os.path.basename(out)}, gpu_check.json, grid/ "
          f"in {time.monotonic() - summary.t0:.0f} s", file=sys.stderr)
    return summary.data


if __name__ == "__main__":
    main()
