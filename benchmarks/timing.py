"""The benchmark's timing: the engine's own train_epoch and evaluate, timed honestly.

- the device is synchronised before every clock read (train_epoch does this itself);
- warm-up steps run first, in their own train_epoch call, and are reported separately
  (with torch.compile on, they include the compilation); the steady-state window holds
  only the timed steps, which the scheduler's step counter confirms;
- evaluation has its own warm-up and clock;
- a compiled variant meets a cold compile cache (cold_compile_cache);
- other processes' CPU use during a measurement is recorded, so a slowed run shows.
Also here: a measurement's record (measured, failed) and attempt, which runs one
measurement under a deadline (time_limit) so that its failure costs only its own figures;
every part of the GPU check guards its steps with it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import itertools
import os
import signal
import statistics
import tempfile
import time
from unittest import mock

import torch

from helpers import speed
from helpers.config import BUILTIN_TRAIN_SIZES
from helpers.device import synchronize
from helpers.train import TrainState, evaluate, train_epoch

EPOCH_IMAGES = BUILTIN_TRAIN_SIZES["cifar100"]   # one CIFAR-100 training epoch


def cpu_snapshot() -> tuple[float, float, float] | None:
    """(wall s, CPU-busy seconds of the whole machine, CPU seconds of this process and its
    finished children), for other_cpu_share. None where /proc/stat is missing."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
    t = os.times()
    return (time.perf_counter(), (user + nice + system + irq + softirq + steal)
            / os.sysconf("SC_CLK_TCK"), t.user + t.system + t.children_user + t.children_system)


def other_cpu_share(before, after) -> float | None:
    """Share of the machine's CPU capacity that OTHER processes used between two
    snapshots: near 0 on a quiet machine; well above 0 means the timings are contaminated."""
    if before is None or after is None:
        return None
    wall = after[0] - before[0]
    others = (after[1] - before[1]) - (after[2] - before[2])
    return max(0.0, others / (wall * (os.cpu_count() or 1)))


class FirstBatches:
    """The first n batches of a batch source, continuing into further epochs if it has
    fewer: a fixed-length warm-up pass that train_epoch/evaluate take like a DeviceLoader."""

    def __init__(self, batches, n: int):
        self.batches, self.n = batches, n
        self.num_images = n * batches.batch_size

    def __len__(self) -> int:
        return self.n

    def epoch(self, epoch: int):
        # Epoch numbers 1000+ are never timed, so warm-up never replays a timed pass.
        passes = (self.batches.epoch(1000 * (epoch + 1) + k) for k in itertools.count())
        return itertools.islice(itertools.chain.from_iterable(passes), self.n)


@contextlib.contextmanager
def time_limit(deadline: float | None):
    """TimeoutError inside the block once time.monotonic() reaches `deadline` (SIGALRM, so
    the main thread of a POSIX process only; elsewhere no limit)."""
    if deadline is None or not hasattr(signal, "setitimer"):
        yield
        return

    def stop(signum, frame):
        raise TimeoutError("ran past its time budget")
    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, max(0.01, deadline - time.monotonic()))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def measured(timing) -> bool:
    """A record that holds figures: not missing, not a failed or unmeasured one."""
    return bool(timing) and timing.get("status") != "failed"


def failed(reason: str) -> dict:
    """The record of a measurement (a variant, the typical loop, a grid row...) that has no
    figures."""
    return dict(status="failed", reason=reason)


OUT_OF_TIME = "not measured: the time budget was spent"


def release_memory(device) -> None:
    """Free what a measurement left: Python garbage, and CUDA's cached blocks."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def attempt(measure, deadline: float | None) -> dict:
    """measure()'s record, or a failed one: one measurement's error (a compile that fails,
    CUDA out of memory) or time-out must not lose the figures measured before it.
    measure() runs under the soft time limit; after the deadline nothing more is started.
    Not nestable: time_limit's timer is the process's one SIGALRM."""
    if deadline is not None and time.monotonic() >= deadline:
        return failed(OUT_OF_TIME)
    try:
        with time_limit(deadline):
            return measure()
    except Exception as err:  # noqa: BLE001  (recorded; the next measurement runs)
        record = failed(f"{type(err).__name__}: {err}"[:500])
    # What the failed measurement held, e.g. out of memory.
    release_memory(torch.device("cuda" if torch.cuda.is_initialized() else "cpu"))
    return record


# ----------------------------------------------------------------------------- our path
def train_state(model, cfg, device, precision, *, total_steps: int, warmup_steps: int,
                compile: bool, backend: str) -> TrainState:
    """TrainState.create as fit() calls it, with torch.compile's backend chosen by the
    caller (the GPU check's dry run uses "eager": dynamo traces, nothing is generated)."""
    state = TrainState.create(model, cfg, device, precision, total_steps=total_steps,
                              warmup_steps=warmup_steps, compile=False)
    return dataclasses.replace(state, forward=speed.compiled_forward(model, compile,
                                                                     backend=backend))


def forget_compiled() -> None:
    """Drop everything torch.compile holds in memory (its on-disk cache stays)."""
    torch.compiler.reset()
    import torch._inductor.utils as inductor_utils     # private; absent in some versions
    getattr(inductor_utils, "clear_caches", lambda: None)()   # in-memory kernel caches


@contextlib.contextmanager
def cold_compile_cache():
    """torch.compile as a fresh Colab session meets it: nothing compiled in this process
    and an empty on-disk inductor/triton cache (a temporary one, deleted afterwards), so
    the compile warm-up is the real compilation, not a cache hit from an earlier run.
    (One-off costs of the first compile in a process, such as importing inductor, fall on
    the first compiled run only.)"""
    forget_compiled()
    with tempfile.TemporaryDirectory(prefix="bench-inductor-") as tmp, \
            mock.patch.dict(os.environ, {"TORCHINDUCTOR_CACHE_DIR": tmp,
                                         "TRITON_CACHE_DIR": os.path.join(tmp, "triton")}):
        try:
            yield
        finally:
            forget_compiled()


def time_train(model, cfg, batches, test_batches, *, device, precision, compile: bool,
               warmup_steps: int, repeats: int, peak: float | None, flops_per_image: int | None,
               compile_backend: str = speed.COMPILE_BACKEND):
    """Warm up, then time `repeats` passes over `batches` with the engine's train_epoch;
    then evaluation over `test_batches` with the engine's evaluate, after its own warm-up.

    Returns (result dict, windows) where windows are the host-clock (start, end) of each
    timed pass, for tests that check what ran inside them.
    """
    total = warmup_steps + repeats * len(batches)
    state = train_state(model, cfg, device, precision, total_steps=total,
                        warmup_steps=max(1, total // 10), compile=compile,
                        backend=compile_backend)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    warm = FirstBatches(batches, warmup_steps)
    _, _, warmup_s, _ = train_epoch(state, warm, 0, cfg, device)
    warmup_done = state.scheduler.last_epoch                                 # steps taken
    seconds, images, windows = [], 0, []
    for r in range(repeats):
        start = time.perf_counter()
        _, _, s, seen = train_epoch(state, batches, r + 1, cfg, device)
        windows.append((start, time.perf_counter()))
        seconds.append(s)
        images += seen
    timed_steps = state.scheduler.last_epoch - warmup_done
    per_window = [images / repeats / s for s in seconds]
    ips = statistics.median(per_window)
    mem = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    eval_ips, eval_warm = time_eval(state, test_batches, device)
    achieved = flops_per_image * ips / 1e12 if flops_per_image else None
    result = dict(compile=compile, warmup_steps=warmup_done, warmup_s=warmup_s,
                  steps=len(batches), repeats=repeats, timed_steps=timed_steps,
                  timed_images=images, train_s=seconds, images_per_s_windows=per_window,
                  images_per_s=ips, step_ms=1000 * cfg.batch_size / ips,
                  epoch_50k_s=EPOCH_IMAGES / ips, eval_images_per_s=eval_ips,
                  eval_warmup_s=eval_warm, peak_memory_mib=mem,
                  achieved_tflops=achieved,
                  mfu=achieved / peak if achieved is not None and peak else None)
    return result, windows


def time_eval(state, test, device) -> tuple[float, float]:
    """(images/s, warm-up seconds) of the engine's evaluate(), after a one-batch warm-up."""
    synchronize(device)
    t0 = time.perf_counter()
    evaluate(state, FirstBatches(test, 1), device)
    synchronize(device)
    t1 = time.perf_counter()
    evaluate(state, test, device)
    synchronize(device)
    return test.num_images / (time.perf_counter() - t1), t1 - t0
