"""How fast a run executes, decided in one place: torch.compile (off, the whole model, or
its repeated blocks one by one) and, for Swin, fused window attention.

Nothing here changes what is trained: the same parameters, the same maths, the same
losses to rounding (tests/test_speed.py checks each option against the plain path).
A config field that is set wins. A field left as None is decided from a measurement:
this device's benchmark result, benchmarks/results/<device-slug>.json, written by
`python -m helpers.bench`. The figures that justify a choice are the ones in that file,
and the reason the plan records quotes them. Without a measurement of this run (same
architecture, image size, batch and precision) the choice is the plain path: timm's
attention and no compilation, as the engine has always run.

The rule, per run: among the measured variants, take the one whose predicted time for
this run is least,
    images the run trains / measured images per second + one-off compile cost,
where the compile cost is the measured extra warm-up (training and evaluation) over the
plain path's: cold, or warm when this results folder's compile cache already holds the
variant's kernels (a second run of the grid, or a Colab session resumed from Drive).

The compile cache lives in <results_dir>/compile-cache (TORCHINDUCTOR_CACHE_DIR, unless
the environment sets one), so a run resumed from the same results folder, on Colab the
Drive folder, finds the kernels an earlier session compiled.
"""
from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field

import torch

from .config import COMPILE_SCOPES  # noqa: F401  ("model" | "blocks")
from .device import device_name, device_slug
from .paths import BENCH_DIR

CACHE_DIRNAME = "compile-cache"
WARM_INDEX = "compiled-variants.json"          # which variants this cache holds kernels for
BENCH_RESULTS_ENV = "HELPERS_BENCH_RESULTS"    # another folder of benchmark results


@dataclass(frozen=True)
class SpeedChoice:
    """The speed options a run uses, with where each came from."""
    compile: bool
    compile_scope: str
    fused_attention: bool
    measured_in: str | None = None               # the benchmark file the choice used
    reasons: list = field(default_factory=list)

    @property
    def variant(self) -> str:
        return variant_name(self.fused_attention, self.compile, self.compile_scope)

    def to_dict(self) -> dict:
        return asdict(self)


def variant_name(fused: bool, compile: bool, scope: str = "model") -> str:
    """The benchmark's label of a variant: 'eager', 'compiled', 'fused-compiled-blocks'..."""
    name = ("compiled" + ("-blocks" if scope == "blocks" else "")) if compile else "eager"
    return ("fused-" if fused else "") + name


# ----------------------------------------------------------------------------- measurements
def bench_results_dir() -> str:
    return os.environ.get(BENCH_RESULTS_ENV) or os.path.join(BENCH_DIR, "results")


def bench_file(device: torch.device) -> str:
    return os.path.join(bench_results_dir(), f"{device_slug(device)}.json")


def measured_run(cfg, device: torch.device, precision: str, batch_size: int) -> tuple[dict | None, str]:
    """(the benchmark's record of this run on this device, the file) or (None, file).

    The record must be for this architecture (the run's default name), image size, batch
    size and precision, and made on this device (by name): a figure measured at another
    batch or precision says nothing reliable about this run."""
    path = bench_file(device)
    try:
        with open(path) as f:
            result = json.load(f)
    except (OSError, ValueError):
        return None, path
    if result.get("device") != device_name(device) or result.get("precision") != precision:
        return None, path
    for run in result.get("runs", []):
        if (run.get("status") == "complete" and run.get("run_name") == cfg.default_run_name()
                and run.get("img_size") == cfg.img_size and run.get("batch_size") == batch_size):
            return run, path
    return None, path


def _variants(run: dict) -> dict[str, dict]:
    """label -> timing, each with its options spelled out (files from before the options
    were recorded hold timm's attention, whole-model compile)."""
    out = {}
    for timing in run.get("ours", {}).values():
        fused = bool(timing.get("fused_attention", False))
        scope = timing.get("compile_scope") or "model"
        out[variant_name(fused, bool(timing.get("compile")), scope)] = timing
    return out


def _one_off(timing: dict, warm: bool) -> float:
    """Warm-up seconds (training + evaluation) of a variant: cold, or with a warm cache."""
    src = timing.get("warm") if warm and timing.get("warm") else timing
    return src["warmup_s"] + src.get("eval_warmup_s", 0.0)


# ----------------------------------------------------------------------------- the rule
@dataclass(frozen=True)
class Scored:
    """One measured variant's predicted time for a run."""
    options: tuple            # (fused_attention, compile, compile_scope)
    images_per_s: float
    compile_s: float          # one-off extra warm-up over the plain path (0 when eager)
    warm: bool                # compile_s is the warm-cache figure
    predicted_s: float

    @property
    def name(self) -> str:
        return variant_name(*self.options)


def pick(variants: dict[str, dict], images: int, *, swin: bool, compile=None, scope=None,
         fused=None, warm: set = frozenset()) -> list[Scored]:
    """Every measured variant the fixed options allow, scored for a run of `images`
    training images, fastest first (ties keep the plainer variant first). `variants`
    maps a variant name to its benchmark timing; `warm` names the variants whose kernels
    are in the compile cache. Empty when the plain path itself was not measured."""
    base = variants.get("eager")
    if base is None:
        return []
    scored = []
    for f in ((False, True) if swin else (False,)):
        for comp, sc in ((False, "model"), (True, "model"), (True, "blocks")):
            if ((fused is not None and f != fused) or (compile is not None and comp != compile)
                    or (scope is not None and comp and sc != scope)):
                continue
            timing = variants.get(variant_name(f, comp, sc))
            if timing is None:
                continue
            is_warm = comp and variant_name(f, comp, sc) in warm
            cost = max(0.0, _one_off(timing, is_warm) - _one_off(base, False)) if comp else 0.0
            scored.append(Scored((f, comp, sc), timing["images_per_s"], cost, is_warm,
                                 images / timing["images_per_s"] + cost))
    return sorted(scored, key=lambda s: s.predicted_s)      # stable: plain variants first


def break_even_images(plain_ips: float, ips: float, compile_s: float) -> float | None:
    """Training images after which a variant's one-off cost has paid for itself, or None
    if it is not faster per image."""
    saved = 1 / plain_ips - 1 / ips
    return compile_s / saved if saved > 0 else None


def choose(cfg, *, device: torch.device, precision: str, batch_size: int, images: int,
           cache_dir: str | None = None) -> SpeedChoice:
    """The speed options for a run that trains `images` images (all epochs) at `batch_size`.
    See the module docstring for the rule."""
    fixed = dict(compile=cfg.compile, scope=cfg.compile_scope, fused=cfg.fused_attention)
    swin = getattr(cfg, "is_swin", False)
    run, path = measured_run(cfg, device, precision, batch_size)
    root = os.path.dirname(BENCH_DIR)
    where = os.path.relpath(path, root) if path.startswith(root + os.sep) else path
    variants = _variants(run) if run else {}
    index = read_warm_index(cache_dir)
    warm = {name for name in variants
            if variant_key(cfg, name, batch_size, precision, device) in index}
    scored = pick(variants, images, swin=swin, warm=warm, **fixed)
    reasons = []
    set_fields = {k: v for k, v in (("compile", cfg.compile), ("compile_scope", cfg.compile_scope),
                                    ("fused_attention", cfg.fused_attention)) if v is not None}
    if set_fields:
        reasons.append("set in the config: " + ", ".join(f"{k}={v!r}" for k, v in set_fields.items()))
    if scored:
        best = scored[0]
        plain = images / variants["eager"]["images_per_s"]
        reasons.append(
            f"measured in {where} ({run.get('measured', '?')}): "
            + ", ".join(f"{s.name} {s.images_per_s:,.0f} img/s"
                        + (f" + {s.compile_s:.1f} s {'warm' if s.warm else 'cold'} compile"
                           if s.options[1] else "") for s in scored)
            + f"; for {images:,} training images {best.name} is predicted fastest "
              f"({best.predicted_s:.1f} s, eager {plain:.1f} s)")
        fused, comp, scope = best.options
        return SpeedChoice(comp, scope if comp else (cfg.compile_scope or "model"), fused,
                           measured_in=where, reasons=reasons)
    if cfg.compile is None or (swin and cfg.fused_attention is None):
        reasons.append(f"no measurement of this run ({cfg.default_run_name()}, {cfg.img_size} "
                       f"px, batch {batch_size}, {precision}) on {device_name(device)} in "
                       f"{where}: the plain path where the config leaves it open (eager"
                       + (", timm's attention" if swin else "") + ")")
    return SpeedChoice(bool(cfg.compile), cfg.compile_scope or "model", bool(cfg.fused_attention),
                       measured_in=None, reasons=reasons)


# ----------------------------------------------------------------------------- the cache
def _user_cache_dir() -> str | None:
    """TORCHINDUCTOR_CACHE_DIR if the user set it. Inductor (imported by timm, among
    others) writes its default, <tmp>/torchinductor_<user>, into the environment itself,
    and a folder in /tmp is what a resumed Colab session would not find: that one is not
    taken as a choice."""
    import tempfile
    chosen = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if not chosen:
        return None
    parent, name = os.path.split(os.path.abspath(chosen))
    inductor_default = name.startswith("torchinductor_") and parent == tempfile.gettempdir()
    return None if inductor_default else chosen


def compile_cache_dir(results_dir: str) -> str:
    """Where torch.compile's on-disk caches are for runs of this results folder: the
    user's TORCHINDUCTOR_CACHE_DIR if set, else <results_dir>/compile-cache."""
    return _user_cache_dir() or os.path.abspath(os.path.join(results_dir, CACHE_DIRNAME))


@contextlib.contextmanager
def compile_cache(results_dir: str):
    """torch.compile's on-disk caches in compile_cache_dir(results_dir) (created if
    needed) while the block runs; yields the folder. Kernels compile lazily, at the first
    steps, so the whole training loop runs inside."""
    path = compile_cache_dir(results_dir)
    os.makedirs(path, exist_ok=True)
    saved = {k: os.environ.get(k) for k in ("TORCHINDUCTOR_CACHE_DIR", "TRITON_CACHE_DIR")}
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = path
    os.environ["TRITON_CACHE_DIR"] = saved["TRITON_CACHE_DIR"] or os.path.join(path, "triton")
    try:
        yield path
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def variant_key(cfg, variant: str, batch_size: int, precision: str,
                device: torch.device) -> str:
    """What a compiled variant's kernels depend on (torch recompiles for any change)."""
    return "|".join(str(v) for v in (cfg.default_run_name(), cfg.img_size, batch_size,
                                     precision, variant, device_name(device), torch.__version__))


def read_warm_index(cache_dir: str | None) -> set:
    if not cache_dir:
        return set()
    try:
        with open(os.path.join(cache_dir, WARM_INDEX)) as f:
            return set(json.load(f))
    except (OSError, ValueError, TypeError):
        return set()


def mark_warm(cache_dir: str, key: str) -> None:
    """Record that `cache_dir` now holds a compiled variant's kernels (after its first
    epoch), so the next run's choice counts the warm cost."""
    from .atomic import write_text
    keys = read_warm_index(cache_dir) | {key}
    write_text(os.path.join(cache_dir, WARM_INDEX), json.dumps(sorted(keys), indent=1) + "\n")


# ----------------------------------------------------------------------------- applying
def set_attention(model: torch.nn.Module, fused: bool) -> None:
    """Fused (SDPA) or timm's written-out window attention, for a model that has it."""
    if getattr(model, "window_attention", False):
        model.set_fused_attention(fused)
    elif fused:
        raise ValueError("fused_attention=True: only Swin has window attention to fuse")


def compiled_forward(model: torch.nn.Module, compile: bool, scope: str = "model"):
    """What a training step calls: the model, its torch.compile wrapper, or the model with
    its repeated blocks compiled in place (nn.Module.compile). Parameter names stay the
    model's own either way, so checkpoints of every variant are interchangeable."""
    if not compile:
        return model
    if scope == "blocks":
        for block in model.compile_regions():
            block.compile()
        return model
    return torch.compile(model)


def uncompile(model: torch.nn.Module) -> None:
    """Undo compile_scope='blocks' (nn.Module.compile keeps the compiled call on the
    module); the benchmark measures several variants on one model."""
    for block in getattr(model, "compile_regions", list)():
        if getattr(block, "_compiled_call_impl", None) is not None:
            block._compiled_call_impl = None
