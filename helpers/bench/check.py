"""`python -m helpers.bench.check`: everything a GPU session should measure, in one sitting.

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
"eager" backend (dynamo traces, nothing is generated), to prove the parts, the merge and
the file layout before any GPU time is spent; it runs in CI.

Needs only torch, torchvision and timm (and numpy, tqdm, which they bring): no Jupyter,
papermill, thop, pandas or matplotlib. See benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import torch

from .. import speed
from ..atomic import write_text
from ..config import CIFAR100_SIZES, ExperimentConfig
from ..device import device_name, device_slug, resolve_device
from ..grid import EPOCHS
from ..records import Outcome, write_grid_record
from ..results import now_iso
from . import runs as bench

# The share of the budget by which each part must have finished. Part 1 compiles Swin's
# blocks twice (cold, then warm) beside two eager variants; part 3 times every row twice
# per variant and the typical loop once; part 4 runs every row for 2 epochs.
DEADLINES = {"compile_swin": 0.25, "compile_p1": 0.40, "bench": 0.72, "grid": 1.0}
BENCH_REPEATS = "2"               # timed passes per variant (the benchmark's default is 3)
FULL = dict(p1=CIFAR100_SIZES, p2=(10_000, 2_000), epochs=2)
QUICK = dict(p1=(256, 128), p2=(32, 16), epochs=2, p2_img_size=32)
DRY_MODELS = "resnet18,vit-2L-2H-128,swin_tiny-scratch,swin_tiny-finetune"
SWIN_COMPILE_ROW = "p2-swin_tiny-scratch"


def grid_rows(entries: list[dict], sizes: dict, results_dir: str, device: torch.device,
              deadline: float, log=print) -> tuple[list, dict]:
    """Part 4: every row through Experiment(cfg).run(), sharing one synthetic .npz in a
    temporary folder (removed at the end). Each row is measured afresh: its earlier
    result and checkpoint go first, and its checkpoint goes afterwards, so a row cut at
    the deadline leaves nothing that a rerun would trip over.
    Returns (outcomes for the time record, the projection)."""
    with tempfile.TemporaryDirectory(prefix="gpu-check-", dir=results_dir) as tmp:
        return _grid_rows(entries, sizes, results_dir, device, deadline, log, tmp)


def _forget_row(cfg: ExperimentConfig) -> None:
    for path in (cfg.result_path, cfg.checkpoint_path):
        if os.path.exists(path):
            os.remove(path)


def _grid_rows(entries, sizes, results_dir, device, deadline, log, tmp):
    from ..data import make_synthetic
    from ..experiment import Experiment
    import numpy as np
    import timm

    n_train = max(sizes["p1"][0], sizes["p2"][0])
    n_test = max(sizes["p1"][1], sizes["p2"][1])
    data = make_synthetic(n_train, n_test, seed=0)
    npz = os.path.join(tmp, f"synthetic-{n_train}-{n_test}.npz")
    np.savez(npz, x_train=data.x_train.numpy(), y_train=data.y_train.numpy(),
             x_test=data.x_test.numpy(), y_test=data.y_test.numpy())
    weights = {}
    outcomes, projection = [], {}
    for e in entries:
        p2 = e["model"].startswith("swin")
        n_tr, n_te = sizes["p2" if p2 else "p1"]
        params = {k: v for k, v in e.items() if k != "label"}
        params.update(dataset=npz, epochs=sizes["epochs"], train_subset=n_tr, test_subset=n_te,
                      results_dir=results_dir, device=str(device), seed=0)
        if p2 and sizes.get("p2_img_size"):
            params["img_size"] = sizes["p2_img_size"]
        if p2 and params.get("mode") != "scratch":
            variant = e["model"].split("_")[1]
            if variant not in weights:                 # a random ImageNet-shaped file
                path = os.path.join(tmp, f"swin_{variant}.pth")
                torch.save(timm.create_model(f"swin_{variant}_patch4_window7_224",
                                             num_classes=1000).state_dict(), path)
                weights[variant] = path
            params["weights"] = weights[variant]
        t0 = time.perf_counter()
        if time.monotonic() >= deadline:
            outcomes.append(Outcome(e["run_name"], "not run", note="the check's budget was spent"))
            continue
        cfg = ExperimentConfig.from_params(**params).resolved()
        _forget_row(cfg)
        try:
            with bench.time_limit(deadline):
                r = Experiment(cfg).run(progress=False)
            status, note = r["status"], ""
        except Exception as err:  # noqa: BLE001  (record it, go on with the next row)
            r, status, note = None, "failed", f"{type(err).__name__}: {err}"[:300]
        finally:
            if os.path.exists(cfg.checkpoint_path):
                os.remove(cfg.checkpoint_path)
        wall = time.perf_counter() - t0
        outcomes.append(Outcome(e["run_name"], status, note=note, wall_s=wall))
        if r and r.get("epoch_time_s"):
            epochs = EPOCHS[2 if p2 else 1]
            ph = r["phases"]
            train = r["epoch_time_s"] * epochs * CIFAR100_SIZES[0] / n_tr
            evals = (ph["eval_s"] / len(r["history"])) * epochs * CIFAR100_SIZES[1] / n_te
            once = wall - ph["train_s"] - ph["eval_s"]        # start, data, build, compile...
            projection[e["run_name"]] = dict(epochs=epochs, train_s=train, eval_s=evals,
                                             once_s=once, total_s=train + evals + once)
        log(f"{e['run_name']:<28} {status:<8} {wall:6.1f} s {note}")
        if device.type == "cuda":
            torch.cuda.empty_cache()
    total = sum(p["total_s"] for p in projection.values())
    return outcomes, dict(rows=projection, total_s=total, rows_projected=len(projection),
                          rows_in_grid=len(entries),
                          rule="steady epoch x default epochs x 50,000 / train images, eval "
                               "per epoch x epochs x 10,000 / test images, plus the row's "
                               "measured one-off seconds (start, data, build, compile, writes)")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m helpers.bench.check",
                                description=__doc__.split("\n")[0])
    p.add_argument("--budget-s", type=float, default=480.0, help="seconds in all (default 480)")
    p.add_argument("--device", default="auto")
    p.add_argument("--models", help="run names or globs, as helpers.bench (default: the grid)")
    p.add_argument("--quick", action="store_true",
                   help="CPU-sized: the benchmark's quick sizes and a tiny grid")
    p.add_argument("--dry-run", action="store_true",
                   help="every part on the CPU at tiny sizes, compile with the eager backend "
                        f"(models: {DRY_MODELS} unless --models)")
    p.add_argument("--out-dir", default="results/gpu-check",
                   help="the one folder everything is written to (default results/gpu-check)")
    p.add_argument("--readme", nargs="*", default=None,
                   help="READMEs whose benchmark table to refresh (default: none)")
    args = p.parse_args(argv)
    if not args.budget_s > 0:
        p.error(f"--budget-s={args.budget_s}: must be a positive number of seconds")
    if args.dry_run:
        args.quick, args.device = True, "cpu"
        args.models = args.models or DRY_MODELS
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    t0, started = time.monotonic(), now_iso()
    device = resolve_device(args.device)
    entries = bench.select_runs(args.models)           # a bad --models fails here, at once
    out_dir = os.path.abspath(args.out_dir)
    out = os.path.join(out_dir, f"{device_slug(device)}.json")
    grid_dir = os.path.join(out_dir, "grid")
    summary_path = os.path.join(out_dir, "gpu_check.json")
    summary = dict(kind="gpu-check", started=started, device=device_name(device),
                   torch=torch.__version__, budget_s=args.budget_s, dry_run=args.dry_run,
                   bench_file=out, grid_dir=grid_dir, parts={})
    if args.dry_run:
        speed.COMPILE_BACKEND = "eager"

    def deadline(part):
        return t0 + DEADLINES[part] * args.budget_s

    def save():
        summary["elapsed_s"] = time.monotonic() - t0
        os.makedirs(out_dir, exist_ok=True)
        write_text(summary_path, json.dumps(summary, indent=1) + "\n")

    def part(name, fn, skip: str | None = None):
        s = time.monotonic()
        if skip:
            summary["parts"][name] = dict(status="skipped", seconds=0.0, note=skip)
            save()
            return
        print(f"== {name} ({s - t0:.0f} s into the budget)", file=sys.stderr, flush=True)
        try:
            note = fn()
            status = "done" if time.monotonic() < deadline(name) else "cut at its deadline"
        except (SystemExit, Exception) as err:  # noqa: BLE001  (record it, go on)
            note, status = f"{type(err).__name__}: {err}"[:500], "failed"
        summary["parts"][name] = dict(status=status, seconds=time.monotonic() - s, note=note)
        save()

    quick = ["--quick", "--img-size", str(QUICK["p2_img_size"])] if args.quick else []
    common = quick + ["--device", str(device), "--out", out, "--merge",
                      "--readme", *(args.readme or [])]
    only = ["--no-reference", "--no-cache", "--no-data-path"]
    names = [e["run_name"] for e in entries]
    swin = [n for n in names if n == SWIN_COMPILE_ROW]
    part("compile_swin", lambda: bench.main(
        common + ["--models", swin[0] if swin else "", "--compile", "both",
                  "--compile-scope", "blocks", "--attention", "both"] + only,
        deadline=deadline("compile_swin")) and None,
        skip=None if swin else f"{SWIN_COMPILE_ROW} not selected")
    p1 = [e["run_name"] for e in entries if not e["model"].startswith("swin")]
    part("compile_p1", lambda: bench.main(
        common + ["--models", ",".join(p1), "--compile", "both"] + only,
        deadline=deadline("compile_p1")) and None,
        skip=None if p1 else "no Problem 1 row selected")
    models = ["--models", args.models] if args.models else []
    part("bench", lambda: bench.main(common + models + ["--compile", "off", "--repeats",
                                                        BENCH_REPEATS],
                                     deadline=deadline("bench")) and None)

    def grid_part():
        g0, g_started = time.perf_counter(), now_iso()
        os.makedirs(grid_dir, exist_ok=True)
        sizes = QUICK if args.quick else FULL
        outcomes, projection = grid_rows(entries, sizes, grid_dir, device, deadline("grid"),
                                         log=lambda m: print(m, file=sys.stderr, flush=True))
        rows_s = time.perf_counter() - g0
        write_grid_record(grid_dir, outcomes, rows_s=rows_s, total_s=rows_s,
                          started=g_started, finished=now_iso(),
                          settings=dict(kind="gpu-check grid", sizes=sizes))
        summary["projection"] = projection
        return f"{projection['rows_projected']} of {projection['rows_in_grid']} rows projected"
    part("grid", grid_part)
    summary["finished"] = now_iso()
    save()
    print(f"wrote {out_dir}/: {os.path.basename(out)}, gpu_check.json, grid/ "
          f"in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return summary


if __name__ == "__main__":
    main()
