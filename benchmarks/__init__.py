"""The speed benchmark: `python -m benchmarks [--quick] [--models ...]`, or
run_benchmark(BenchSettings(...)) from Python.

settings.py      BenchSettings (every option, as data), the rows it selects, and the sizes,
                 variants and datasheet peak it resolves to on a device
cli.py           the command line: flags -> BenchSettings; --render-only
benchmark.py     run_benchmark: every selected row measured (our path eager and compiled, the
                 typical loop), then the data path; a training step's FLOPs, for the MFU
timing.py        the engine's train_epoch / evaluate, timed honestly; attempt under a deadline
typical_loop.py  the typical homework loop (DataLoader + PIL transforms) to compare against
benchfile.py     the result file: where it lives, written, merged, read; a row judged
render.py        the README tables rendered from the result files; what compiling saves
check.py         `python -m benchmarks check`: what a GPU session measures, within a budget;
                 its parts in smoke.py and gridrows.py (the bench part is run_benchmark)
"""
from .benchmark import run_benchmark
from .settings import BenchSettings

__all__ = ["BenchSettings", "run_benchmark"]
