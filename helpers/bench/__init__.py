"""The speed benchmark: `python -m helpers.bench [--quick] [--models ...]`, or
run_benchmark(BenchSettings(...)) from Python.

settings.py   BenchSettings (every option, as data) and the sizes and variants it resolves to
runs.py       run_benchmark: every selected grid run, the data path, the result file
row.py        one grid row measured on our path and the typical loop; the FLOP recount
flops.py      FLOPs of one training step, for the model FLOP utilisation
timing.py     the engine's train_epoch / evaluate, timed honestly; the time limit
reference.py  the typical homework loop (DataLoader + PIL transforms) to compare against
compare.py    a row judged: the variant the grid trains, compile costs, the row's status
render.py     datasheet peaks, the result JSON, and the README tables rendered from it
cli.py        the command line: flags -> BenchSettings
check.py      `python -m helpers.bench check`: what a GPU session measures, within a budget
"""
from .render import peak_tflops
from .row import bench_run, build_random, run_config
from .runs import run_benchmark, select_runs
from .settings import BenchSettings
from .timing import time_train

__all__ = ["BenchSettings", "bench_run", "build_random", "peak_tflops", "run_benchmark",
           "run_config", "select_runs", "time_train"]
