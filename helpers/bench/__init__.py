"""The speed benchmark: `python -m helpers.bench [--quick] [--models ...]`.

runs.py       every grid run on our path and the typical loop; the result file; the CLI
timing.py     the engine's train_epoch / evaluate, timed honestly
reference.py  the typical homework loop (DataLoader + PIL transforms) to compare against
tables.py     datasheet peaks, the result JSON, and the README tables rendered from it
"""
from .runs import bench_run, build_random, main, run_config, select_runs
from .tables import peak_tflops
from .timing import time_train

__all__ = ["bench_run", "build_random", "main", "peak_tflops", "run_config", "select_runs",
           "time_train"]
