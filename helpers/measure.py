"""Model size and compute: parameters, thop MACs, and exact FLOPs.

Two compute numbers are reported because they disagree, and the disagreement is
instructive:

- `thop_macs` (the number most papers and the seed report quote) hooks *modules*: it
  counts Conv/Linear multiply-adds (plus a few ops for norms and pools) of every module
  it has a rule for. It therefore misses
    * the attention matmuls (Q K^T and attn @ V, 2 T^2 D MACs per block) inside
      F.scaled_dot_product_attention, which is a function, not a module;
    * nn.MultiheadAttention entirely (no rule: zero MACs, even for its projections);
    * ops on bare nn.Parameters, e.g. the ViT class-token concat and position-embedding add.
  For CNNs it is close to exact; for transformers it undercounts, more so with more tokens.
- `exact_flops` runs torch.utils.flop_counter.FlopCounterMode, which counts at the
  level of aten ops, so every matmul, convolution and SDPA call is seen, whichever module
  (or none) it comes from (nn.MultiheadAttention's fused inference kernel is the one op
  it cannot see, so that fast path is switched off while counting). It counts 2 FLOPs
  per multiply-add and ignores elementwise ops (norms, activations, residual adds),
  which are a small share of the compute.

So for a Conv/Linear network, exact_flops ~= 2 * thop_macs; for a ViT the gap is the
attention term. Both are measured on a batch of one image.
"""
from __future__ import annotations

import contextlib
import copy
import io
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts; shared parameters are counted once."""
    params = list(model.parameters())
    return (sum(p.numel() for p in params),
            sum(p.numel() for p in params if p.requires_grad))


def _example(model: nn.Module, img_size: int, batch: int = 1) -> torch.Tensor:
    """A random image batch (batch, 3, S, S) on the model's device and dtype."""
    p = next(model.parameters())
    return torch.randn(batch, 3, img_size, img_size, device=p.device, dtype=p.dtype)


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    """Eval mode for the duration, then every submodule's own train/eval flag back."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes.items():
            m.training = training


def thop_macs(model: nn.Module, img_size: int) -> int:
    """Multiply-accumulates counted by thop for one image (eval mode).

    Profiles a deep copy: thop registers `total_ops`/`total_params` buffers on every
    module and only removes them from modules it has a rule for, so the profiled model's
    state_dict gains keys and a later load_state_dict of a clean checkpoint would fail.
    """
    with warnings.catch_warnings():  # thop's import warns about distutils
        warnings.simplefilter("ignore", DeprecationWarning)
        import thop

    clone = copy.deepcopy(model).eval()
    with contextlib.redirect_stdout(io.StringIO()):  # thop prints per-module notes
        macs, _ = thop.profile(clone, inputs=(_example(clone, img_size),), verbose=False)
    return int(macs)


@contextlib.contextmanager
def _mha_fastpath_off():
    """nn.MultiheadAttention's inference fast path is one fused aten op that
    FlopCounterMode has no formula for (it would count 0); the regular path is counted."""
    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "set_fastpath_enabled"):
        yield
        return
    before = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(before)


def exact_flops(model: nn.Module, img_size: int) -> int:
    """FLOPs (2 per multiply-add) of one eval-mode forward pass of one image."""
    x = _example(model, img_size)
    with _eval_mode(model), _mha_fastpath_off(), torch.no_grad(), \
            FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def train_step_flops(model: nn.Module, img_size: int, num_classes: int) -> int:
    """FLOPs of forward + backward for one training image, counting only what runs.

    Cross-entropy on one label, then loss.backward(). A frozen backbone runs under
    no_grad, so its backward is never executed and only the head's gradient is counted.
    Works on a deep copy, so the model's modes and gradients are untouched.
    """
    if not 0 < num_classes:
        raise ValueError(f"num_classes={num_classes!r}: must be positive")
    clone = copy.deepcopy(model).train()
    x = _example(clone, img_size)
    y = torch.zeros(1, dtype=torch.long, device=x.device)
    with FlopCounterMode(display=False) as counter:
        logits = clone(x)  # (1, num_classes)
        if logits.shape != (1, num_classes):
            raise ValueError(f"model returned logits of shape {tuple(logits.shape)}, "
                             f"expected (1, {num_classes})")
        F.cross_entropy(logits, y).backward()
    return int(counter.get_total_flops())


def measure(model: nn.Module, img_size: int) -> dict:
    """Size and forward compute of one image, as reported in the result files."""
    params, trainable = count_params(model)
    return dict(params=params, trainable_params=trainable,
                macs_thop=thop_macs(model, img_size), flops=exact_flops(model, img_size))
