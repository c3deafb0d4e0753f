"""What one benchmark invocation measures, as data: BenchSettings; the grid rows it names
(select_runs), and the sizes, variants and datasheet peak it resolves to on a device.

The CLI (benchmarks/cli.py) only turns flags into a BenchSettings; benchmarks.check
builds its parts with dataclasses.replace. A bad value is refused here, with the flag it
comes from, before any measurement.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import os
import re

from helpers.grid import grid
from helpers.speed import COMPILE_BACKEND

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
COMPILE_MODES = ("auto", "off", "on", "both")          # both = eager and compiled
VARIANTS = {False: "eager", True: "compiled"}   # our path's variants, by torch.compile off/on
BENCH_DIR = os.path.dirname(os.path.abspath(__file__))   # benchmarks/: this package
REPO_ROOT = os.path.dirname(BENCH_DIR)                    # the checkout it lives in
DEFAULT_READMES = (os.path.join(BENCH_DIR, "README.md"), os.path.join(REPO_ROOT, "README.md"))
# The least value of each count a run can take; None leaves the mode's size.
COUNT_MINIMUM = dict(img_size=1, batch_size=1, eval_batch_size=1, steps=1, warmup_steps=0,
                     eval_steps=1, repeats=1, threads=1)

# Sizes per family. "full" is meant for a GPU (batch None = the engine's default);
# "quick" keeps a whole-grid CPU run to minutes. The counts of BenchSettings override both.
SIZES = {
    "full": {"p1": dict(batch_size=None, eval_batch_size=None, steps=30, warmup_steps=10,
                        eval_steps=5, repeats=3),
             "swin": dict(batch_size=None, eval_batch_size=None, steps=20, warmup_steps=5,
                          eval_steps=5, repeats=3, img_size=None)},
    "quick": {"p1": dict(batch_size=32, eval_batch_size=64, steps=4, warmup_steps=1,
                         eval_steps=1, repeats=1),
              "swin": dict(batch_size=8, eval_batch_size=16, steps=2, warmup_steps=1,
                           eval_steps=1, repeats=1, img_size=None)},
}
# Data path only: (image side, batch size, timed batches) per mode. At 224 px the batch is
# Swin's training batch in both modes, so the figure is for the batches the engine really
# makes (on a CPU, batch size decides whether a batch is a fresh mmap, for either path).
DATA_PATH_SIZES = {"full": [(32, 512, 40), (224, 128, 20)],
                   "quick": [(32, 256, 12), (224, 128, 12)]}


def flag(name: str) -> str:
    """The CLI flag of a BenchSettings field: 'eval_batch_size' -> '--eval-batch-size'."""
    return "--" + name.replace("_", "-")


@dataclasses.dataclass(frozen=True)
class BenchSettings:
    """Every option of one benchmark invocation; the defaults are the CLI's."""
    models: str | None = None          # run names or globs, comma-separated; None = the grid
    quick: bool = False                # small batches and few steps (CPU, tests)
    device: str = "auto"               # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"            # one of PRECISIONS
    compile: str = "auto"              # one of COMPILE_MODES; auto = both on CUDA, else off
    img_size: int | None = None        # input side of the Swin runs; None = the grid's
    batch_size: int | None = None      # training batch of every run
    eval_batch_size: int | None = None
    steps: int | None = None           # timed training steps per pass
    warmup_steps: int | None = None    # untimed steps before the timed passes
    eval_steps: int | None = None      # timed evaluation batches
    repeats: int | None = None         # timed passes; images/s is their median
    threads: int | None = None         # torch CPU threads
    reference: bool = True             # time the typical loop too
    data_path: bool = True             # time the data path alone
    notes: tuple = ()                  # stored with the result
    merge: bool = False                # keep what the existing --out file has and this lacks
    out: str | None = None             # None = benchmarks/results/<device-slug>.json
    readmes: tuple = DEFAULT_READMES   # whose generated table to refresh afterwards
    compile_backend: str = COMPILE_BACKEND   # torch.compile's backend ("eager": no codegen)

    def __post_init__(self):
        for name, allowed in (("precision", PRECISIONS), ("compile", COMPILE_MODES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{flag(name)}={getattr(self, name)!r}: must be one of "
                                 f"{', '.join(allowed)}")
        for name, least in COUNT_MINIMUM.items():
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < least):
                raise ValueError(f"{flag(name)}={value!r}: must be an integer of at least "
                                 f"{least}")

    @property
    def mode(self) -> str:
        """'quick' or 'full': the key of SIZES and DATA_PATH_SIZES."""
        return "quick" if self.quick else "full"


def family_sizes(settings: BenchSettings) -> dict:
    """The sizes of each family ('p1', 'swin'): the mode's, with the settings' counts."""
    sizes = {fam: dict(s) for fam, s in SIZES[settings.mode].items()}
    for s in sizes.values():
        for key in s:
            if getattr(settings, key) is not None:
                s[key] = getattr(settings, key)
    return sizes


def bench_variants(settings: BenchSettings, device) -> list[bool]:
    """torch.compile off or on, for every variant of our path to measure, eager first."""
    gpu = device.type == "cuda"
    return {"off": [False], "on": [True], "both": [False, True],
            "auto": [False, True] if gpu else [False]}[settings.compile]


def select_runs(patterns: str | None) -> list[dict]:
    """Grid entries whose run name (with or without its 'p1-'/'p2-') matches a pattern, in
    the order the patterns name them (a glob's matches in grid order): the order they are
    measured in, so a caller short of time names the rows that matter most first. Result
    files keep the grid's order whatever it is."""
    runs = grid()
    if not patterns:
        return runs
    chosen = []
    for pat in [p.strip() for p in patterns.split(",") if p.strip()]:
        hits = [r for r in runs if fnmatch.fnmatch(r["run_name"], pat)
                or fnmatch.fnmatch(r["run_name"][3:], pat)]
        if not hits:
            raise SystemExit(f"--models: {pat!r} matches no run; valid run names: "
                             f"{', '.join(r['run_name'] for r in runs)} (globs allowed)")
        chosen += [r for r in hits if r not in chosen]
    return chosen



# Dense (no 2:4 sparsity) tensor-core peaks in TFLOP/s from NVIDIA's datasheets, for
# MFU only. fp32 means TF32 tensor cores, which setup_backends switches on (T4: plain FP32).
# Regexes over torch.cuda.get_device_name(), most specific first.
PEAK_SOURCE = "NVIDIA datasheet, dense (no sparsity)"
PEAK_TFLOPS = [
    (r"H200 NVL", {"bf16": 835.5, "fp16": 835.5, "fp32": 417.5}),
    (r"H200", {"bf16": 989.4, "fp16": 989.4, "fp32": 494.7}),           # SXM
    (r"H100 PCIe", {"bf16": 756.5, "fp16": 756.5, "fp32": 378.0}),
    (r"H100", {"bf16": 989.4, "fp16": 989.4, "fp32": 494.7}),           # SXM
    (r"A100", {"bf16": 312.0, "fp16": 312.0, "fp32": 156.0}),
    (r"\bL4\b", {"bf16": 121.0, "fp16": 121.0, "fp32": 60.0}),
    (r"\bT4\b", {"fp16": 65.0, "fp32": 8.1}),
]


def peak_tflops(name: str, precision: str) -> float | None:
    """Datasheet peak for this device and precision, or None (CPUs, unknown GPUs)."""
    for pattern, peaks in PEAK_TFLOPS:
        if re.search(pattern, name):
            return peaks.get(precision)
    return None
