"""FLOPs of one training step (forward and backward), for the benchmark's model FLOP
utilisation: counted with the core's version-independent counter (helpers.measure)."""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..measure import counting_flops, example_batch


def train_step_flops(model: nn.Module, img_size: int, num_classes: int) -> int:
    """FLOPs of forward + backward for one training image, counting only what runs.

    Cross-entropy on one label, then loss.backward(). A frozen backbone runs under
    no_grad, so its backward is never executed and only the head's gradient is counted.
    Works on a deep copy, so the model's modes and gradients are untouched.
    """
    if not 0 < num_classes:
        raise ValueError(f"num_classes={num_classes!r}: must be positive")
    clone = copy.deepcopy(model).train()
    x = example_batch(clone, img_size)
    y = torch.zeros(1, dtype=torch.long, device=x.device)
    with counting_flops() as counter:
        logits = clone(x)  # (1, num_classes)
        if logits.shape != (1, num_classes):
            raise ValueError(f"model returned logits of shape {tuple(logits.shape)}, "
                             f"expected (1, {num_classes})")
        F.cross_entropy(logits, y).backward()
    return int(counter.get_total_flops())
