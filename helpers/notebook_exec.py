"""Executing notebooks: papermill on a kernel that runs this interpreter.

The runner (each grid row), the PDF export (the summary notebook) and the tests execute
notebooks through here. It sits beside helpers/gridrun.py, below the runner and the report,
so both can use it; the core never imports it, and it imports papermill and Jupyter only
inside the functions that need them.
"""
from __future__ import annotations

import ast
import contextlib
import json
import os
import sys
import tempfile
from unittest import mock

from .config import ConfigError, ExperimentConfig
from .notebooks import problem1_config, problem2_config, problem3_config
from .paths import REPO_ROOT


def parameter_defaults(path: str) -> dict:
    """The names a notebook's `parameters` cell assigns, with the values it gives them, read
    from the file (no papermill or Jupyter needed: the runner's --no-notebooks mode plans
    with this). Papermill's injected values replace some; the notebook uses the rest."""
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    defaults = {}
    for node in ast.parse("".join(cells[0]["source"])).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for t in targets:
            if isinstance(t, ast.Name) and getattr(node, "value", None) is not None:
                defaults[t.id] = ast.literal_eval(node.value)
    return defaults


def config_from_parameters(problem: int, parameters: dict, defaults: dict) -> ExperimentConfig:
    """What problem<N>.ipynb builds from these parameters (injected by papermill) and its
    parameters cell's `defaults` for the rest: the runner compares a finished result with
    the run it is about to start by this config, and trains it in-process with it."""
    params = {**defaults, **parameters}
    extra = params.pop("overrides", None) or {}
    clash = sorted(set(extra) & set(params))
    if clash:
        raise ConfigError(f"overrides repeat notebook parameter(s) {clash}; set them directly")
    params.update(extra)
    build = {1: problem1_config, 2: problem2_config, 3: problem3_config}[problem]
    return build(**params)


def execute_notebook(input_path: str, output_path: str, parameters: dict | None = None,
                     cwd: str = REPO_ROOT) -> None:
    """Run a notebook with papermill, writing the executed copy to `output_path`.

    Parameter names are checked against the notebook's `parameters` cell first: papermill
    itself only warns about an unknown name and runs on with the default, which would
    silently train something else. The kernel is this interpreter (run_notebook).
    A failing cell raises papermill's PapermillExecutionError, whose `.ename` is the class
    of the exception raised in the notebook; the executed copy, traceback included, is
    still written.
    """
    parameters = dict(parameters or {})
    declared = parameter_defaults(input_path)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown} for {os.path.basename(input_path)}; "
                          f"valid parameters: {sorted(declared)}")
    run_notebook(input_path, output_path, parameters, cwd=cwd)


# ----------------------------------------------------------------------------- kernel
def runs_this_python(argv0: str) -> bool:
    """Whether a kernelspec's argv[0] starts this interpreter."""
    # jupyter_client itself swaps a bare "python"/"python3"/"python3.X" for sys.executable.
    major, minor = sys.version_info[:2]
    if argv0 in ("python", f"python{major}", f"python{major}.{minor}"):
        return True
    # Compare without resolving symlinks: a venv's python is a symlink to the base
    # interpreter, and resolving it would make every venv look like the system Python.
    return os.path.abspath(argv0) == os.path.abspath(sys.executable)


@contextlib.contextmanager
def python_kernel(name: str = "python3"):
    """Within this block, the kernel `name` runs sys.executable. Yields the name.

    papermill starts the kernel named in the notebook (or passed as kernel_name). A
    kernelspec of that name installed for the user or system-wide
    (~/.local/share/jupyter/kernels, /usr/local/share/jupyter/kernels) may point at another
    Python without this repo's packages. When the spec that would be used does not run
    sys.executable, a temporary one that does is put first on JUPYTER_PATH.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        argv = KernelSpecManager().get_kernel_spec(name).argv
    except NoSuchKernel:
        argv = []
    if argv and runs_this_python(argv[0]):
        yield name
        return
    with tempfile.TemporaryDirectory(prefix="kernelspec-") as tmp:
        spec_dir = os.path.join(tmp, "kernels", name)
        os.makedirs(spec_dir)
        with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
            json.dump({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f",
                                "{connection_file}"],
                       "display_name": f"Python ({sys.executable})", "language": "python"}, f)
        old = os.environ.get("JUPYTER_PATH")
        with mock.patch.dict(os.environ,
                             {"JUPYTER_PATH": tmp + (os.pathsep + old if old else "")}):
            yield name


def run_notebook(input_path: str, output_path: str, parameters: dict,
                 cwd: str = REPO_ROOT) -> str:
    """Execute a notebook with papermill on this interpreter's kernel; returns output_path.

    Once the last cell has run (or one failed), the kernel has nothing left to do: results
    and checkpoints are written, atomically, by the cells themselves, and papermill writes
    the executed notebook here. So it is stopped at once rather than asked to exit, which
    waits about 2 s per row for the process to wind down (jupyter_client's graceful path).
    """
    import papermill
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    with python_kernel() as kernel:
        papermill.execute_notebook(input_path, output_path, parameters=parameters, cwd=cwd,
                                   kernel_name=kernel, progress_bar=False,
                                   shutdown_kernel="immediate")
    return output_path

