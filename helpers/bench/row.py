"""One grid row measured: our path's variants, the frozen fine-tune's feature-cache option
and the typical loop (see helpers/bench/runs.py for the timing rules); and the FLOP
recount of a result file, which rebuilds each row's model.
"""
from __future__ import annotations

import dataclasses
import gc
import json
import time
from functools import partial

import torch

from ..config import ExperimentConfig, is_swin
from ..device import resolve_precision, seed_everything
from ..grid import grid
from .flops import train_step_flops
from ..models import SwinClassifier, build_model, has_window_attention, input_spec
from ..results import now_iso
from ..speed import COMPILE_BACKEND, set_attention, variant_name
from ..batches import make_batches
from ..train import place_model
from . import reference as ref
from .compare import PLAIN, compare_row, failed, measured
from .render import write_json
from .timing import (EPOCH_IMAGES, cold_compile_cache, cpu_snapshot, forget_compiled,
                     other_cpu_share, time_limit, time_train, time_warmup)

NUM_CLASSES = 100
RANDOM_WEIGHTS = "random init (speed does not depend on weight values; nothing downloaded)"


def build_random(cfg: ExperimentConfig) -> torch.nn.Module:
    """The run's architecture with random weights (see the module docstring)."""
    if cfg.is_swin:
        model = build_model(cfg.model, NUM_CLASSES, img_size=cfg.img_size, mode="scratch")
        return SwinClassifier(model.backbone, frozen_backbone=cfg.mode == "finetune")
    return build_model(cfg.model, NUM_CLASSES, **cfg.model_kwargs())


def uncompile(model: torch.nn.Module) -> None:
    """Undo compile_scope='blocks' (nn.Module.compile keeps the compiled call on the
    module); the benchmark measures several variants on one model."""
    for block in getattr(model, "compile_regions", list)():
        if getattr(block, "_compiled_call_impl", None) is not None:
            block._compiled_call_impl = None


# ----------------------------------------------------------------------------- one run
def run_config(entry: dict, sizes: dict, device, precision) -> ExperimentConfig:
    """The grid entry's resolved config, with the benchmark's batch sizes; an unset batch
    is the one the engine picks for a CIFAR-100-sized (50,000-image) training set."""
    params = {k: v for k, v in entry.items() if k not in ("label", "problem")}
    params.update(dataset="synthetic", device=str(device), precision=precision.name, seed=0)
    for key in ("batch_size", "eval_batch_size", "img_size"):
        if sizes.get(key):
            params[key] = sizes[key]
    cfg = ExperimentConfig.from_params(**params).resolved()
    return dataclasses.replace(cfg, batch_size=cfg.train_batch_size(EPOCH_IMAGES))


def _head(data, n_train: int, n_test: int):
    """The first n_train / n_test images of a synthetic set, as a Dataset."""
    return dataclasses.replace(data, x_train=data.x_train[:n_train], y_train=data.y_train[:n_train],
                               x_test=data.x_test[:n_test], y_test=data.y_test[:n_test])


def attempt(measure, deadline: float | None) -> dict:
    """measure()'s record, or a failed one: one variant's error (a compile that fails, CUDA
    out of memory) or time-out must not lose the figures the row already holds. measure()
    runs under the soft time limit; after the deadline nothing more is started."""
    if deadline is not None and time.monotonic() >= deadline:
        return failed("not measured: the time budget was spent")
    try:
        with time_limit(deadline):
            return measure()
    except Exception as err:  # noqa: BLE001  (recorded in the row; the next variant runs)
        record = failed(f"{type(err).__name__}: {err}"[:300])
    gc.collect()                        # what the failed measurement held, e.g. out of memory
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()
    return record


def time_variant(model, cfg, train_b, test_b, compile: bool, **kw) -> dict:
    """One variant of our path; a compiled one is timed with a cold compile cache, then its
    warm-up again with the kernels that run left on disk."""
    if not compile:
        timing, _ = time_train(model, cfg, train_b, test_b, compile=False, **kw)
        return timing
    with cold_compile_cache():
        try:
            timing, _ = time_train(model, cfg, train_b, test_b, compile=True, **kw)  # cold
            uncompile(model)
            forget_compiled()              # in memory only: the on-disk cache stays
            timing["warm"] = time_warmup(model, cfg, train_b, test_b, compile=True, **kw)
        finally:
            uncompile(model)               # the next variant starts from the plain model
    return timing


def time_variants(model, cfg, train_b, test_b, variants, *, compile_backend: str,
                  deadline: float | None = None, **common):
    """Each variant of our path on one model: yields (name, its timing or failed record)."""
    for fused, compile, scope in variants:
        if fused and not has_window_attention(cfg.model):
            continue
        set_attention(model, fused)
        kw = dict(compile_scope=scope, compile_backend=compile_backend, **common)
        timing = attempt(partial(time_variant, model, cfg, train_b, test_b, compile, **kw),
                         deadline)
        if measured(timing):
            timing.update(fused_attention=fused, compile_scope=scope if compile else None)
        yield variant_name(fused, compile, scope), timing
    set_attention(model, False)


def time_feature_cache(model, data, cfg, *, device, precision, base_images_per_s: float,
                       **common) -> dict:
    """The frozen fine-tune with cache_features=True: the one-off feature pass, then the
    head's training on the cached features."""
    ccfg = dataclasses.replace(cfg, cache_features=True, augment=False)
    ccfg.validate()
    feats_b, feats_test, cache_s = make_batches(model, data, ccfg, device, precision)
    n = len(data.y_train) + len(data.y_test)
    cached, _ = time_train(model, ccfg, feats_b, feats_test, device=device, precision=precision,
                           compile=False, flops_per_image=None, **common)
    return dict(option="cache_features=True, augment=False (features computed once)",
                feature_pass_s=cache_s, feature_pass_images=n, feature_images_per_s=n / cache_s,
                train=cached, speedup_vs_uncached=cached["images_per_s"] / base_images_per_s)


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
              reference: bool, cache: bool, peak: float | None,
              compile_backend: str = COMPILE_BACKEND, deadline: float | None = None,
              on_progress=None) -> dict:
    """Every measurement of one grid run: our path's variants, the frozen fine-tune's
    feature-cache option, and the typical loop, each on its own (see attempt). After each
    one, on_progress(row) gets the row as it stands, so it can be written at once."""
    cfg = run_config(entry, sizes, device, precision)
    out = dict(run_name=cfg.run_name, label=entry["label"], model=cfg.model,
               mode=cfg.mode if cfg.is_swin else None, img_size=cfg.img_size,
               batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size,
               precision=precision.name, weights=RANDOM_WEIGHTS, optimizer=cfg.optimizer,
               measured=now_iso(), ours={})

    def progress():
        compare_row(out, device.type)
        if on_progress:
            on_progress(out)
    snap = cpu_snapshot()
    seed_everything(0)
    model = build_random(cfg)
    flops = train_step_flops(model, cfg.img_size, NUM_CLASSES)   # on the CPU, before .to()
    out["train_flops_per_image"] = flops
    place_model(model, device)                                      # as fit() does
    ours = _head(data, sizes["steps"] * cfg.batch_size, sizes["eval_steps"] * cfg.eval_batch_size)
    train_b, test_b, _ = make_batches(model, ours, cfg, device, precision)
    common = dict(device=device, precision=precision, warmup_steps=sizes["warmup_steps"],
                  repeats=sizes["repeats"], peak=peak)
    for name, timing in time_variants(model, cfg, train_b, test_b, variants,
                                      flops_per_image=flops, compile_backend=compile_backend,
                                      deadline=deadline, **common):
        out["ours"][name] = timing
        progress()
    eager = out["ours"].get(PLAIN)
    if cache and cfg.mode == "finetune" and measured(eager):
        out["feature_cache"] = attempt(partial(
            time_feature_cache, model, ours, cfg, base_images_per_s=eager["images_per_s"],
            **common), deadline)
        progress()
    del model, train_b, test_b
    release_memory(device)
    if reference:
        out["reference"] = attempt(partial(time_reference, cfg, data, sizes, device), deadline)
    out["other_cpu_share"] = other_cpu_share(snap, cpu_snapshot())   # workers are reaped by now
    progress()
    return out


def release_memory(device) -> None:
    """Free what a measured model left: Python garbage, and CUDA's cached blocks."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- recount
def recount_flops(path: str) -> dict:
    """Recount `train_flops_per_image` of every run in a result file, and re-derive what
    depends on it (achieved TFLOP/s = FLOPs x measured images/s, and MFU), leaving every
    measured time as it is. FLOP counts depend on the model only, not on the machine, so
    this is how a file counted by another version of the counter is corrected without
    re-measuring.
    The previous counts are kept in the file under "flops_recount"."""
    with open(path) as f:
        result = json.load(f)
    previous = {}
    by_name = {e["run_name"]: e for e in grid()}
    for r in result["runs"]:
        if r.get("status") == "failed" or r["run_name"] not in by_name:
            continue
        entry = by_name[r["run_name"]]
        sizes = result["sizes"]["swin" if is_swin(entry["model"]) else "p1"]
        cpu = torch.device("cpu")
        cfg = run_config(entry, sizes, cpu, resolve_precision("fp32", cpu))
        seed_everything(0)
        flops = train_step_flops(build_random(cfg), cfg.img_size, NUM_CLASSES)
        previous[r["run_name"]] = r.get("train_flops_per_image")
        r["train_flops_per_image"] = flops
        peak = result.get("peak", {}).get("tflops")
        for timing in filter(measured, r.get("ours", {}).values()):
            timing["achieved_tflops"] = flops * timing["images_per_s"] / 1e12
            timing["mfu"] = timing["achieved_tflops"] / peak if peak else None
    result["flops_recount"] = dict(
        when=now_iso(), torch=torch.__version__,
        counter="helpers.measure.counting_flops: math SDPA backend, uncountable ops raise",
        previous_train_flops_per_image=previous)
    write_json(result, path)
    return result
