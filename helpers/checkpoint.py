"""Checkpoints that make a Colab disconnect cost nothing.

A checkpoint holds everything a run needs to continue bit-for-bit: model, optimiser,
scheduler, GradScaler, every RNG state and the history so far. It is written atomically
(temp file in the same folder, then rename) so a kill mid-write never leaves a corrupt
file, and it is loaded with `weights_only=True`, so opening one never runs pickled code.
"""
from __future__ import annotations

import torch

from .atomic import atomic_path
from .config import config_changes

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
    changes = config_changes(saved_config, config)
    if changes:
        raise CheckpointMismatchError(
            f"checkpoint {path} was made with a different config (checkpoint -> now: "
            f"{'; '.join(changes)}). Delete it to start over, or pick another run_name.")
