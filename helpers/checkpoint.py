"""Checkpoints that make a Colab disconnect cost nothing.

A checkpoint holds everything a run needs to continue bit-for-bit: model, optimiser,
scheduler, GradScaler, every RNG state and the history so far. It is written atomically
(temp file in the same folder, then rename) so a kill mid-write never leaves a corrupt
file, and it is loaded with `weights_only=True`, so opening one never runs pickled code.
"""
from __future__ import annotations

import torch

from .atomic import atomic_path

# Config fields that only say *where/how fast* a run executes. They may change between
# an interrupted run and its resumption (a new Colab GPU, a bigger eval batch) without
# changing what is being trained. Every other field must match.
EXECUTION_FIELDS = frozenset({"device", "precision", "compile", "eval_batch_size",
                              "results_dir", "data_dir", "weights", "keep_checkpoints"})


class CheckpointUnusableError(RuntimeError):
    """A checkpoint exists for this run but cannot resume it; the message says what to do."""


class CheckpointMismatchError(CheckpointUnusableError):
    """A checkpoint exists for this run name but was made with a different config."""


def save_checkpoint(path: str, state: dict) -> None:
    """Write `state` to `path` atomically."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str, map_location="cpu") -> dict:
    return torch.load(path, map_location=map_location, weights_only=True)


def check_compatible(saved_config: dict, config: dict, path: str) -> None:
    """Refuse to resume a checkpoint made for a different experiment."""
    diffs = {k: (saved_config.get(k), v) for k, v in config.items()
             if k not in EXECUTION_FIELDS and saved_config.get(k) != v}
    if diffs:
        listed = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in sorted(diffs.items()))
        raise CheckpointMismatchError(
            f"checkpoint {path} was made with a different config ({listed}). "
            "Delete it to start over, or pick another run_name.")
