"""Do a training batch and an evaluation batch fit the GPU's memory?

One eager training step on zeros, at the run's precision and batch, gives the peak
allocated memory; the optimiser state (AdamW: two fp32 tensors per trainable parameter,
SGD with momentum: one) is added, as it appears only at the first real step. The batch
fits when that is at most HEADROOM of what this process can use (free plus already
reserved). An unset batch is halved until it fits (not below MIN_BATCH); an explicit one
that does not fit is a ConfigError naming batch_size, before training.

Evaluation (and the frozen backbone's feature pass) runs at eval_batch_size, without
gradients but beside what training leaves resident (optimiser state and gradients), so it
is checked the same way, by one no-grad forward pass; it is always halved to fit, since
its batch does not change what is computed.

The meter (peak, capacity, out of memory) is an object passed in: CudaMeter on a GPU, a
fake one in CPU tests, so the rule and the probes' bookkeeping run without a GPU. The
probes leave the model as they found it. Only CUDA is metered: MPS reports no peak, and a
CPU's memory is the machine's.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ConfigError
from .device import device_name

HEADROOM = 0.9            # of the usable memory: room for the allocator's fragmentation
MIN_BATCH = 8
GB = 1024 ** 3


class CudaMeter:
    """The memory rule's view of one CUDA GPU. `limit_bytes` caps what counts as usable
    (e.g. to act as a smaller GPU, with torch.cuda.set_per_process_memory_fraction)."""

    def __init__(self, device: torch.device, limit_bytes: int | None = None):
        self.device, self.limit_bytes = device, limit_bytes
        self.name = device_name(device)

    def capacity(self) -> int:
        """Free memory on the GPU plus what this process has reserved already."""
        free, _total = torch.cuda.mem_get_info(self.device)
        usable = free + torch.cuda.memory_reserved(self.device)
        return usable if self.limit_bytes is None else min(usable, self.limit_bytes)

    def peak(self, step: Callable[[], None]) -> int | None:
        """Peak bytes allocated while step() runs; None if it ran out of memory."""
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        try:
            step()
            torch.cuda.synchronize(self.device)
            return int(torch.cuda.max_memory_allocated(self.device))
        except torch.cuda.OutOfMemoryError:
            return None
        finally:
            torch.cuda.empty_cache()


def optimizer_state_bytes(model: nn.Module, optimizer: str) -> int:
    """Bytes of optimiser state once the first step has run."""
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return n * 4 * (2 if optimizer == "adamw" else 1)


def resident_after_training_bytes(model: nn.Module, optimizer: str) -> int:
    """What training leaves allocated while evaluation runs, beyond the weights: the
    optimiser state and one fp32 gradient per trainable parameter (zeroed only at the
    next step)."""
    grads = sum(p.numel() for p in model.parameters() if p.requires_grad) * 4
    return optimizer_state_bytes(model, optimizer) + grads


def fit_batch(batch: int, *, explicit: bool, step_peak: Callable[[int], int | None],
              capacity: int, state_bytes: int, where: str,
              field: str = "batch_size") -> tuple[int, str | None]:
    """The largest batch <= `batch` (halving) whose step_peak(b) + state_bytes fits
    HEADROOM * capacity; step_peak returns None when the step ran out of memory.
    Returns (batch, why it was lowered, or None when it was not). `field` is the config
    field a refusal names."""
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
            f"{field}={batch}: one step needs {shown} on {where}, which has "
            f"{capacity / GB:.1f} GB usable ({HEADROOM:.0%} allowed); lower {field}, "
            "or leave it None to fit it to the memory")
    b = batch
    while b > MIN_BATCH:
        b //= 2
        got = need(b)
        if got is not None and got <= limit:
            return b, (f"halved from {batch} to {b} to fit {where}: a step at {batch} needs "
                       f"{shown}, at {b} {got / GB:.1f} GB, of {capacity / GB:.1f} GB usable")
    raise ConfigError(f"{field}: even a batch of {b} does not fit the memory of {where} "
                      f"({capacity / GB:.1f} GB usable); use a smaller model or img_size")


def _zeros(batch: int, img_size: int, device, channels_last: bool) -> torch.Tensor:
    x = torch.zeros(batch, 3, img_size, img_size, device=device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def step_peak(model: nn.Module, batch: int, img_size: int, precision, device: torch.device,
              channels_last: bool = False, *, meter) -> int | None:
    """Peak bytes `meter` sees during one eager training step at `batch` (None: out of
    memory). The model, already on `device`, and every RNG are restored afterwards."""
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training

    def step():
        model.train()
        x = _zeros(batch, img_size, device, channels_last)
        y = torch.zeros(batch, dtype=torch.long, device=device)
        with precision.autocast():
            loss = F.cross_entropy(model(x), y)
        loss.backward()

    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            return meter.peak(step)
    finally:
        model.zero_grad(set_to_none=True)
        model.load_state_dict(saved)
        model.train(was_training)


def eval_peak(model: nn.Module, batch: int, img_size: int, precision, device: torch.device,
              channels_last: bool = False, *, meter) -> int | None:
    """Peak bytes `meter` sees during one evaluation forward pass at `batch` (no
    gradients, eval mode), None when out of memory; the model's mode is restored."""
    was_training = model.training

    @torch.no_grad()
    def step():
        model.eval()
        with precision.autocast():
            model(_zeros(batch, img_size, device, channels_last))

    try:
        return meter.peak(step)
    finally:
        model.train(was_training)
