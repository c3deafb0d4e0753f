"""Does a training batch fit the GPU's memory?

One eager training step on zeros, at the run's precision and batch, gives the peak
allocated memory; the optimiser state (AdamW: two fp32 tensors per trainable parameter,
SGD with momentum: one) is added, as it appears only at the first real step. The batch
fits when that is at most HEADROOM of what this process can use (free plus already
reserved). An unset batch is halved until it fits (not below MIN_BATCH); an explicit one
that does not fit is a ConfigError naming batch_size, before training. The probe leaves
the model as it found it. Only CUDA is checked: MPS reports no peak, and a CPU's memory
is the machine's.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ConfigError

HEADROOM = 0.9            # of the usable memory: room for the allocator's fragmentation
MIN_BATCH = 8
GB = 1024 ** 3


def optimizer_state_bytes(model: nn.Module, optimizer: str) -> int:
    """Bytes of optimiser state once the first step has run."""
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return n * 4 * (2 if optimizer == "adamw" else 1)


def fit_batch(batch: int, *, explicit: bool, step_peak: Callable[[int], int | None],
              capacity: int, state_bytes: int, where: str) -> tuple[int, str | None]:
    """The largest batch <= `batch` (halving) whose step_peak(b) + state_bytes fits
    HEADROOM * capacity; step_peak returns None when the step ran out of memory.
    Returns (batch, why it was lowered, or None when it was not)."""
    limit = HEADROOM * capacity

    def need(b):
        peak = step_peak(b)
        return None if peak is None else peak + state_bytes

    first = need(batch)
    if first is not None and first <= limit:
        return batch, None
    shown = "more than is free" if first is None else f"{first / GB:.1f} GB"
    if explicit:
        raise ConfigError(
            f"batch_size={batch}: one training step needs {shown} on {where}, which has "
            f"{capacity / GB:.1f} GB usable ({HEADROOM:.0%} allowed); lower batch_size, "
            "or leave it None to fit it to the memory")
    b = batch
    while b > MIN_BATCH:
        b //= 2
        got = need(b)
        if got is not None and got <= limit:
            return b, (f"halved from {batch} to {b} to fit {where}: a step at {batch} needs "
                       f"{shown}, at {b} {got / GB:.1f} GB, of {capacity / GB:.1f} GB usable")
    raise ConfigError(f"batch_size: even a batch of {b} does not fit the memory of {where} "
                      f"({capacity / GB:.1f} GB usable); use a smaller model or img_size")


def usable_bytes(device: torch.device) -> int:
    """Free memory on the GPU plus what this process has reserved already."""
    free, _total = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device)


def step_peak(model: nn.Module, batch: int, img_size: int, precision,
              device: torch.device, channels_last: bool = False) -> int | None:
    """Peak bytes allocated on `device` during one eager training step at `batch` (None:
    out of memory). The model, already on `device`, is restored afterwards."""
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    rng = torch.cuda.get_rng_state(device)
    was_training = model.training
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    x = y = loss = None
    try:
        model.train()
        x = torch.zeros(batch, 3, img_size, img_size, device=device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = torch.zeros(batch, dtype=torch.long, device=device)
        with precision.autocast():
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    except torch.cuda.OutOfMemoryError:
        return None
    finally:
        del x, y, loss
        model.zero_grad(set_to_none=True)
        model.load_state_dict(saved)
        model.train(was_training)
        torch.cuda.set_rng_state(rng, device)
        torch.cuda.empty_cache()
