"""`python -m helpers.bench.check`: everything a GPU session should measure, in one sitting.

Within a time budget (default 8 minutes), in this order, each part written as it goes:
  1. the benchmark of every grid row: our path eager with timm's and the fused Swin
     attention, against the typical loop, plus the data path
     -> benchmarks/results/<device>.json;
  2. every grid row end to end through Experiment(cfg).run() for 2 epochs on synthetic
     CIFAR-shaped data (Problem 1 at 50k/10k images, Problem 2 at 10k/2k; the Swin
     fine-tunes load a randomly initialised weights file), with each row's phases
     -> <results>/logs/grid_time.json, and the grid at its default budget projected
     from the steady epochs (grid.EPOCHS, 50k/10k images);
  3. torch.compile against eager for Problem 1 (whole model), merged into the file of 1;
  4. with time left, Swin-T scratch with its blocks compiled, fused and not, merged too.
A part that runs out of time records what it did not measure; a cut run keeps the
complete figures an earlier part wrote. The summary, <results>/gpu_check.json, lists each
part's status and seconds and the projection.

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

from ..atomic import write_text
from ..config import CIFAR100_SIZES, ExperimentConfig
from ..device import device_name, device_slug, resolve_device
from ..grid import EPOCHS
from ..paths import BENCH_DIR
from ..results import now_iso
from . import runs as bench

# Share of the budget by which each part must have finished.
# Sized from the H100 sitting of 2026-11-26 (its all.log): the eager benchmark took the
# largest share and the grid part a little over half as much; fused variants add to the first.
DEADLINES = {"bench": 0.55, "grid": 0.85, "compile_p1": 0.97, "compile_swin": 1.0}
BENCH_REPEATS = "2"               # timed passes per variant (the benchmark's default is 3)
SWIN_COMPILE_MIN_S = 150          # part 4 starts only with this much of the budget left
FULL = dict(p1=CIFAR100_SIZES, p2=(10_000, 2_000), epochs=2)
QUICK = dict(p1=(256, 128), p2=(32, 16), epochs=2, p2_img_size=32)


def _rows(patterns: str | None) -> list[dict]:
    return bench.select_runs(patterns)


def grid_rows(entries: list[dict], sizes: dict, results_dir: str, device: torch.device,
              deadline: float, log=print) -> tuple[list, dict]:
    """Part 2: every row through Experiment(cfg).run(), sharing one synthetic .npz.
    Returns (outcomes for the runner's record, the projection)."""
    from ..data import make_synthetic
    from ..experiment import Experiment
    from ..runner.execute import Outcome
    import numpy as np
    import timm

    tmp = tempfile.mkdtemp(prefix="gpu-check-")
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
        try:
            with bench._time_limit(deadline):
                r = Experiment(ExperimentConfig.from_params(**params)).run(progress=False)
            status, note = r["status"], ""
        except Exception as err:  # noqa: BLE001  (record it, go on with the next row)
            r, status, note = None, "failed", f"{type(err).__name__}: {err}"[:300]
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
                   help="CPU-sized: the benchmark's quick sizes and a tiny grid (tests)")
    p.add_argument("--out", help="benchmark JSON (default benchmarks/results/<device>.json)")
    p.add_argument("--results-dir", default="results/gpu-check",
                   help="the grid part's results, time record and summary")
    p.add_argument("--readme", nargs="*", default=None,
                   help="READMEs whose benchmark table to refresh (default: none)")
    args = p.parse_args(argv)
    if not args.budget_s > 0:
        p.error(f"--budget-s={args.budget_s}: must be a positive number of seconds")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    t0, started = time.monotonic(), now_iso()
    device = resolve_device(args.device)
    out = args.out or os.path.join(BENCH_DIR, "results", f"{device_slug(device)}.json")
    entries = _rows(args.models)                       # a bad --models fails here, at once
    summary_path = os.path.join(args.results_dir, "gpu_check.json")
    summary = dict(kind="gpu-check", started=started, device=device_name(device),
                   torch=torch.__version__, budget_s=args.budget_s, bench_file=out, parts={})

    def deadline(part):
        return t0 + DEADLINES[part] * args.budget_s

    def save():
        summary["elapsed_s"] = time.monotonic() - t0
        os.makedirs(args.results_dir, exist_ok=True)
        write_text(summary_path, json.dumps(summary, indent=1) + "\n")

    def part(name, fn):
        s = time.monotonic()
        print(f"== {name} ({s - t0:.0f} s into the budget)", file=sys.stderr, flush=True)
        try:
            note = fn()
            status = "done" if time.monotonic() < deadline(name) else "cut at its deadline"
        except (SystemExit, Exception) as err:  # noqa: BLE001  (record it, go on with the next part)
            note, status = f"{type(err).__name__}: {err}"[:500], "failed"
        summary["parts"][name] = dict(status=status, seconds=time.monotonic() - s, note=note)
        save()

    quick = ["--quick"] if args.quick else []
    common = quick + ["--device", args.device, "--out", out, "--readme", *(args.readme or [])]
    models = ["--models", args.models] if args.models else []
    part("bench", lambda: bench.main(common + models + ["--compile", "off", "--repeats", BENCH_REPEATS],
                                     deadline=deadline("bench")) and None)

    def grid_part():
        from ..runner.record import write_grid_record
        g0, g_started = time.perf_counter(), now_iso()
        outcomes, projection = grid_rows(entries, QUICK if args.quick else FULL,
                                         args.results_dir, device, deadline("grid"),
                                         log=lambda m: print(m, file=sys.stderr, flush=True))
        rows_s = time.perf_counter() - g0
        write_grid_record(args.results_dir, outcomes, rows_s=rows_s, total_s=rows_s,
                          started=g_started, finished=now_iso(),
                          settings=dict(kind="gpu-check grid", sizes=QUICK if args.quick else FULL))
        summary["projection"] = projection
        return f"{projection['rows_projected']} of {projection['rows_in_grid']} rows projected"
    part("grid", grid_part)

    p1 = [e["run_name"] for e in entries if not e["model"].startswith("swin")]
    if p1:
        part("compile_p1", lambda: bench.main(
            common + ["--models", ",".join(p1), "--compile", "both", "--merge",
                      "--no-reference", "--no-cache", "--no-data-path"],
            deadline=deadline("compile_p1")) and None)
    left = t0 + args.budget_s - time.monotonic()
    swin = [e["run_name"] for e in entries if e["run_name"] == "p2-swin_tiny-scratch"]
    if swin and left >= SWIN_COMPILE_MIN_S:
        part("compile_swin", lambda: bench.main(
            common + ["--models", swin[0], "--compile", "both", "--compile-scope", "blocks",
                      "--attention", "both", "--merge", "--no-reference", "--no-cache",
                      "--no-data-path"], deadline=deadline("compile_swin")) and None)
    else:
        summary["parts"]["compile_swin"] = dict(
            status="skipped", seconds=0.0,
            note=f"{left:.0f} s left, fewer than {SWIN_COMPILE_MIN_S}" if swin
            else "p2-swin_tiny-scratch not selected")
    summary["finished"] = now_iso()
    save()
    print(f"wrote {out}, {summary_path} and {os.path.join(args.results_dir, 'logs', 'grid_time.json')}"
          f" in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    return summary


if __name__ == "__main__":
    main()
