"""One grid row measured: our path's variants, the frozen fine-tune's feature-cache option
and the typical loop (see helpers/bench/runs.py for the timing rules); and the FLOP
recount of a result file, which rebuilds each row's model.
"""
from __future__ import annotations

import dataclasses
import gc
import json

import torch

from ..config import ExperimentConfig, is_swin
from ..device import resolve_precision, seed_everything
from ..grid import EPOCHS, grid
from .flops import train_step_flops
from ..models import SwinClassifier, build_model, has_window_attention, input_spec
from ..results import now_iso
from ..speed import COMPILE_BACKEND, set_attention, variant_name
from ..batches import make_batches
from ..train import place_model
from . import predict
from . import reference as ref
from .render import write_json
from .timing import (EPOCH_IMAGES, cold_compile_cache, cpu_snapshot, forget_compiled,
                     other_cpu_share, time_train, time_warmup)

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
    params = {k: v for k, v in entry.items() if k != "label"}
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



def compare_variants(ours: dict, cfg) -> dict:
    """Old (the plain eager path, timm's attention) against new: the variant
    helpers.bench.predict picks for this run at the grid's budget (grid.EPOCHS of
    50k-image epochs), with each compiled variant's cold and warm compile cost and
    break-even in 50k-image epochs."""
    epochs = EPOCHS[cfg.problem]
    images = epochs * EPOCH_IMAGES
    cold = predict.pick(ours, images, swin=cfg.is_swin)
    warm = predict.pick(ours, images, swin=cfg.is_swin, warm=set(ours))
    if not cold:                                   # the plain path was not measured
        return dict(primary=next(iter(ours)), new_vs_old=None)
    old, new, new_warm = ours["eager"], cold[0], warm[0]
    out = dict(primary=new.name, new_vs_old=dict(
        old="eager", new=new.name, new_with_warm_cache=new_warm.name, grid_epochs=epochs,
        old_images_per_s=old["images_per_s"], new_images_per_s=new.images_per_s,
        speedup=new.images_per_s / old["images_per_s"]))
    for name, t in ours.items():                   # every variant's one-off cost, both ways
        if t["compile"]:
            c = next(x for x in cold if x.name == name)
            w = next(x for x in warm if x.name == name)
            t["compile_cold_s"], t["compile_warm_s"] = c.compile_s, w.compile_s
            for kind, cost in (("cold", c.compile_s), ("warm", w.compile_s)):
                n = predict.break_even_images(old["images_per_s"], t["images_per_s"], cost)
                t[f"break_even_epochs_{kind}"] = None if n is None else n / EPOCH_IMAGES
    return out


def time_variants(model, cfg, train_b, test_b, variants, *, compile_backend: str,
                  **common) -> dict:
    """Each variant of our path on one model, by name; a compiled one is timed with a cold
    compile cache, then its warm-up again with the kernels that run left on disk."""
    ours = {}
    for fused, compile, scope in variants:
        if fused and not has_window_attention(cfg.model):
            continue
        set_attention(model, fused)
        kw = dict(compile=compile, compile_scope=scope, compile_backend=compile_backend,
                  **common)
        if not compile:
            timing, _ = time_train(model, cfg, train_b, test_b, **kw)
        else:
            with cold_compile_cache():
                timing, _ = time_train(model, cfg, train_b, test_b, **kw)     # cold
                uncompile(model)
                forget_compiled()              # in memory only: the on-disk cache stays
                timing["warm"] = time_warmup(model, cfg, train_b, test_b, **kw)
                uncompile(model)
        timing.update(fused_attention=fused, compile_scope=scope if compile else None)
        ours[variant_name(fused, compile, scope)] = timing
    set_attention(model, False)
    return ours


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
              compile_backend: str = COMPILE_BACKEND) -> dict:
    """Every measurement of one grid run: our path's variants, the frozen fine-tune's
    feature-cache option, and the typical loop."""
    cfg = run_config(entry, sizes, device, precision)
    out = dict(run_name=cfg.run_name, label=entry["label"], model=cfg.model,
               mode=cfg.mode if cfg.is_swin else None, img_size=cfg.img_size,
               batch_size=cfg.batch_size, eval_batch_size=cfg.eval_batch_size,
               precision=precision.name, weights=RANDOM_WEIGHTS, optimizer=cfg.optimizer,
               measured=now_iso())
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
    out["ours"] = time_variants(model, cfg, train_b, test_b, variants, flops_per_image=flops,
                                compile_backend=compile_backend, **common)
    out.update(compare_variants(out["ours"], cfg))
    if cache and cfg.mode == "finetune":
        out["feature_cache"] = time_feature_cache(
            model, ours, cfg, base_images_per_s=out["ours"][out["primary"]]["images_per_s"],
            **common)
    del model, train_b, test_b
    release_memory(device)
    if reference:
        out["reference"] = time_reference(cfg, data, sizes, device)
        out["speedup"] = (out["ours"][out["primary"]]["images_per_s"]
                          / out["reference"]["images_per_s"])
    out["other_cpu_share"] = other_cpu_share(snap, cpu_snapshot())   # workers are reaped by now
    out["status"], out["reason"] = "complete", None
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
        for timing in r.get("ours", {}).values():
            timing["achieved_tflops"] = flops * timing["images_per_s"] / 1e12
            timing["mfu"] = timing["achieved_tflops"] / peak if peak else None
    result["flops_recount"] = dict(
        when=now_iso(), torch=torch.__version__,
        counter="helpers.measure.counting_flops: math SDPA backend, uncountable ops raise",
        previous_train_flops_per_image=previous)
    write_json(result, path)
    return result
