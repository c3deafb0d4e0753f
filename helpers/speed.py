"""torch.compile for a run: the whole model, with static graphs, and its on-disk kernel
cache. Compiling does not change what is trained (tests/test_train.py checks the losses).

The compile cache is <results_dir>/compile-cache unless TORCHINDUCTOR_CACHE_DIR is set, so
a run resumed from the same results folder (on Colab, the Drive folder) finds its kernels.
"""
from __future__ import annotations

import contextlib
import os
from unittest import mock

import torch

CACHE_DIRNAME = "compile-cache"
COMPILE_BACKEND = "inductor"       # torch.compile's code generator; "eager" traces only


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
def compiled_forward(model: torch.nn.Module, compile: bool, backend=COMPILE_BACKEND):
    """What a training step calls: the model, or its torch.compile wrapper with `backend`
    (a name or a callable). Parameter names stay the model's own, so checkpoints of a
    compiled and an eager run are interchangeable.

    Graphs are static (dynamic=False): a second batch size (evaluation's, the last partial
    batch) recompiles once instead of tracing every later shape with symbolic sizes, which
    compile longer and run slower."""
    if not compile:
        return model
    return torch.compile(model, backend=backend, dynamic=False)


def reset_compiler() -> None:
    """Forget every compiled graph of this process: each run compiles afresh, and one run
    never fills the cache another run needs (the runner's --no-notebooks trains every row
    in one process, and the ViT sizes share one forward). The on-disk kernel cache is kept."""
    torch._dynamo.reset()
