"""Speed benchmark of the grid: `python -m helpers.bench [--quick] [--models ...]`.

For every run of helpers.grid.grid() it times OUR path (DeviceLoader batches through
the engine's own train_epoch / make_optimizer / make_scheduler / precision) and the
"typical homework loop" (helpers.bench.reference) on synthetic CIFAR-shaped images
(speed does not depend on pixel values), and writes benchmarks/results/<device>.json
plus the table in benchmarks/README.md. Timing rules (METHOD: honest timing):
- the device is synchronised before every clock read (train_epoch does this itself);
- warm-up steps run first, in their own train_epoch call, and are reported separately
  (with torch.compile on, they include the compilation); the steady-state window holds
  only the timed steps, which the scheduler's step counter confirms;
- evaluation has its own warm-up and clock.
Weights are random: fine-tune runs need no download, and the frozen fine-tune is the
same backbone wrapped frozen, exactly as helpers.models wraps the pretrained one.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fnmatch
import gc
import json
import os
import signal
import sys
import time

import torch

from ..config import ExperimentConfig, problem_of
from ..data import make_synthetic
from . import predict
from ..device import (device_name, resolve_device, resolve_precision, seed_everything,
                      setup_backends)
from ..grid import EPOCHS, grid
from ..measure import train_step_flops
from ..models import SwinClassifier, build_model, has_window_attention, input_spec
from ..speed import set_attention, uncompile, variant_name
from ..paths import BENCH_DIR, REPO_ROOT
from . import reference as ref
from .timing import (EPOCH_IMAGES, cold_compile_cache, cpu_snapshot, forget_compiled,
                     other_cpu_share, time_train, time_warmup)
from .tables import (PEAK_SOURCE, device_slug, load_for_merge, merge_previous,
                           peak_tflops, render_readme, write_json)
from ..results import now_iso, provenance
from ..train import make_batches, place_model

NUM_CLASSES = 100
RANDOM_WEIGHTS = "random init (speed does not depend on weight values; nothing downloaded)"

# Sizes per family. "full" is meant for a GPU (batch None = the engine's default);
# "quick" keeps a whole-grid CPU run to minutes. --batch-size/--steps/... override both.
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

def select_runs(patterns: str | None) -> list[dict]:
    """Grid entries whose run name (with or without its 'p1-'/'p2-') matches a pattern."""
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
    return [r for r in runs if r in chosen]        # grid order


def build_random(cfg: ExperimentConfig) -> torch.nn.Module:
    """The run's architecture with random weights (see the module docstring)."""
    if cfg.is_swin:
        model = build_model(cfg.model, NUM_CLASSES, img_size=cfg.img_size, mode="scratch")
        return SwinClassifier(model.backbone, frozen_backbone=cfg.mode == "finetune")
    return build_model(cfg.model, NUM_CLASSES, **cfg.model_kwargs())


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
    """Old (the plain eager path, timm's attention) against new: the variant helpers.speed
    picks for this run at the grid's budget (grid.EPOCHS of 50k-image epochs), with each
    compiled variant's cold and warm compile cost and break-even in 50k-image epochs."""
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
    if {"eager", "compiled"} <= set(ours):         # kept for older readers of the file
        out["compile_extra_warmup_s"] = ours["compiled"]["compile_cold_s"]
        out["compile_break_even_epochs"] = ours["compiled"]["break_even_epochs_cold"]
    return out


def bench_run(entry: dict, sizes: dict, data, *, device, precision, variants,
              reference: bool, cache: bool, peak: float | None) -> dict:
    """Every measurement of one grid run: our path (eager and/or compiled), the frozen
    fine-tune's feature-cache option, and the typical loop."""
    cfg = run_config(entry, sizes, device, precision)
    B, steps, warm, repeats = cfg.batch_size, sizes["steps"], sizes["warmup_steps"], sizes["repeats"]
    out = dict(run_name=cfg.run_name, label=entry["label"], model=cfg.model,
               mode=cfg.mode if cfg.is_swin else None, img_size=cfg.img_size, batch_size=B,
               eval_batch_size=cfg.eval_batch_size, precision=precision.name,
               weights=RANDOM_WEIGHTS, optimizer=cfg.optimizer, measured=now_iso())
    snap = cpu_snapshot()
    seed_everything(0)
    model = build_random(cfg)
    flops = train_step_flops(model, cfg.img_size, NUM_CLASSES)   # on the CPU, before .to()
    out["train_flops_per_image"] = flops
    place_model(model, device)                                      # as fit() does
    ours = _head(data, steps * B, sizes["eval_steps"] * cfg.eval_batch_size)
    train_b, test_b, _ = make_batches(model, ours, cfg, device, precision)
    common = dict(device=device, precision=precision, warmup_steps=warm, repeats=repeats,
                  peak=peak)
    out["ours"] = {}
    for fused, compile, scope in variants:
        if fused and not has_window_attention(cfg.model):
            continue
        name = variant_name(fused, compile, scope)
        set_attention(model, fused)
        kw = dict(compile=compile, compile_scope=scope, flops_per_image=flops, **common)
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
        out["ours"][name] = timing
    set_attention(model, False)
    out.update(compare_variants(out["ours"], cfg))
    if cache and cfg.mode == "finetune":
        ccfg = dataclasses.replace(cfg, cache_features=True, augment=False)
        ccfg.validate()
        feats_b, feats_test, cache_s = make_batches(model, ours, ccfg, device, precision)
        n = len(ours.y_train) + len(ours.y_test)
        cached, _ = time_train(model, ccfg, feats_b, feats_test, compile=False,
                               flops_per_image=None, **common)
        base = out["ours"][out["primary"]]["images_per_s"]
        out["feature_cache"] = dict(
            option="cache_features=True, augment=False (features computed once)",
            feature_pass_s=cache_s, feature_pass_images=n, feature_images_per_s=n / cache_s,
            train=cached, speedup_vs_uncached=cached["images_per_s"] / base)
    del model, train_b, test_b
    _release(device)
    if reference:
        seed_everything(0)
        n = (warm + steps * repeats) * B
        spec = input_spec(cfg.model)
        loader = ref.typical_loader(data.x_train[:n].numpy(), data.y_train[:n].numpy(),
                                    batch_size=B, img_size=cfg.img_size, mean=spec["mean"],
                                    std=spec["std"])
        model = build_random(cfg)
        out["reference"] = ref.time_typical_loop(
            model, loader, optimizer_name=cfg.optimizer, lr=cfg.lr,
            weight_decay=cfg.weight_decay, device=device, warmup_steps=warm,
            steps=steps * repeats)
        del model, loader
        _release(device)
        out["speedup"] = (out["ours"][out["primary"]]["images_per_s"]
                          / out["reference"]["images_per_s"])
    out["other_cpu_share"] = other_cpu_share(snap, cpu_snapshot())   # workers are reaped by now
    out["status"], out["reason"] = "complete", None
    return out


def _release(device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ----------------------------------------------------------------------------- recount
def recount_flops(path: str) -> dict:
    """Recount `train_flops_per_image` of every run in a result file, and re-derive what
    depends on it (achieved TFLOP/s = FLOPs x measured images/s, and MFU), leaving every
    measured time as it is. FLOP counts depend on the model only, not on the machine, so
    this is how a file measured with an older counter is corrected without re-measuring.
    The previous counts are kept in the file under "flops_recount"."""
    with open(path) as f:
        result = json.load(f)
    previous = {}
    by_name = {e["run_name"]: e for e in grid()}
    for r in result["runs"]:
        if r.get("status") == "failed" or r["run_name"] not in by_name:
            continue
        entry = by_name[r["run_name"]]
        sizes = result["sizes"]["swin" if problem_of(entry["model"]) == 2 else "p1"]
        cfg = run_config(entry, sizes, torch.device("cpu"), resolve_precision("fp32", torch.device("cpu")))
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


# ----------------------------------------------------------------------------- the CLI
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m helpers.bench", description=__doc__.split("\n")[0])
    p.add_argument("--models", help="comma-separated run names or globs, e.g. "
                   "'resnet18,vit-2L-2H-128' or 'p2-swin_tiny-*' (default: the whole grid)")
    p.add_argument("--quick", action="store_true", help="small batches and few steps (CPU, tests)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    p.add_argument("--compile", default="auto", choices=["auto", "off", "on", "both"],
                   help="torch.compile for our path; auto = both on CUDA, off elsewhere")
    p.add_argument("--compile-scope", default="model", choices=["model", "blocks", "both"],
                   help="what is compiled: the whole model, or each repeated block "
                        "(compile_scope='blocks'); both = measure each")
    p.add_argument("--attention", default="auto", choices=["auto", "timm", "fused", "both"],
                   help="Swin window attention: timm's written-out softmax, fused (SDPA), or "
                        "both; auto = both on CUDA, timm elsewhere")
    p.add_argument("--img-size", type=int,
                   help="input side of the Swin runs (default: the grid's); a smaller side "
                        "makes a CPU dry run affordable")
    p.add_argument("--batch-size", type=int, help="training batch for every run")
    p.add_argument("--eval-batch-size", type=int, help="evaluation batch for every run")
    p.add_argument("--steps", type=int, help="timed training steps per pass")
    p.add_argument("--warmup-steps", type=int, help="untimed steps before the timed passes")
    p.add_argument("--eval-steps", type=int, help="timed evaluation batches")
    p.add_argument("--repeats", type=int, help="timed passes; images/s is their median")
    p.add_argument("--threads", type=int, help="torch CPU threads (torch.set_num_threads)")
    p.add_argument("--no-reference", action="store_true", help="skip the typical loop")
    p.add_argument("--no-cache", action="store_true", help="skip the feature-cache option")
    p.add_argument("--no-data-path", action="store_true", help="skip the data-path comparison")
    p.add_argument("--note", action="append", default=[], help="a note stored with the result")
    p.add_argument("--merge", action="store_true",
                   help="keep the runs (and data-path figures) of an existing --out file that "
                        "this invocation does not measure, e.g. to re-measure noisy runs")
    p.add_argument("--out", help="result JSON (default benchmarks/results/<device-slug>.json)")
    p.add_argument("--readme", nargs="*",
                   default=[os.path.join(BENCH_DIR, "README.md"), os.path.join(REPO_ROOT, "README.md")],
                   help="READMEs whose generated table is refreshed from the JSONs next to "
                        "--out (default: benchmarks/README.md and README.md; none = leave them)")
    p.add_argument("--render-only", action="store_true",
                   help="only refresh the README table from the existing result files")
    p.add_argument("--recount", action="store_true",
                   help="recount the FLOPs of the --out file's runs with this version's counter "
                        "and re-derive TFLOP/s and MFU from its measured images/s (no timing)")
    args = p.parse_args(argv)
    for name in ("batch_size", "eval_batch_size", "steps", "warmup_steps", "eval_steps",
                 "repeats", "threads", "img_size"):
        v = getattr(args, name)
        if v is not None and v < (0 if name == "warmup_steps" else 1):
            p.error(f"--{name.replace('_', '-')}={v}: must be a positive integer")
    return args


def bench_variants(args, device) -> list[tuple]:
    """(fused_attention, compile, compile_scope) of every variant of our path to measure,
    the plain one (timm's attention, eager) first. Fused variants apply to Swin only."""
    gpu = device.type == "cuda"
    compile = {"off": [False], "on": [True], "both": [False, True],
               "auto": [False, True] if gpu else [False]}[args.compile]
    scopes = ["model", "blocks"] if args.compile_scope == "both" else [args.compile_scope]
    fused = {"timm": [False], "fused": [True], "both": [False, True],
             "auto": [False, True] if gpu else [False]}[args.attention]
    return [(f, c, sc) for f in fused for c in compile for sc in (scopes if c else ["model"])]


def family_sizes(args) -> dict:
    sizes = {fam: dict(s) for fam, s in SIZES["quick" if args.quick else "full"].items()}
    for s in sizes.values():
        for key in s:
            if getattr(args, key, None) is not None:
                s[key] = getattr(args, key)
    return sizes


@contextlib.contextmanager
def time_limit(deadline: float | None):
    """TimeoutError inside the block once time.monotonic() reaches `deadline` (SIGALRM, so
    the main thread of a POSIX process only; elsewhere no limit)."""
    if deadline is None or not hasattr(signal, "setitimer"):
        yield
        return

    def stop(signum, frame):
        raise TimeoutError("ran past the check's time budget")
    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, max(0.01, deadline - time.monotonic()))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def main(argv=None, deadline: float | None = None) -> dict | None:
    """The CLI. `deadline` (a time.monotonic() value, for helpers.bench.check) stops the
    measurement there: the run in progress and the rest are recorded as not measured."""
    args = parse_args(argv)
    device = resolve_device(args.device)
    out_path = args.out or os.path.join(BENCH_DIR, "results", f"{device_slug(device)}.json")
    if args.render_only or args.recount:
        if args.recount:
            recount_flops(out_path)
        for readme in filter(None, args.readme):
            render_readme(readme, os.path.dirname(os.path.abspath(out_path)))
        return None
    if args.threads:
        torch.set_num_threads(args.threads)
    precision = resolve_precision(args.precision, device)
    setup_backends(device)
    runs = select_runs(args.models)
    previous = load_for_merge(out_path, device_slug=device_slug(device),
                              precision=precision.name, quick=args.quick) if args.merge else None
    sizes = family_sizes(args)
    variants = bench_variants(args, device)
    name = device_name(device)
    peak = peak_tflops(name, precision.name) if device.type == "cuda" else None
    if device.type == "cpu" and not args.quick:
        print("note: full sizes are meant for a GPU; on a CPU use --quick", file=sys.stderr)

    # One synthetic set, large enough for every run (each takes its first images).
    cfgs = [run_config(r, sizes["swin" if problem_of(r["model"]) == 2 else "p1"], device,
                       precision) for r in runs]
    fam = [sizes["swin" if c.is_swin else "p1"] for c in cfgs]
    n_train = max((s["warmup_steps"] + s["steps"] * s["repeats"]) * c.batch_size
                  for s, c in zip(fam, cfgs))
    n_test = max(s["eval_steps"] * c.eval_batch_size for s, c in zip(fam, cfgs))
    started, load0 = now_iso(), os.getloadavg()
    data = make_synthetic(n_train, n_test, num_classes=NUM_CLASSES, seed=0)
    results = []

    def assemble(data_path, finished: bool) -> dict:
        notes = list(args.note)
        if device.type == "cpu":
            notes.insert(0, "CPU only: no GPU figure is in this file.")
        result = dict(
            schema_version=1, kind="speed-benchmark", device=name, device_type=device.type,
            device_slug=device_slug(device), precision=precision.name,
            threads=torch.get_num_threads() if device.type == "cpu" else None,
            quick=args.quick, sizes=sizes, variants=[variant_name(*v) for v in variants],
            peak=dict(tflops=peak, precision=precision.name,
                      source=PEAK_SOURCE if peak else None,
                      note=None if peak else f"no datasheet peak for {name!r}: MFU is null"),
            notes=notes, load_average=dict(start=list(load0), end=list(os.getloadavg())),
            runs=list(results), data_path=data_path, complete=finished,
            provenance=provenance(device=name, device_type=device.type,
                                  precision=precision.name,
                                  compile=all(v[1] for v in variants), seed=0,
                                  started=started, finished=now_iso()))
        if previous:
            merge_previous(result, previous)
        write_json(result, out_path)                   # after every run: a cut run keeps its part
        return result

    for entry, s in zip(runs, fam):
        t0 = time.perf_counter()
        if deadline is not None and time.monotonic() >= deadline:
            r = dict(run_name=entry["run_name"], label=entry["label"], status="failed",
                     reason="not measured: the check's time budget was spent")
        else:
            try:
                with time_limit(deadline):
                    r = bench_run(entry, s, data, device=device, precision=precision,
                                  variants=variants, reference=not args.no_reference,
                                  cache=not args.no_cache, peak=peak)
            except (RuntimeError, ValueError, TimeoutError) as e:   # e.g. CUDA out of memory
                _release(device)
                r = dict(run_name=entry["run_name"], label=entry["label"], status="failed",
                         reason=f"{type(e).__name__}: {e}")
        results.append(r)
        assemble(None, False)
        ips = r.get("ours", {}).get(r.get("primary"), {}).get("images_per_s")
        print(f"{entry['run_name']:<28} {r['status']:<8} ours {ips or 0:10.1f} img/s "
              f"speedup {r.get('speedup') or 0:6.2f}x  ({time.perf_counter() - t0:.0f} s)",
              file=sys.stderr)
    data_path = None
    if not args.no_data_path and (deadline is None or time.monotonic() < deadline):
        data_path = []
        for side, batch, nb in DATA_PATH_SIZES["quick" if args.quick else "full"]:
            model = "swin_tiny" if side > 32 else "resnet18"
            cfg = ExperimentConfig(model=model, img_size=side, device=str(device)).resolved()
            dp_data = make_synthetic((nb + 2) * batch, 1, num_classes=NUM_CLASSES, seed=1)
            snap = cpu_snapshot()
            data_path.append(ref.data_path_comparison(
                dp_data, cfg=cfg, batch_size=batch, batches=nb, device=device))
            data_path[-1].update(measured=now_iso(),
                                 other_cpu_share=other_cpu_share(snap, cpu_snapshot()))
    result = assemble(data_path, True)
    if args.readme:
        for readme in filter(None, args.readme):
            render_readme(readme, os.path.dirname(os.path.abspath(out_path)))
    return result


if __name__ == "__main__":
    main()
