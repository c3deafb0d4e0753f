"""Speed benchmark of the grid: run_benchmark(BenchSettings(...)), or the CLI
`python -m benchmarks [--quick] [--models ...]` (benchmarks/cli.py).

For every run of helpers.grid.grid() it times OUR path (DeviceLoader batches through
the engine's own train_epoch / make_optimizer / make_scheduler / precision; timing rules
in benchmarks/timing.py) and the "typical homework loop" (benchmarks.typical_loop) on
synthetic CIFAR-shaped images (speed does not depend on pixel values), and writes
benchmarks/results/<device>.json (benchmarks/benchfile.py) plus the tables in the
READMEs (benchmarks/render.py). Each variant of a row (eager, compiled) is measured on
its own (attempt), and the file is written after each, so a failure or a deadline costs
only what it cuts.
Weights are random: fine-tune runs need no download, and the frozen fine-tune is the
same backbone wrapped frozen, exactly as helpers.models wraps the pretrained one.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import sys
import time
from functools import partial

import torch
import torch.nn.functional as F

from helpers.batches import make_batches
from helpers.config import ExperimentConfig, is_swin, row_overrides
from helpers.data import make_synthetic
from helpers.device import (Precision, device_name, resolve_device, resolve_precision,
                            seed_everything, setup_backends)
from helpers.measure import counting_flops, example_batch
from helpers.models import SwinClassifier, build_model, input_spec
from helpers.results import now_iso
from helpers.speed import COMPILE_BACKEND
from helpers.train import place_model
from . import typical_loop as ref
from .benchfile import bench_file, device_slug, judge_row, load_for_merge, write_bench_file
from .render import render_readme
from .settings import (DATA_PATH_SIZES, VARIANTS, BenchSettings, bench_variants, family_sizes,
                       peak_tflops, select_runs)
from .timing import (EPOCH_IMAGES, OUT_OF_TIME, attempt, cold_compile_cache, cpu_snapshot, failed,
                     measured, other_cpu_share, release_memory, time_train)

NUM_CLASSES = 100
RANDOM_WEIGHTS = "random init (speed does not depend on weight values; nothing downloaded)"


# ----------------------------------------------------------------------------- a whole run
@dataclasses.dataclass(frozen=True)
class Resolved:
    """BenchSettings resolved on their device: what run_benchmark settles before it
    measures anything (a bad --models or --merge fails here, in seconds)."""
    settings: BenchSettings
    device: torch.device
    precision: Precision
    runs: list
    sizes: dict             # per family, 'p1' and 'swin'
    variants: list
    peak: float | None
    out_path: str
    previous: dict | None   # the --out file's result, with --merge

    def family(self, entry: dict) -> dict:
        return self.sizes["swin" if is_swin(entry["model"]) else "p1"]


def resolve(settings: BenchSettings) -> Resolved:
    device = resolve_device(settings.device)
    runs = select_runs(settings.models)
    precision = resolve_precision(settings.precision, device)
    out_path = settings.out or bench_file(device)
    previous = load_for_merge(out_path, device_slug=device_slug(device),
                              precision=precision.name,
                              quick=settings.quick) if settings.merge else None
    peak = peak_tflops(device_name(device), precision.name) if device.type == "cuda" else None
    return Resolved(settings, device, precision, runs, family_sizes(settings),
                    bench_variants(settings, device), peak, out_path, previous)


def _synthetic_for(rs: Resolved):
    """One synthetic set, large enough for every run (each takes its first images)."""
    need = [(rs.family(r), run_config(r, rs.family(r), rs.device, rs.precision))
            for r in rs.runs]
    n_train = max((s["warmup_steps"] + s["steps"] * s["repeats"]) * c.batch_size
                  for s, c in need)
    n_test = max(s["eval_steps"] * c.eval_batch_size for s, c in need)
    return make_synthetic(n_train, n_test, num_classes=NUM_CLASSES, seed=0)


def measure_row(rs: Resolved, entry: dict, data, deadline: float | None,
                on_progress=None) -> dict:
    """bench_run of one grid entry (each variant on its own, under attempt), or a failed
    record when the row cannot even be built (out of time, out of memory)."""
    t0, s = time.perf_counter(), rs.settings
    bare = dict(run_name=entry["run_name"], label=entry["label"])
    if deadline is not None and time.monotonic() >= deadline:
        r = dict(bare, **failed(OUT_OF_TIME))
    else:
        try:
            r = bench_run(entry, rs.family(entry), data, device=rs.device,
                          precision=rs.precision, variants=rs.variants,
                          reference=s.reference, peak=rs.peak,
                          compile_backend=s.compile_backend, deadline=deadline,
                          on_progress=on_progress)
        except (RuntimeError, ValueError) as e:   # e.g. CUDA out of memory building it
            release_memory(rs.device)
            r = dict(bare, **failed(f"{type(e).__name__}: {e}"))
    ours = ", ".join(f"{name} {t['images_per_s']:.1f} img/s" if measured(t) else f"{name} failed"
                     for name, t in r.get("ours", {}).items()) or r.get("reason")
    speedup = f"; {r['speedup']:.2f}x the typical loop" if r.get("speedup") else ""
    print(f"{entry['run_name']:<28} {ours}{speedup}  ({time.perf_counter() - t0:.0f} s)",
          file=sys.stderr)
    return r


def measure_data_path(rs: Resolved) -> list[dict]:
    """DeviceLoader against DataLoader + PIL, batches only, at each DATA_PATH_SIZES side."""
    out = []
    for side, batch, nb in DATA_PATH_SIZES[rs.settings.mode]:
        model = "swin_tiny" if side > 32 else "resnet18"
        cfg = ExperimentConfig(model=model, img_size=side, device=str(rs.device)).resolved()
        dp_data = make_synthetic((nb + 2) * batch, 1, num_classes=NUM_CLASSES, seed=1)
        snap = cpu_snapshot()
        out.append(ref.data_path_comparison(dp_data, cfg=cfg, batch_size=batch, batches=nb,
                                            device=rs.device))
        out[-1].update(measured=now_iso(), other_cpu_share=other_cpu_share(snap, cpu_snapshot()))
    return out


def run_benchmark(settings: BenchSettings, deadline: float | None = None) -> dict:
    """Measure what `settings` asks for, write the result file and refresh settings.readmes;
    returns the result. `deadline` (a time.monotonic() value) stops the measurement there:
    the variant in progress and the rest are recorded as not measured."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    rs = resolve(settings)
    setup_backends(rs.device)
    if rs.device.type == "cpu" and not settings.quick:
        print("note: full sizes are meant for a GPU; on a CPU use --quick", file=sys.stderr)
    write = partial(write_bench_file, rs, started=now_iso())
    data = _synthetic_for(rs)
    runs = []
    for entry in rs.runs:
        def write_so_far(row):                  # after every variant of this row
            write(runs + [row], None, finished=False)
        runs.append(measure_row(rs, entry, data, deadline, on_progress=write_so_far))
        write(runs, None, finished=False)
    in_time = deadline is None or time.monotonic() < deadline
    data_path = measure_data_path(rs) if settings.data_path and in_time else None
    result = write(runs, data_path, finished=True)
    for readme in filter(None, settings.readmes):
        render_readme(readme, os.path.dirname(os.path.abspath(rs.out_path)))
    return result


# ----------------------------------------------------------------------------- one row
def build_random(cfg: ExperimentConfig) -> torch.nn.Module:
    """The run's architecture with random weights (see the module docstring)."""
    if cfg.is_swin:
        model = build_model(cfg.model, NUM_CLASSES, img_size=cfg.img_size, mode="scratch")
        return SwinClassifier(model.backbone, frozen_backbone=cfg.mode == "finetune")
    return build_model(cfg.model, NUM_CLASSES, **cfg.model_kwargs())


def run_config(entry: dict, sizes: dict, device, precision) -> ExperimentConfig:
    """The grid entry's resolved config, with the benchmark's batch sizes; an unset batch
    is the one the engine picks for a CIFAR-100-sized (50,000-image) training set."""
    params = dict(row_overrides(entry), run_name=entry["run_name"], dataset="synthetic",
                  device=str(device), precision=precision.name, seed=0)
    for key in ("batch_size", "eval_batch_size", "img_size"):
        if sizes.get(key):
            params[key] = sizes[key]
    cfg = ExperimentConfig.from_params(**params).resolved()
    return dataclasses.replace(cfg, batch_size=cfg.train_batch_size(EPOCH_IMAGES))


def _head(data, n_train: int, n_test: int):
    """The first n_train / n_test images of a synthetic set, as a Dataset."""
    return dataclasses.replace(data, x_train=data.x_train[:n_train], y_train=data.y_train[:n_train],
                               x_test=data.x_test[:n_test], y_test=data.y_test[:n_test])


def train_step_flops(model: torch.nn.Module, img_size: int) -> int:
    """FLOPs of forward + backward for one training image, counting only what runs
    (helpers.measure's version-independent counter), for the model FLOP utilisation.

    Cross-entropy on one label, then loss.backward(). A frozen backbone runs under
    no_grad, so its backward is never executed and only the head's gradient is counted.
    Works on a deep copy, so the model's modes and gradients are untouched.
    """
    clone = copy.deepcopy(model).train()
    x = example_batch(clone, img_size)
    y = torch.zeros(1, dtype=torch.long, device=x.device)
    with counting_flops() as counter:
        F.cross_entropy(clone(x), y).backward()            # logits (1, num_classes)
    return int(counter.get_total_flops())


def time_variant(model, cfg, train_b, test_b, compile: bool, **kw) -> dict:
    """One variant of our path; a compiled one meets a cold compile cache."""
    if not compile:
        return time_train(model, cfg, train_b, test_b, compile=False, **kw)[0]
    with cold_compile_cache():
        return time_train(model, cfg, train_b, test_b, compile=True, **kw)[0]


def time_variants(model, cfg, train_b, test_b, variants, *, deadline: float | None = None,
                  **kw):
    """Each variant of our path on one model: yields (name, its timing or failed record)."""
    for compile in variants:
        yield VARIANTS[compile], attempt(partial(time_variant, model, cfg, train_b, test_b,
                                                 compile, **kw), deadline)


def time_reference(cfg, data, sizes: dict, device) -> dict:
    """The typical loop on the same images, for as many steps as our path took."""
    seed_everything(0)
    B, warm = cfg.batch_size, sizes["warmup_steps"]
    n = (warm + sizes["steps"] * sizes["repeats"]) * B
    spec = input_spec(cfg.model)
    loader = ref.typical_loader(data.x_train[:n].numpy(), data.y_train[:n].numpy(),
                                batch_size=B, img_size=cfg.img_size, mean=spec["mean"],
                                std=spec["std"])
    model = build_random(cfg)
    out = ref.time_typical_loop(model, loader, optimizer_name=cfg.optimizer, lr=cfg.lr,
                                weight_decay=cfg.weight_decay, device=device, warmup_steps=warm,
                                steps=sizes["steps"] * sizes["repeats"])
    del model, loader
    release_memory(device)
    return out


def bench_run(entry: dict, sizes: dict, data, *, device, precision, variants,
              reference: bool, peak: float | None,
              compile_backend: str = COMPILE_BACKEND, deadline: float | None = None,
              on_progress=None) -> dict:
    """Every measurement of one grid run: our path's variants and the typical loop, each
    on its own (see attempt). After each one, on_progress(row) gets the row as it stands,
    so it can be written at once."""
    cfg = run_config(entry, sizes, device, precision)
    out = dict(run_name=cfg.run_name, label=entry["label"], model=cfg.model,
               mode=cfg.mode if cfg.is_swin else None, img_size=cfg.img_size,
               batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size,
               precision=precision.name, weights=RANDOM_WEIGHTS, optimizer=cfg.optimizer,
               measured=now_iso(), ours={})

    def progress():
        judge_row(out)
        if on_progress:
            on_progress(out)
    snap = cpu_snapshot()
    seed_everything(0)
    model = build_random(cfg)
    flops = train_step_flops(model, cfg.img_size)                 # on the CPU, before .to()
    out["train_flops_per_image"] = flops
    place_model(model, device, cfg.model)                           # as fit() does
    ours = _head(data, sizes["steps"] * cfg.batch_size, sizes["eval_steps"] * cfg.eval_batch_size)
    train_b, test_b = make_batches(ours, cfg, device)
    common = dict(device=device, precision=precision, warmup_steps=sizes["warmup_steps"],
                  repeats=sizes["repeats"], peak=peak)
    for name, timing in time_variants(model, cfg, train_b, test_b, variants,
                                      flops_per_image=flops, compile_backend=compile_backend,
                                      deadline=deadline, **common):
        out["ours"][name] = timing
        progress()
    del model, train_b, test_b
    release_memory(device)
    if reference:
        out["reference"] = attempt(partial(time_reference, cfg, data, sizes, device), deadline)
    out["other_cpu_share"] = other_cpu_share(snap, cpu_snapshot())   # workers are reaped by now
    progress()
    return out
