"""The speed benchmark: `python -m helpers.bench [--quick] [--models ...]`, or
run_benchmark(BenchSettings(...)) from Python.

settings.py   BenchSettings (every option, as data), the rows it selects, and the sizes,
              variants and datasheet peak it resolves to on a device
cli.py        the command line: flags -> BenchSettings; --render-only
benchmark.py  run_benchmark: every selected row measured (our path's variants, the feature
              cache, the typical loop), then the data path
timing.py     the engine's train_epoch / evaluate, timed honestly; attempt under a deadline
reference.py  the typical homework loop (DataLoader + PIL transforms) to compare against
flops.py      FLOPs of one training step, for the model FLOP utilisation
benchfile.py  the result file: where it lives, written, merged, read; a row judged
render.py     the README tables rendered from the result files
check.py      `python -m helpers.bench check`: what a GPU session measures, within a budget;
              its parts in smoke.py and gridrows.py (the bench part is run_benchmark)
"""
from .benchmark import bench_run, build_random, run_benchmark, run_config
from .settings import BenchSettings, peak_tflops, select_runs
from .timing import time_train

__all__ = ["BenchSettings", "bench_run", "build_random", "peak_tflops", "run_benchmark",
           "run_config", "select_runs", "time_train"]
