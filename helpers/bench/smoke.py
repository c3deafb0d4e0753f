"""The GPU check's smoke part: what only a GPU can settle, each check written to
<out_dir>/smoke.json as soon as it has run, most important first.

  tf32            after setup_backends, every legacy and new TF32 reader answers and
                  agrees, and a compiled fp32 matmul runs and matches eager;
  fused_bf16      Swin-T fused window attention against timm's in bf16: logits and
                  gradients, and the attention kernels each path runs (train and eval);
  window_limit    fused window attention at 1,024 images' worth of 224-px stage-1
                  windows (65,536) in one call, against speed.fused_window_batch_cap;
  t4_like_fp16    a Swin-S run in fp16 with the GPU capped at 15 GB (a T4's usable
                  memory), through its evaluation: the memory rule fits both batches;
  cpu_checkpoint  a checkpoint written on the CPU resumed on the GPU (fused AdamW, bf16);
  static_blocks   Swin's blocks, traced by dynamo for a training and an evaluation batch,
                  have no symbolic sizes.

A check that raises is recorded as failed and the next one runs. `dry_run` runs each at
tiny sizes on the CPU with torch.compile's "eager" backend (CI proves the code paths);
its figures say nothing about a GPU.
"""
from __future__ import annotations

import os
import tempfile
import time

import torch
import torch.nn.functional as F

from .. import speed
from ..device import Precision, device_name, resolve_precision, set_tf32, setup_backends, tf32
from ..results import now_iso
from .benchfile import write_json
from .timing import attempt, measured, release_memory, uncompile

T4_BYTES = 15 * 1024 ** 3            # what a 16 GB T4 leaves a process
KERNEL_WORDS = ("attention", "fmha", "flash", "sdpa", "cudnn", "softmax", "efficient")


def symbolic_inputs(gm) -> list[str]:
    """The graph inputs dynamo traced with symbolic sizes (a SymInt, or a tensor with one)."""
    out = []
    for node in gm.graph.nodes:
        if node.op != "placeholder":
            continue
        v = node.meta.get("example_value", node.meta.get("val"))
        if isinstance(v, torch.SymInt) or any(isinstance(d, torch.SymInt)
                                              for d in getattr(v, "shape", ())):
            out.append(node.name)
    return out


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


def _swin(variant: str, img_size: int):
    from ..models import build_model
    torch.manual_seed(0)
    return build_model(variant, 100, img_size=img_size, mode="scratch")


def _attention_kernels(fn, device) -> list[str]:
    """Names of the attention-like kernels (CUDA) or ops (CPU) that fn() runs."""
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        fn()
    names = {e.key for e in prof.key_averages()}
    return sorted(n[:120] for n in names if any(w in n.lower() for w in KERNEL_WORDS))


def check_fused_bf16(device, dry_run: bool) -> dict:
    img, batch = (32, 2) if dry_run else (224, 16)
    model = _swin("swin_tiny", img).to(device)
    x = torch.randn(batch, 3, img, img, device=device)
    y = torch.randint(0, 100, (batch,), device=device)
    bf16 = resolve_precision("bf16", device)

    def step(fused: bool, precision: Precision):
        model.set_fused_attention(fused)
        model.zero_grad(set_to_none=True)
        torch.manual_seed(1)                       # the same drop-path draws
        with precision.autocast():
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        return logits.detach().float(), {n: p.grad.float().clone()
                                         for n, p in model.named_parameters()}

    model.train()
    ref, _ = step(False, resolve_precision("fp32", device))
    plain, g_plain = step(False, bf16)
    fused, g_fused = step(True, bf16)
    noise = (plain - ref).abs().max().item()
    diff = (fused - plain).abs().max().item()
    cos = min(F.cosine_similarity(g_fused[n].flatten(), g_plain[n].flatten(), dim=0).item()
              for n in g_plain if g_plain[n].abs().max() > 0)   # 0 x 0 has no angle
    kernels = dict(train=_attention_kernels(lambda: step(True, bf16), device))
    model.eval()
    with torch.no_grad(), bf16.autocast():
        kernels["eval"] = _attention_kernels(lambda: model(x), device)
    model.set_fused_attention(False)
    return dict(ok=diff <= 4 * noise + 1e-3 and cos > 0.99, logits_max_diff=diff,
                bf16_noise=noise, min_grad_cosine=cos, kernels=kernels)


def check_window_limit(device, dry_run: bool) -> dict:
    """One fused window-attention call of the first stage at 65,536 windows (1,024
    images at 224 px), eval, bf16: does this torch take it, as the cap rule says?"""
    from timm.models.swin_transformer import WindowAttention
    model = _swin("swin_tiny", 64 if dry_run else 224).to(device).eval()
    attn = next(m for m in model.modules() if isinstance(m, WindowAttention))
    attn.fused_attn = True
    windows = 64 if dry_run else 65_536
    tokens, dim = 49, attn.qkv.in_features
    cap = speed.fused_window_batch_cap(224, 4, speed.torch_version())
    x = torch.randn(windows, tokens, dim, device=device)
    try:
        with torch.no_grad(), resolve_precision("bf16", device).autocast():
            attn(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        ran, error = True, None
    except RuntimeError as err:
        ran, error = False, str(err)[:300]
    predicted = cap is None or windows <= cap * 64
    return dict(ok=ran == predicted or dry_run, windows=windows, ran=ran, error=error,
                rule_cap_images_224px=cap, rule_predicts_it_runs=predicted,
                torch=torch.__version__)


def check_t4_like(device, dry_run: bool, folder: str) -> dict:
    from ..config import ExperimentConfig
    from ..experiment import Experiment
    from ..memory import CudaMeter
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
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, T4_BYTES / total), device)
        exp.meter = CudaMeter(device, limit_bytes=T4_BYTES)
        torch.cuda.reset_peak_memory_stats(device)
    try:
        r = exp.run(progress=False)
    finally:
        if device.type == "cuda":
            torch.cuda.set_per_process_memory_fraction(1.0, device)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    t = r["training"]
    return dict(ok=r["status"] == "complete" and r["history"][-1]["test_acc"] is not None,
                precision=r["provenance"]["precision"], batch_size=t["batch_size"],
                batch_rule=t["batch_rule"], eval_batch_size=t["eval_batch_size"],
                eval_batch_rule=t["eval_batch_rule"], peak_allocated_gb=peak and peak / 2**30)


def check_cpu_checkpoint(device, dry_run: bool, folder: str) -> dict:
    from ..config import ExperimentConfig
    from ..data import make_synthetic
    from ..models import build_model
    from ..train import fit
    cfg = ExperimentConfig(model="vit", dim=32, depth=1, heads=2, patch_size=8,
                           dataset="synthetic", epochs=2, batch_size=32, device="cpu",
                           results_dir=folder, run_name="cpu-then-gpu").resolved()
    data = make_synthetic(256, 64, num_classes=10, seed=0)

    class Stop(Exception):
        pass

    def cut(history):
        raise Stop

    cpu = torch.device("cpu")
    torch.manual_seed(0)
    try:
        fit(build_model("vit", 10, **cfg.model_kwargs()), data, cfg, device=cpu,
            precision=resolve_precision("fp32", cpu), progress=False,
            checkpoint_path=cfg.checkpoint_path, on_epoch=cut)
    except Stop:
        pass
    model = build_model("vit", 10, **cfg.model_kwargs())
    history = fit(model, data, cfg, device=device,
                  precision=resolve_precision("bf16" if device.type == "cuda" else "fp32",
                                              device),
                  progress=False, checkpoint_path=cfg.checkpoint_path)
    finite = all(torch.isfinite(torch.tensor(h["train_loss"])) for h in history)
    return dict(ok=[h["segment"] for h in history] == [1, 2] and finite,
                devices=[h["device"] for h in history],
                precisions=[h["precision"] for h in history],
                train_loss=[h["train_loss"] for h in history])


def check_static_blocks(device, dry_run: bool) -> dict:
    """Whether sizes are symbolic is settled by dynamo's tracing, before any code is
    generated, so the traced graphs run as they are (the "eager" backend): seconds, where
    inductor would take minutes for Swin's backward."""
    from torch._dynamo.backends.registry import lookup_backend
    graphs, symbolic = [], []
    inner = lookup_backend("eager")

    def recording(gm, example_inputs):
        graphs.append(gm)
        symbolic.extend(symbolic_inputs(gm))
        return inner(gm, example_inputs)

    img, batch = (32, 2) if dry_run else (224, 32)
    model = _swin("swin_tiny", img).to(device)
    precision = resolve_precision("fp32" if dry_run else "bf16", device)
    speed.reset_compiler()
    step = speed.compiled_forward(model, True, "blocks", backend=recording)
    t0 = time.perf_counter()
    for b, train in ((batch, True), (batch + 1, False)):       # training, then evaluation
        model.train(train)
        x = torch.randn(b, 3, img, img, device=device)
        with torch.set_grad_enabled(train), precision.autocast():
            out = step(x)
        if train:
            out.float().sum().backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    uncompile(model)                                               # undo the in-place compile
    speed.reset_compiler()
    return dict(ok=bool(graphs) and not symbolic, graphs=len(graphs),
                symbolic_inputs=len(symbolic), compile_and_run_s=seconds)


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
                  ("fused_bf16", lambda: check_fused_bf16(device, dry_run)),
                  ("window_limit", lambda: check_window_limit(device, dry_run)),
                  ("t4_like_fp16", lambda: check_t4_like(device, dry_run,
                                                         os.path.join(tmp, "t4"))),
                  ("cpu_checkpoint", lambda: check_cpu_checkpoint(device, dry_run,
                                                                  os.path.join(tmp, "ckpt"))),
                  ("static_blocks", lambda: check_static_blocks(device, dry_run))]
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
