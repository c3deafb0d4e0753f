"""Model size and compute: parameters, thop MACs, and exact FLOPs.

Two compute numbers, because they disagree and the disagreement is instructive:
- `thop_macs` (the number most papers quote) hooks modules, so it counts Conv/Linear
  multiply-adds but misses what no module does: the attention matmuls inside
  F.scaled_dot_product_attention (2 T^2 D MACs per block), nn.MultiheadAttention (no rule
  at all), and ops on bare parameters (class token, position embedding). Close to exact for
  CNNs; for transformers it undercounts, more so with more tokens.
- `exact_flops` counts aten ops (torch.utils.flop_counter), 2 FLOPs per multiply-add, so
  every matmul and convolution is seen; elementwise ops (norms, activations, softmax) are
  not counted. `counting_flops` makes the count the same on every torch and device: SDPA
  runs on its math backend (two counted bmm's; the fused CPU kernel has no formula and
  would count 0), MultiheadAttention's fused fast path is off, and any other compute op
  without a formula raises UncountedOpError instead of counting 0.

So for a Conv/Linear network exact_flops == 2 * MACs; for a ViT the gap to thop is the
attention term. Both are measured on a batch of one image.
"""
from __future__ import annotations

import contextlib
import copy
import io
import warnings

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts; shared parameters are counted once."""
    params = list(model.parameters())
    return (sum(p.numel() for p in params),
            sum(p.numel() for p in params if p.requires_grad))


def example_batch(model: nn.Module, img_size: int, batch: int = 1) -> torch.Tensor:
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
    warning, without thop (exact_flops does not need it). Profiles a deep copy: thop
    leaves `total_ops` buffers on modules it has no rule for, which would change the
    model's state_dict."""
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
        macs, _ = thop.profile(clone, inputs=(example_batch(clone, img_size),), verbose=False)
    return int(macs)


@contextlib.contextmanager
def _mha_fastpath_off():
    """nn.MultiheadAttention's inference fast path is one fused aten op that
    FlopCounterMode has no formula for (it would count 0); the regular path is counted."""
    mha = torch.backends.mha                         # in every supported torch (>= 2.4)
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


def is_compute_op(name: str) -> bool:
    """Whether an aten op (by name) multiplies or convolves: one that needs a FLOP formula."""
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
        if packet not in self.registry and is_compute_op(str(packet)):
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
    x = example_batch(model, img_size)
    with _eval_mode(model), torch.no_grad(), counting_flops() as counter:
        model(x)
    return int(counter.get_total_flops())


def measure(model: nn.Module, img_size: int) -> dict:
    """Size and forward compute of one image, as reported in the result files."""
    params, trainable = count_params(model)
    return dict(params=params, trainable_params=trainable,
                macs_thop=thop_macs(model, img_size), flops=exact_flops(model, img_size))
