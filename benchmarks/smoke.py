"""The GPU check's smoke part: what only a GPU can settle, each check written to
<out_dir>/smoke.json as soon as it has run, most important first.

  tf32            after setup_backends, every legacy and new TF32 reader answers and
                  agrees, and a compiled fp32 matmul runs and matches eager;
  t4_like_fp16    a Swin-S run in fp16 with the GPU capped at 15 GB (a T4's usable
                  memory), through its evaluation: the memory rule fits both batches;
  cpu_checkpoint  a checkpoint written on the CPU resumed on the GPU (fused AdamW, bf16);
  cpu_checkpoint_channels_last
                  the same for ResNet-18 with AdamW, whose conv weights are channels_last
                  on the GPU only: fused AdamW must get moments in their layout.

A check that raises is recorded as failed and the next one runs. `dry_run` runs each at
tiny sizes on the CPU with torch.compile's "eager" backend (CI proves the code paths);
its figures say nothing about a GPU.
"""
from __future__ import annotations

import os
import tempfile
import time

import torch

from helpers import speed
from helpers.device import device_name, resolve_precision, set_tf32, setup_backends, tf32
from helpers.results import now_iso
from .benchfile import write_json
from .timing import attempt, measured, release_memory

T4_BYTES = 15 * 1024 ** 3            # what a 16 GB T4 leaves a process


# ----------------------------------------------------------------------------- the checks
def check_tf32(device, dry_run: bool) -> dict:
    """On the CPU (dry run) the CUDA flags are set and read all the same, then restored."""
    before = tf32(), torch.backends.cudnn.benchmark
    setup_backends(torch.device("cuda") if dry_run else device)
    readers = dict(allow_tf32=lambda: torch.backends.cuda.matmul.allow_tf32,
                   matmul_precision=torch.get_float32_matmul_precision,
                   cudnn_allow_tf32=lambda: torch.backends.cudnn.allow_tf32)
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        readers.update(matmul_fp32=lambda: torch.backends.cuda.matmul.fp32_precision,
                       conv_fp32=lambda: torch.backends.cudnn.conv.fp32_precision)
    values = {k: f() for k, f in readers.items()}         # raises if the flags are mixed
    a = torch.randn(8, 256, 256, device=device)
    b = torch.randn(8, 256, 256, device=device)
    mm = torch.compile(torch.bmm, backend="eager" if dry_run else speed.COMPILE_BACKEND,
                       dynamic=False)
    err = ((mm(a, b) - torch.bmm(a, b)).abs().max() / torch.bmm(a, b).abs().max()).item()
    ok = values["allow_tf32"] is True and values["cudnn_allow_tf32"] is True
    if dry_run:                                # this CPU process must not keep them
        set_tf32(*before[0])
        torch.backends.cudnn.benchmark = before[1]
    return dict(ok=ok and err < 1e-2, readers=values, compiled_bmm_rel_err=err)


def check_t4_like(device, dry_run: bool, folder: str) -> dict:
    from helpers.config import ExperimentConfig
    from helpers.experiment import Experiment
    from helpers.memory import CudaMeter
    cfg = ExperimentConfig(
        model="swin_tiny" if dry_run else "swin_small", mode="scratch", dataset="synthetic",
        # 2,560 images keep Swin's default batch of 128 (20 steps an epoch), which the 15 GB
        # cap must then lower; 1,100 test images give a full evaluation batch and a partial one.
        train_subset=16 if dry_run else 2560, test_subset=20 if dry_run else 1100, epochs=1,
        img_size=32 if dry_run else None, precision="fp32" if dry_run else "fp16",
        device=str(device), results_dir=folder, run_name="t4-like", train_eval_images=0,
        batch_size=8 if dry_run else None, eval_batch_size=16 if dry_run else 1024)
    exp = Experiment(cfg)
    if device.type == "cuda":
        device = cap_memory(device, T4_BYTES)
        exp.meter = CudaMeter(device, limit_bytes=T4_BYTES)
        torch.cuda.reset_peak_memory_stats(device)
    try:
        r = exp.run(progress=False)
    finally:
        if device.type == "cuda":
            cap_memory(device, None)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    t = r["training"]
    return dict(ok=r["status"] == "complete" and r["history"][-1]["test_acc"] is not None,
                precision=r["provenance"]["precision"], batch_size=t["batch_size"],
                batch_rule=t["batch_rule"], eval_batch_size=t["eval_batch_size"],
                eval_batch_rule=t["eval_batch_rule"], peak_allocated_gb=peak and peak / 2**30)


def cap_memory(device: torch.device, limit_bytes: int | None) -> torch.device:
    """Cap this process's share of the CUDA `device` at limit_bytes (None: lift the cap).
    Returns the device with its index: set_per_process_memory_fraction refuses "cuda"
    without one, which is what resolve_device("auto") gives."""
    if device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    total = torch.cuda.get_device_properties(device).total_memory
    fraction = 1.0 if limit_bytes is None else min(1.0, limit_bytes / total)
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    return device


def check_cpu_checkpoint(device, dry_run: bool, folder: str, **model) -> dict:
    """Train one epoch of `model` (config fields) on the CPU, then resume it on `device`."""
    from helpers.config import ExperimentConfig
    from helpers.data import make_synthetic
    from helpers.models import build_model
    from helpers.train import fit
    cfg = ExperimentConfig(**model, dataset="synthetic", epochs=2, batch_size=32, device="cpu",
                           results_dir=folder, run_name="cpu-then-gpu").resolved()
    data = make_synthetic(64 if dry_run else 256, 64, num_classes=10, seed=0)

    class Stop(Exception):
        pass

    def cut(history):
        raise Stop

    cpu = torch.device("cpu")
    torch.manual_seed(0)
    try:
        fit(build_model(cfg.model, 10, **cfg.model_kwargs()), data, cfg, device=cpu,
            precision=resolve_precision("fp32", cpu), progress=False,
            checkpoint_path=cfg.checkpoint_path, on_epoch=cut)
    except Stop:
        pass
    history = fit(build_model(cfg.model, 10, **cfg.model_kwargs()), data, cfg, device=device,
                  precision=resolve_precision("bf16" if device.type == "cuda" else "fp32",
                                              device),
                  progress=False, checkpoint_path=cfg.checkpoint_path)
    finite = all(torch.isfinite(torch.tensor(h["train_loss"])) for h in history)
    return dict(ok=[h["segment"] for h in history] == [1, 2] and finite,
                devices=[h["device"] for h in history],
                precisions=[h["precision"] for h in history],
                train_loss=[h["train_loss"] for h in history])


# ----------------------------------------------------------------------------- the part
def smoke_part(device: torch.device, out_path: str, *, dry_run: bool, deadline: float) -> str:
    """Run every check in order until `deadline` (time.monotonic()), writing `out_path`
    (smoke.json) after each; returns a one-line note."""
    report = dict(kind="gpu-check smoke", device=device_name(device), torch=torch.__version__,
                  dry_run=dry_run, started=now_iso(), checks={})

    def save():
        write_json(report, out_path, allow_nan=True)

    with tempfile.TemporaryDirectory(prefix="smoke-", dir=os.path.dirname(out_path)) as tmp:
        checks = [("tf32", lambda: check_tf32(device, dry_run)),
                  ("t4_like_fp16", lambda: check_t4_like(device, dry_run,
                                                         os.path.join(tmp, "t4"))),
                  ("cpu_checkpoint", lambda: check_cpu_checkpoint(
                      device, dry_run, os.path.join(tmp, "ckpt"), model="vit", dim=32,
                      depth=1, heads=2, patch_size=8)),
                  ("cpu_checkpoint_channels_last", lambda: check_cpu_checkpoint(
                      device, dry_run, os.path.join(tmp, "ckpt-cl"), model="resnet18",
                      optimizer="adamw"))]
        for name, check in checks:
            t0 = time.perf_counter()
            if time.monotonic() >= deadline:
                report["checks"][name] = dict(status="not run", note="the part's time was spent")
                save()
                continue
            out = attempt(check, deadline)       # a check that raises: the next one runs
            if measured(out):
                status = "ok" if out.pop("ok") else "differs"
            else:
                out, status = dict(error=out["reason"]), "failed"
            report["checks"][name] = dict(status=status, seconds=time.perf_counter() - t0, **out)
            save()
            release_memory(device)
    report["finished"] = now_iso()
    save()
    counts = {}
    for c in report["checks"].values():
        counts[c["status"]] = counts.get(c["status"], 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
