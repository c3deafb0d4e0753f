"""Kernels started ahead of their rows (`--warm-kernels`).

A grid row executed through papermill first waits for a Jupyter kernel to start and for
its imports (torch, torchvision, timm, thop, matplotlib): seconds per row that are not
training. With warm kernels, while row k runs, the kernel for row k+1 is started and
imports those modules, so row k+1's notebook begins on a ready kernel. Each row still
gets a kernel of its own that nothing else ran in: only the imports (a cache, with no
effect on numbers) were done ahead, silently and without history, so the executed
notebook is the same, execution counts included.

The overlap uses a CPU core while row k trains. On a GPU that core is idle; on a CPU the
row's training uses every core, and the imports would slow the row whose epochs are
being timed. So "auto" warms kernels only when the rows run on an accelerator.
"""
from __future__ import annotations

import time

from ..paths import REPO_ROOT

# What the Problem 1/2 notebooks import; a cache, so one list serves every row.
WARM_IMPORTS = ("helpers.experiment", "helpers.report.figures", "matplotlib.pyplot",
                "thop", "timm")
READY_TIMEOUT_S = 120.0        # imports longer than this: the kernel is dropped, not waited on


def want_warm_kernels(choice: str, device: str) -> bool:
    """The --warm-kernels rule: 'on', 'off', or 'auto' (on when `device` resolves to an
    accelerator)."""
    if choice != "auto":
        return choice == "on"
    from ..device import resolve_device
    try:
        return resolve_device(device).type != "cpu"
    except (RuntimeError, ValueError):     # the rows will fail with the reason themselves
        return False


def warm_import_code(imports) -> str:
    """The code a warm kernel runs: each module imported if it is installed (thop, say, is
    optional: a missing one must not make the whole warm kernel unusable)."""
    names = ", ".join(repr(m) for m in imports)
    return ("import importlib, importlib.util\n"
            f"for _m in ({names},):\n"
            "    if importlib.util.find_spec(_m.split('.')[0]) is not None:\n"
            "        importlib.import_module(_m)\n"
            "del _m")


class WarmKernel:
    """A kernel started now, with WARM_IMPORTS sent to it; `take()` hands it over."""

    def __init__(self, imports=WARM_IMPORTS, cwd: str = REPO_ROOT):
        from jupyter_client import AsyncKernelManager, BlockingKernelClient
        from jupyter_core.utils import run_sync

        from ..notebook_exec import python_kernel
        self.cwd, self.started = cwd, time.perf_counter()
        with python_kernel() as name:            # the kernel runs this interpreter
            self.km = AsyncKernelManager(kernel_name=name)
            run_sync(self.km.start_kernel)(cwd=cwd)
        import zmq
        self.kc = BlockingKernelClient(context=zmq.Context())   # ours: closed in _close_client
        self.kc.load_connection_info(self.km.get_connection_info())
        self.kc.start_channels(hb=False)     # no heartbeat thread: take() has its deadline
        # silent, no history: the notebook's first cell is still execution count 1.
        self.msg_id = self.kc.execute(warm_import_code(imports), silent=True,
                                      store_history=False)

    def take(self, timeout: float = READY_TIMEOUT_S):
        """Wait for the imports; return the kernel manager (the caller shuts it down), or
        None, with this kernel shut down, when they failed or did not finish in time."""
        deadline = time.perf_counter() + timeout
        status = "timeout"
        try:
            while (left := deadline - time.perf_counter()) > 0:
                msg = self.kc.get_shell_msg(timeout=left)
                if msg["parent_header"].get("msg_id") == self.msg_id:
                    status = msg["content"]["status"]
                    break
        except Exception:  # noqa: BLE001  (queue.Empty at the deadline, a dead kernel)
            pass
        self._close_client()
        if status != "ok":
            print(f"warm kernel unusable (imports: {status}); starting a fresh one", flush=True)
            self.shutdown()
            return None
        return self.km

    def shutdown(self) -> None:
        from ..notebook_exec import shutdown_kernel
        self._close_client()
        shutdown_kernel(self.km)

    def _close_client(self) -> None:
        if self.kc.channels_running:
            self.kc.stop_channels()
        if not self.kc.context.closed:
            self.kc.context.destroy(linger=0)


class KernelPool:
    """At most one kernel warming ahead of the row that runs now. The runner sets `more`
    before each row: whether another row follows, for which a kernel is worth warming."""

    def __init__(self, imports=WARM_IMPORTS):
        self.imports, self.pending, self.more = imports, None, False

    def take(self):
        """This row's kernel manager: the one warmed for it, or None (none was warmed, or
        it was unusable: papermill starts one). Then the next row's kernel starts warming."""
        kernel, self.pending = self.pending, None
        km = kernel.take() if kernel else None
        if self.more:
            self.pending = WarmKernel(self.imports)
        return km

    def close(self) -> None:
        """Shut down a kernel warmed for a row that will not run (the grid ended or was
        interrupted)."""
        if self.pending is not None:
            self.pending.shutdown()
            self.pending = None
