"""Device and numeric precision, decided in one place: autocast dtype, GradScaler, TF32,
synchronising before a clock read, RNG state. Nothing else branches on the hardware.
"""
from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

import numpy as np
import torch


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then CPU. An explicit request must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={name!r} requested but CUDA is not available here; "
                           "use device='auto' or 'cpu'")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RuntimeError(f"device={name!r} requested but MPS is not available here")
    return dev


def device_name(device: torch.device) -> str:
    """A human-readable name, e.g. 'NVIDIA H200' or 'cpu (x86_64, 2 threads)'."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    import platform
    n = torch.get_num_threads()
    return f"cpu ({platform.machine()}, {n} thread{'s' if n != 1 else ''})"


def synchronize(device: torch.device) -> None:
    """Wait for queued device work, so a host clock read afterwards is honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@dataclass(frozen=True)
class Precision:
    """How arithmetic runs: 'bf16' / 'fp16' autocast, or plain 'fp32'."""
    name: str
    device_type: str

    @property
    def dtype(self) -> torch.dtype:
        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[self.name]

    def autocast(self):
        """Autocast context; a no-op for fp32. Norm layers stay fp32 under autocast."""
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    @property
    def scaled(self) -> bool:
        """fp16 needs loss scaling; bf16 has fp32's range and needs none."""
        return self.name == "fp16"

    def make_scaler(self) -> "torch.amp.GradScaler":
        """A GradScaler, enabled only for fp16."""
        return torch.amp.GradScaler(self.device_type, enabled=self.scaled)


NATIVE_BF16_CAPABILITY = (8, 0)   # Ampere and newer; a T4 (7.5) or V100 (7.0) only emulates it


def auto_precision(device_type: str, capability: tuple | None = None) -> str:
    """The precision 'auto' means on a device: bf16 on a CUDA GPU of compute `capability`
    >= 8.0, fp16 with a GradScaler on older GPUs (T4, V100), fp16 on MPS, fp32 on CPU."""
    if device_type == "cuda":
        return "bf16" if tuple(capability) >= NATIVE_BF16_CAPABILITY else "fp16"
    return "fp16" if device_type == "mps" else "fp32"


def resolve_precision(name: str, device: torch.device) -> Precision:
    """The run's Precision; 'auto' as auto_precision() says for this device."""
    if name == "auto":
        capability = (torch.cuda.get_device_capability(device) if device.type == "cuda"
                      else None)
        name = auto_precision(device.type, capability)
    if name == "fp16" and device.type == "cpu":
        raise ValueError("precision='fp16' is not supported on CPU; use 'fp32' or 'bf16'")
    return Precision(name, device.type)


def setup_backends(device: torch.device) -> None:
    """Fast, still-deterministic-enough kernels on CUDA; nothing changes on CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        set_tf32(matmul=True, conv=True)


def tf32() -> tuple[bool, bool]:
    """Whether fp32 (matmuls, convolutions) on CUDA may run in TF32."""
    return (torch.get_float32_matmul_precision() != "highest",
            bool(torch.backends.cudnn.allow_tf32))


def set_tf32(matmul: bool, conv: bool) -> None:
    """TF32 on or off for fp32 matmuls and convolutions, through the two settings every
    supported torch has and keeps consistent with its per-backend `fp32_precision` flags.
    Setting only the newer flags (torch >= 2.9) leaves the legacy ones unreadable: after
    that, torch.backends.cuda.matmul.allow_tf32 and torch.get_float32_matmul_precision()
    raise "mix of the legacy and new APIs", and inductor, timm and user code read them."""
    torch.set_float32_matmul_precision("high" if matmul else "highest")
    torch.backends.cudnn.allow_tf32 = conv


@contextlib.contextmanager
def eval_kernels(device: torch.device):
    """cuDNN autotuning off while evaluating on CUDA: the evaluation batch and its partial
    last batch are shapes training never ran, and autotuning them made the first evaluation
    many times slower than the second (p1-resnet18's eval_s in
    benchmarks/reference/h100-2026-11-26/grid_rows.json). Training is unaffected."""
    if device.type != "cuda" or not torch.backends.cudnn.benchmark:
        yield
        return
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = True


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every RNG the training loop may touch, for exact resume."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    # Stored as a tensor and plain numbers so checkpoints load with weights_only=True.
    state = {"python": random.getstate(),
             "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        # A checkpoint from a machine with more GPUs than this one: restore the ones here.
        for i, gpu_state in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(gpu_state, i)
