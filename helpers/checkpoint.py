"""Checkpoints that make a Colab disconnect cost nothing.

A checkpoint holds everything a run needs to continue where it stopped: model, optimiser,
scheduler, GradScaler, every RNG state, the training plan and the history so far. On a
CPU the continuation is bit-for-bit; on CUDA it is the same computation, up to the
run-to-run noise of cuDNN's autotuned kernels and atomic adds in backward (an
uninterrupted CUDA run is not bit-for-bit reproducible either). It resumes only under the
plan's schedule (SCHEDULE_FIELDS): a different batch would replay the learning-rate
schedule from the wrong step, and only under the training recipe that wrote it
(results.recipe_id, recorded as "recipe"). It is written atomically
(temp file in the same folder, then rename) so a kill mid-write never leaves a corrupt
file, and it is loaded with `weights_only=True`, so opening one never runs pickled code.
"""
from __future__ import annotations

import os

import torch

from .atomic import atomic_path
from .changes import stale_reasons
from .device import set_rng_state
from .results import recipe_id


class CheckpointUnusableError(RuntimeError):
    """A checkpoint exists for this run but cannot resume it; the message says what to do."""


class CheckpointMismatchError(CheckpointUnusableError):
    """A checkpoint exists for this run name but was made with a different config or
    training recipe."""


def save_checkpoint(path: str, state: dict) -> None:
    """Write `state` to `path` atomically, with this code's recipe as "recipe"."""
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save({**state, "recipe": recipe_id()}, tmp)


def load_checkpoint(path: str, map_location="cpu") -> dict:
    return torch.load(path, map_location=map_location, weights_only=True)


def check_compatible(saved: dict, config: dict, path: str) -> None:
    """Refuse to resume the checkpoint `saved` if it was made for a different experiment:
    another config, or another training recipe (none recorded: from before recipes were)."""
    changes = stale_reasons(saved, config)
    if changes:
        raise CheckpointMismatchError(
            f"checkpoint {path} was made with a different config or training code "
            f"(checkpoint -> now: {'; '.join(changes)}). Delete it to start over, or pick "
            "another run_name.")


# What the learning-rate schedule and the data order depend on.
SCHEDULE_FIELDS = ("batch_size", "steps_per_epoch", "total_steps", "warmup_steps")


def peek_checkpoint(path: str) -> dict | str | None:
    """The checkpoint at `path` (its config, recipe and plan are what a decision reads),
    why it cannot be read, or None when there is none. Memory-mapped: reads little of a
    large file."""
    if not os.path.exists(path):
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        saved["config"]
    except Exception as err:  # noqa: BLE001  (truncated or foreign: it cannot resume)
        return f"unreadable checkpoint ({type(err).__name__})"
    return saved


def saved_plan(path: str, config: dict) -> dict | None:
    """The training plan of the checkpoint at `path` if it was made with `config`; None
    when there is no readable checkpoint or it belongs to another config or recipe
    (resume() then says why)."""
    saved = peek_checkpoint(path)
    if not isinstance(saved, dict) or stale_reasons(saved, config):
        return None
    return saved.get("plan")


def check_schedule(saved: dict, plan: dict, path: str) -> None:
    """Refuse a checkpoint whose schedule differs from this run's plan, or that records
    none (written by code older than the plan): its schedule cannot be checked."""
    old = saved.get("plan")
    if not old:
        raise CheckpointUnusableError(
            f"checkpoint {path} records no training plan (older code wrote it), so its "
            "schedule cannot be checked against this run's; delete it to start over (the "
            "grid runner does this itself).")
    diff = [f"{k} {old.get(k)} -> {plan[k]}" for k in SCHEDULE_FIELDS if old.get(k) != plan[k]]
    if diff:
        raise CheckpointUnusableError(
            f"checkpoint {path} was trained under another schedule (checkpoint -> now: "
            f"{'; '.join(diff)}), so resuming would replay the learning rate from the wrong "
            "step. Resume where its batch fits, set batch_size to the checkpoint's, or "
            "delete it to start over (the grid runner does this itself).")


KERNEL_OPTIONS = ("fused", "foreach", "capturable")   # how, not what, the optimiser computes


def load_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Load a saved optimiser state under this machine's kernel options (fused, foreach,
    capturable), not the saving machine's: load_state_dict places each `step` by them, so
    a CPU checkpoint resumed with fused AdamW on a GPU gets its steps on the GPU, and a
    CUDA checkpoint does not ask a CPU for fused AdamW. Each state tensor takes its
    parameter's memory layout (a CPU's contiguous ResNet-18 moments resumed where it is
    channels_last), which fused AdamW needs: it pairs elements by memory, not by index."""
    mine = [{k: g[k] for k in KERNEL_OPTIONS if k in g} for g in optimizer.param_groups]
    if len(mine) != len(saved["param_groups"]):
        raise ValueError(f"the checkpoint has {len(saved['param_groups'])} optimiser param "
                         f"groups, this run {len(mine)}")
    groups = [{**g, **m} for g, m in zip(saved["param_groups"], mine)]
    optimizer.load_state_dict({**saved, "param_groups": groups})
    for p, state in optimizer.state.items():
        for k, v in state.items():
            if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                state[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)


def _first_line(err: Exception, n: int = 200) -> str:
    text = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {text[:n]}"


def resume(path: str, config: dict, state, plan: dict | None = None) -> tuple[list[dict], int]:
    """Load a checkpoint into a helpers.train.TrainState; returns (history, next epoch).
    `plan` (TrainingPlan.to_dict()) must keep the checkpoint's schedule. The fp16
    GradScaler's state is restored only where both sides use one. Anything that cannot be
    applied raises CheckpointUnusableError, which says what to do."""
    try:
        saved = load_checkpoint(path)
    except Exception as err:  # noqa: BLE001  (truncated, foreign or from a newer torch)
        raise CheckpointUnusableError(
            f"checkpoint {path} cannot be read ({_first_line(err)}). Delete it to "
            "train from scratch (the grid runner does this itself).") from err
    check_compatible(saved, config, path)
    if plan is not None:
        check_schedule(saved, plan, path)
    try:
        state.model.load_state_dict(saved["model"])
        load_optimizer_state(state.optimizer, saved["optimizer"])
        state.scheduler.load_state_dict(saved["scheduler"])
        if state.scaler.is_enabled() and saved.get("scaler"):
            state.scaler.load_state_dict(saved["scaler"])
        set_rng_state(saved["rng"])
    except (KeyError, RuntimeError, ValueError, TypeError) as err:
        raise CheckpointUnusableError(
            f"checkpoint {path} does not fit this run ({_first_line(err)}). Delete it "
            "to train from scratch (the grid runner does this itself).") from err
    return list(saved["history"]), saved["epoch"] + 1
