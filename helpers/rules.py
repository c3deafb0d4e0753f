"""The rules for the values a config may leave unset: the batch size and the warm-up.

Plain arithmetic on sizes, so a config can be checked without importing torch.
"""
from __future__ import annotations

# When batch_size is left unset, the per-model default is halved until an epoch has at
# least MIN_STEPS_PER_EPOCH optimiser steps (never below MIN_AUTO_BATCH). CIFAR-100 keeps
# the defaults (50,000 / 512 = 97 steps); 1,400 images get 64 (21 steps), where 512
# would give 2 steps an epoch, all of them warm-up. The learning rate is not rescaled.
MIN_STEPS_PER_EPOCH = 20
MIN_AUTO_BATCH = 16
# When warmup_epochs is left unset: one epoch of linear warm-up, but at most this share
# of all steps (Problem 1 on CIFAR-100: 1 of 20 epochs; Problem 2: 1 of 5, the cap).
AUTO_WARMUP_MAX_SHARE = 0.2


def auto_batch_size(default: int, n_train: int) -> int:
    """The batch used when batch_size is unset: see MIN_STEPS_PER_EPOCH."""
    batch = default
    while batch > MIN_AUTO_BATCH and n_train // batch < MIN_STEPS_PER_EPOCH:
        batch //= 2
    return max(1, min(batch, n_train))


def warmup_steps(warmup_epochs: float | None, steps_per_epoch: int, total_steps: int) -> int:
    """Linear warm-up steps: warmup_epochs of them, or the automatic rule when None."""
    if warmup_epochs is None:
        return min(steps_per_epoch, int(AUTO_WARMUP_MAX_SHARE * total_steps))
    return min(round(warmup_epochs * steps_per_epoch), total_steps)
