"""Model size and compute: parameters, thop MACs, and exact FLOPs.

Two compute numbers are reported because they disagree, and the disagreement is
instructive:

- `thop_macs` (the number most papers quote) hooks *modules*: it
  counts Conv/Linear multiply-adds (plus a few ops for norms and pools) of every module
  it has a rule for. It therefore misses
    * the attention matmuls (Q K^T and attn @ V, 2 T^2 D MACs per block) inside
      F.scaled_dot_product_attention, which is a function, not a module;
    * nn.MultiheadAttention entirely (no rule: zero MACs, even for its projections);
    * ops on bare nn.Parameters, e.g. the ViT class-token concat and position-embedding add.
  For CNNs it is close to exact; for transformers it undercounts, more so with more tokens.
- `exact_flops` counts aten ops with torch.utils.flop_counter, so every matmul and
  convolution is seen, whichever module (or none) it comes from, at 2 FLOPs per
  multiply-add. Elementwise ops (norms, activations, softmax, residual adds) are not
  counted; they are a small share of the compute.

Why "exact" needs two guards (`counting_flops`):
- The fused attention kernels differ by torch version and device. On the CPU, torch up to
  at least 2.14 runs SDPA as `_scaled_dot_product_flash_attention_for_cpu`, for which the
  counter has no formula, so attention counted 0. Counting under the *math* SDPA backend
  makes attention two plain `bmm`s (4 B h T^2 d FLOPs forward) on every version and device.
  nn.MultiheadAttention's fused inference fast path is switched off for the same reason.
- Anything left that looks like a matmul, convolution or attention but has no formula
  raises `UncountedOpError` instead of silently counting 0.

So for a Conv/Linear network, exact_flops == 2 * (conv + linear MACs); for a ViT the gap
to thop is the attention term. Both are measured on a batch of one image.
"""
from __future__ import annotations

import contextlib
import copy
import io
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
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


def thop_macs(model: nn.Module, img_size: int) -> int | None:
    """Multiply-accumulates counted by thop for one image (eval mode); None, with a
    warning, where thop is not installed (a GPU image with only torch, torchvision and
    timm): the exact FLOPs below do not need it.

    Profiles a deep copy: thop registers `total_ops`/`total_params` buffers on every
    module and only removes them from modules it has a rule for, so the profiled model's
    state_dict gains keys and a later load_state_dict of a clean checkpoint would fail.
    """
    try:
        with warnings.catch_warnings():  # thop's import warns about distutils
            warnings.simplefilter("ignore", DeprecationWarning)
            import thop
    except ImportError:
        warnings.warn("thop is not installed: MACs (thop) are not counted; exact FLOPs are "
                      "(pip install thop, or the requirements, to count them)", stacklevel=2)
        return None

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


class UncountedOpError(RuntimeError):
    """A matmul, convolution or attention op ran that the FLOP counter has no formula for."""


# Name parts of aten ops that do multiply-adds. An op whose name has one of these parts
# (split at "_") must have a FLOP formula, or counting would silently miss it.
_COMPUTE_PARTS = frozenset({"mm", "bmm", "addmm", "baddbmm", "addbmm", "mv", "addmv", "dot",
                            "vdot", "matmul", "einsum", "tensordot", "linear", "attention"})


def _is_compute_op(name: str) -> bool:
    parts = name.split(".")[-1].split("_")
    return any(p in _COMPUTE_PARTS or p.startswith("conv") for p in parts)


class _RequireFormulas(TorchDispatchMode):
    """Sits below FlopCounterMode on the mode stack, so it sees exactly the ops that really
    run (after the counter's own decompositions) and refuses compute ops it cannot count."""

    def __init__(self, registry):
        super().__init__()
        self.registry = registry

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        packet = func._overloadpacket
        if packet not in self.registry and _is_compute_op(str(packet)):
            raise UncountedOpError(
                f"FLOP counting met {func}, which has no FLOP formula in torch "
                f"{torch.__version__}; counting it as 0 would understate the FLOPs. Register a "
                "formula (torch.utils.flop_counter.register_flop_formula) or avoid the op.")
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def counting_flops():
    """A FlopCounterMode whose counts do not depend on the torch version or device:
    attention runs as counted matmuls (math SDPA backend, no MultiheadAttention fast path),
    and an uncountable compute op raises. Use `.get_total_flops()` on what it yields."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), _mha_fastpath_off(), \
            _RequireFormulas(counter.flop_registry), counter:
        yield counter


def exact_flops(model: nn.Module, img_size: int) -> int:
    """FLOPs (2 per multiply-add) of one eval-mode forward pass of one image."""
    x = _example(model, img_size)
    with _eval_mode(model), torch.no_grad(), counting_flops() as counter:
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
    with counting_flops() as counter:
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
