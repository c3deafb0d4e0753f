"""How fast a run executes, decided in one place: torch.compile (off, the whole model, or
its repeated blocks) and, for Swin, fused window attention. None of it changes what is
trained (tests/test_speed.py checks each option against the plain path).

A config field that is set wins; one left None takes the per-model, per-device default
written below with its reason, from the committed measurements (benchmarks/reference/).
The benchmark reports the variants; it never steers a run.

The compile cache is <results_dir>/compile-cache unless TORCHINDUCTOR_CACHE_DIR is set, so
a run resumed from the same results folder (on Colab, the Drive folder) finds its kernels.
"""
from __future__ import annotations

import contextlib
import os
from unittest import mock
from dataclasses import asdict, dataclass, field

import torch

CACHE_DIRNAME = "compile-cache"
ENTRIES_PER_REGION = 4             # compile_scope="blocks": dynamo cache entries per block
COMPILE_BACKEND = "inductor"       # torch.compile's code generator; "eager" traces only
H100 = "benchmarks/reference/h100-2026-11-26"


@dataclass(frozen=True)
class SpeedChoice:
    """The speed options a run uses, with why."""
    compile: bool
    compile_scope: str
    fused_attention: bool
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


# ----------------------------------------------------------------------------- defaults
@dataclass(frozen=True)
class Default:
    compile: bool
    compile_scope: str
    fused_attention: bool
    reason: str


PLAIN = Default(False, "model", False, "the plain path (eager, timm's attention)")
# On CUDA, by the run's architecture (helpers.config), else its model family.
# A Problem 1 default is compiled only where compile_saving() says compiling paid for itself
# on the committed measurement (tests/test_speed.py derives each one from the file).
CUDA_DEFAULTS = {
    "resnet18": Default(False, "model", False,
                        f"eager: compiled did not train faster in {H100}/bench_compile.json"),
    "vit-8L-8H-512": Default(False, "model", False,
                             f"eager: compiled trained faster in {H100}/bench_compile.json, "
                             "but over Problem 1's epochs it saved less than its compile "
                             "(training and evaluation graphs) cost"),
    "vit": Default(False, "model", False,
                   f"eager: this ViT size was not measured compiled ({H100})"),
    "swin": Default(False, "model", False,
                    f"eager with timm's attention: the whole-model compile of Swin-T training "
                    f"had not finished after ~120 s ({H100}/README.md); fused attention and "
                    "block compile are not measured on a GPU yet"),
}
OFF_CUDA_REASON = ("eager off CUDA: a CPU trains small runs (the offline demo, tests), too "
                   "short to repay a cold compile (compile_cold_s in "
                   "benchmarks/results/cpu-x86_64.json)")


def compile_saving(eager: dict, compiled: dict, *, epochs: int, train_images: int,
                   test_images: int, evals: int | None = None) -> dict:
    """What compiling a run saves, from two benchmark timings of it (helpers.bench: keys
    images_per_s, eval_images_per_s, warmup_s, eval_warmup_s): `epochs` epochs of
    `train_images` and `evals` (default: one per epoch) evaluations of `test_images`.
    The cost is the compiled variant's extra one-off warm-up, of its training graphs and of
    its evaluation graphs. Returns saved_s, cost_s, net_s (saved - cost) and pays."""
    evals = epochs if evals is None else evals
    saved = epochs * (train_images / eager["images_per_s"]
                      - train_images / compiled["images_per_s"])
    if eager.get("eval_images_per_s") and compiled.get("eval_images_per_s"):
        saved += evals * (test_images / eager["eval_images_per_s"]
                          - test_images / compiled["eval_images_per_s"])
    cost = (max(0.0, compiled["warmup_s"] - eager["warmup_s"])
            + max(0.0, compiled.get("eval_warmup_s", 0.0) - eager.get("eval_warmup_s", 0.0)))
    return dict(saved_s=saved, cost_s=cost, net_s=saved - cost, pays=saved > cost)


def default_for(cfg, device: torch.device) -> Default:
    """The written default for this run's architecture on this device."""
    if device.type != "cuda":
        return Default(False, "model", False, OFF_CUDA_REASON)
    from .config import MODELS
    family = MODELS[cfg.model].family
    return CUDA_DEFAULTS.get(cfg.architecture) or CUDA_DEFAULTS.get(family) or PLAIN


def choose(cfg, *, device: torch.device) -> SpeedChoice:
    """The speed options for a run: the config's where it sets them, else default_for."""
    d = default_for(cfg, device)
    reasons, set_fields = [], {}
    for name in ("compile", "compile_scope", "fused_attention"):
        value = getattr(cfg, name)
        if value is not None:
            set_fields[name] = value
    if set_fields:
        reasons.append("set in the config: " + ", ".join(f"{k}={v!r}"
                                                         for k, v in set_fields.items()))
    if len(set_fields) < (3 if cfg.is_swin else 2):
        reasons.append(d.reason)
    compile = d.compile if cfg.compile is None else cfg.compile
    scope = cfg.compile_scope or d.compile_scope
    fused = d.fused_attention if cfg.fused_attention is None else cfg.fused_attention
    return SpeedChoice(bool(compile), scope, bool(fused and cfg.is_swin), reasons)


# ----------------------------------------------------------------------------- kernel limits
CUDA_GRID_AXIS = 65_535            # blocks along a CUDA grid's y and z axes
SWIN_WINDOW = 7                    # timm's Swin-T/S window side, in patches
SDPA_BIG_BATCH_TORCH = (2, 8)      # first torch whose SDPA CUDA kernels split a big batch


def torch_version(version: str | None = None) -> tuple[int, int]:
    """(major, minor) of torch, or of a version string such as '2.7.1+cu126'."""
    major, minor = (version or torch.__version__).split("+")[0].split(".")[:2]
    return int(major), int(minor)


def fused_window_batch_cap(img_size: int, patch: int, version: tuple[int, int]) -> int | None:
    """The largest image batch fused window attention takes in one call, or None for no
    cap. Swin's first stage attends over (img_size / patch / window)^2 windows per image
    (padded up), each a row of SDPA's batch; before torch 2.8 SDPA's CUDA kernels put that
    batch on one grid axis, so more than CUDA_GRID_AXIS windows fail with "invalid
    configuration argument" (e.g. 1,024 images at 224 px: 65,536 windows)."""
    if version >= SDPA_BIG_BATCH_TORCH:
        return None
    side = -(-img_size // patch // SWIN_WINDOW) if img_size // patch > SWIN_WINDOW else 1
    return max(1, CUDA_GRID_AXIS // (side * side))


# ----------------------------------------------------------------------------- the cache
def _user_cache_dir() -> str | None:
    """TORCHINDUCTOR_CACHE_DIR if the user set it; inductor's own default, which it writes
    into the environment (<tmp>/torchinductor_<user>), is not a choice."""
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
    triton = os.environ.get("TRITON_CACHE_DIR") or os.path.join(path, "triton")
    with mock.patch.dict(os.environ, {"TORCHINDUCTOR_CACHE_DIR": path,
                                      "TRITON_CACHE_DIR": triton}):
        yield path


# ----------------------------------------------------------------------------- applying
def set_attention(model: torch.nn.Module, fused: bool) -> None:
    """Fused (SDPA) or timm's written-out window attention, for a model that has it."""
    if getattr(model, "window_attention", False):
        model.set_fused_attention(fused)
    elif fused:
        raise ValueError("fused_attention=True: only Swin has window attention to fuse")


def compiled_forward(model: torch.nn.Module, compile: bool, scope: str = "model",
                     backend=COMPILE_BACKEND):
    """What a training step calls: the model, its torch.compile wrapper, or the model with
    its repeated blocks compiled in place (nn.Module.compile), with torch.compile's
    `backend` (a name or a callable). Parameter names stay the model's own either way, so
    checkpoints of every variant are interchangeable.

    Graphs are static (dynamic=False): Swin's blocks share one code object, so from the
    second stage on dynamo's automatic dynamic shapes would trace every block with symbolic
    sizes, which compile longer and run slower; static graphs recompile once per shape
    instead, within the cache limit set below."""
    if not compile:
        return model
    if scope == "blocks":
        regions = list(model.compile_regions())
        # Every block is a cache entry of the same code object, once per shape and mode
        # (training, evaluation, the last partial batch): past dynamo's limit (8 by
        # default) the later ones, evaluation first, would silently run uncompiled.
        limit = ENTRIES_PER_REGION * len(regions) + 8
        for name in (recompile_limit_name(), "accumulated_recompile_limit",
                     "accumulated_cache_size_limit"):
            if hasattr(torch._dynamo.config, name):
                setattr(torch._dynamo.config, name,
                        max(getattr(torch._dynamo.config, name), limit))
        for block in regions:
            block.compile(backend=backend, dynamic=False)
        return model
    return torch.compile(model, backend=backend, dynamic=False)


def recompile_limit_name() -> str:
    """dynamo's per-code-object cache limit: recompile_limit (newer torch) or
    cache_size_limit (older)."""
    return ("recompile_limit" if hasattr(torch._dynamo.config, "recompile_limit")
            else "cache_size_limit")


def reset_compiler() -> None:
    """Forget every compiled graph of this process: each run compiles afresh, and one run
    never fills the cache another run needs (the runner's --no-notebooks trains every row
    in one process). The on-disk kernel cache is kept."""
    torch._dynamo.reset()


def compiled_graphs() -> int:
    """Graphs dynamo has compiled in this process since the last reset."""
    from torch._dynamo.utils import counters
    return int(counters["stats"]["unique_graphs"])
