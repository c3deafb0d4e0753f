"""The notebooks: building a run's config from their parameters, and executing them.

The Problem 1/2 notebooks only hold a `parameters` cell and a few calls; the checks that
keep a Problem 1 notebook from training a Swin (and the reverse) live here, so the runner
and the notebooks resolve exactly the same config from the same parameters.
`execute_notebook` (papermill, on this interpreter's kernel) is how the runner, the PDF
export and the tests run them.

Nothing here imports torch: a bad parameter is refused in milliseconds.
"""
from __future__ import annotations

import ast
import contextlib
import json
import os
import sys
import tempfile

from .config import PROBLEM1_MODELS, SWIN_VARIANTS, ConfigError, ExperimentConfig, problem_of
from .paths import (DRIVE_MOUNT, DRIVE_MOUNT_ENV, HOME_ENV, NOTEBOOKS,  # noqa: F401
                    REAL_DATASET, REPO_ROOT, RESULTS, at_home, drive_home, home)


# ----------------------------------------------------------------------------- setup
def setup_home(*, colab: bool, use_drive: bool = True) -> str:
    """The notebooks' setup cell: HOME, the folder every output goes to (paths.home).

    On Colab with use_drive, Google Drive is mounted (at $HW6_DRIVE_MOUNT, else
    /content/drive) and HOME becomes MyDrive/cifar100-hw6 on it, exported as $HW6_HOME so
    that this kernel and anything it starts agree. Elsewhere HOME is $HW6_HOME, else the
    repository root. The folder is created; its path is returned.
    """
    if colab and use_drive:
        from google.colab import drive
        drive.mount(os.environ.get(DRIVE_MOUNT_ENV) or DRIVE_MOUNT)
        os.environ[HOME_ENV] = drive_home()
    path = home()
    os.makedirs(path, exist_ok=True)
    return path


def _with_paths(params: dict) -> dict:
    """results_dir (None: results/<dataset>) and data_dir (unset: data), under HOME."""
    out = dict(params)
    dataset = out.get("dataset") or ExperimentConfig.dataset
    if not isinstance(dataset, str):
        raise ConfigError(f"dataset={dataset!r}: must be a string")
    results_dir = out.get("results_dir") or default_results_dir(dataset)
    if not isinstance(results_dir, str):
        raise ConfigError(f"results_dir={results_dir!r}: must be a path (string) or None")
    out["results_dir"] = at_home(results_dir)
    data_dir = out.get("data_dir") or ExperimentConfig.data_dir
    out["data_dir"] = at_home(data_dir) if isinstance(data_dir, str) else data_dir
    return out


def summary_parameter(results_dir: str) -> str:
    """What to tell notebooks/summary.ipynb to read results_dir: nothing at the default
    (HOME/results/cifar100), else the exact parameters-cell line."""
    default = os.path.abspath(at_home(default_results_dir(REAL_DATASET)))
    full = os.path.abspath(at_home(results_dir))
    if full == default:
        return "notebooks/summary.ipynb reads this folder at its defaults."
    rel = os.path.relpath(full, home())
    shown = full if rel.startswith("..") else rel
    return (f"notebooks/summary.ipynb reads it with this line in its parameters cell:\n"
            f"    results_dir = {shown!r}")


# ----------------------------------------------------------------------------- configs
def problem1_config(*, model: str, **params) -> ExperimentConfig:
    """The resolved config of one Problem 1 run (ResNet-18 or a ViT), or ConfigError.
    Relative results_dir and data_dir are under HOME (paths.home)."""
    if model not in PROBLEM1_MODELS:
        hint = " (Swin runs belong to problem2.ipynb)" if problem_of(model) == 2 else ""
        raise ConfigError(f"model={model!r}: Problem 1 trains one of "
                          f"{', '.join(PROBLEM1_MODELS)}{hint}")
    return ExperimentConfig.from_params(model=model, **_with_paths(params)).resolved()


def problem2_config(*, variant: str, **params) -> ExperimentConfig:
    """The resolved config of one Problem 2 run: model = f"swin_{variant}"."""
    if variant not in SWIN_VARIANTS:
        raise ConfigError(f"variant={variant!r}: valid Swin variants: {', '.join(SWIN_VARIANTS)}")
    if "model" in params:
        raise ConfigError("model: Problem 2 picks the model from `variant`; do not pass model")
    return ExperimentConfig.from_params(model=f"swin_{variant}", **_with_paths(params)).resolved()


def config_from_parameters(problem: int, parameters: dict) -> ExperimentConfig:
    """What problem<N>.ipynb builds from these parameters (the runner uses this to compare
    a finished result with the run it is about to start)."""
    params = dict(parameters)
    extra = params.pop("overrides", None) or {}
    clash = sorted(set(extra) & set(params))
    if clash:
        raise ConfigError(f"overrides repeat notebook parameter(s) {clash}; set them directly")
    params.update(extra)
    return problem1_config(**params) if problem == 1 else problem2_config(**params)


def default_results_dir(dataset: str) -> str:
    """results/<dataset>: results/cifar100, results/synthetic, results/<stem of the .npz>.
    One folder per dataset, so a quick synthetic run never lands among the CIFAR-100 rows."""
    name = os.path.splitext(os.path.basename(dataset))[0] if dataset.endswith(".npz") else dataset
    return os.path.join(RESULTS, name)


def show_config(cfg: ExperimentConfig) -> None:
    """Print the resolved config, one field per line, for the notebook's record."""
    for key, value in cfg.to_dict().items():
        print(f"  {key:16s} {value!r}")


def show_measurements(summary: dict) -> None:
    """Print Experiment.prepare()'s dataset, parameter and FLOP counts."""
    ds = summary["dataset"]
    print(f"dataset   {ds['name']}: {ds['n_train']} train / {ds['n_test']} test images, "
          f"{ds['num_classes']} classes" + ("  (SYNTHETIC)" if ds.get("synthetic") else ""))
    print(f"params    {summary['params'] / 1e6:.3f} M total, "
          f"{summary['trainable_params'] / 1e6:.3f} M trainable")
    if summary["macs_thop"] is None:
        print("MACs      not counted (thop is not installed)")
    else:
        print(f"MACs      {summary['macs_thop'] / 1e6:.1f} M per image (thop, per module: "
              "misses attention matmuls)")
    print(f"FLOPs     {summary['flops'] / 1e6:.1f} M per image (exact forward count, 2 per MAC)")


def declared_parameters(path: str) -> frozenset:
    """The names a notebook's `parameters` cell assigns, read from the file (no papermill
    or Jupyter needed: the runner's --no-notebooks mode plans with this)."""
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    names = set()
    for node in ast.parse("".join(cells[0]["source"])).body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return frozenset(names)


# ----------------------------------------------------------------------------- papermill
def notebook_parameters(path: str) -> dict:
    """The parameters a notebook declares: name -> papermill Parameter (type, default, help)."""
    import papermill
    return papermill.inspect_notebook(path)


def execute_notebook(input_path: str, output_path: str, parameters: dict | None = None,
                     cwd: str = REPO_ROOT, km=None) -> None:
    """Run a notebook with papermill, writing the executed copy to `output_path`.

    Parameter names are checked against the notebook's `parameters` cell first: papermill
    itself only warns about an unknown name and runs on with the default, which would
    silently train something else. The kernel is this interpreter (run_notebook).
    A failing cell raises papermill's PapermillExecutionError, whose `.ename` is the class
    of the exception raised in the notebook; the executed copy, traceback included, is
    still written. `km`: a started kernel (runner/kernels.py) to run it on instead of a
    new one; it is shut down afterwards all the same.
    """
    parameters = dict(parameters or {})
    declared = notebook_parameters(input_path)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        shutdown_kernel(km)
        raise ConfigError(f"unknown parameter(s) {unknown} for {os.path.basename(input_path)}; "
                          f"valid parameters: {sorted(declared)}")
    run_notebook(input_path, output_path, parameters, cwd=cwd, km=km)


# ----------------------------------------------------------------------------- kernel
def _runs_this_python(argv0: str) -> bool:
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
    if argv and _runs_this_python(argv[0]):
        yield name
        return
    old = os.environ.get("JUPYTER_PATH")
    with tempfile.TemporaryDirectory(prefix="kernelspec-") as tmp:
        spec_dir = os.path.join(tmp, "kernels", name)
        os.makedirs(spec_dir)
        with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
            json.dump({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f",
                                "{connection_file}"],
                       "display_name": f"Python ({sys.executable})", "language": "python"}, f)
        os.environ["JUPYTER_PATH"] = tmp + (os.pathsep + old if old else "")
        try:
            yield name
        finally:
            if old is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = old


def run_notebook(input_path: str, output_path: str, parameters: dict,
                 cwd: str = REPO_ROOT, km=None) -> str:
    """Execute a notebook with papermill on this interpreter's kernel, or on `km`, a kernel
    already started in `cwd`; returns output_path.

    Once the last cell has run (or one failed), the kernel has nothing left to do: results
    and checkpoints are written, atomically, by the cells themselves, and papermill writes
    the executed notebook here. So it is stopped at once rather than asked to exit, which
    waits about 2 s per row for the process to wind down (jupyter_client's graceful path).
    """
    import papermill
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    if km is None:
        with python_kernel() as kernel:
            papermill.execute_notebook(input_path, output_path, parameters=parameters,
                                       cwd=cwd, kernel_name=kernel, progress_bar=False,
                                       shutdown_kernel="immediate")
        return output_path
    try:   # nbclient leaves a kernel it did not start running: shut it down here
        papermill.execute_notebook(input_path, output_path, parameters=parameters, cwd=cwd,
                                   km=km, progress_bar=False)
    finally:
        shutdown_kernel(km)
    return output_path


def shutdown_kernel(km, now: bool = True) -> None:
    """Shut down a kernel started through jupyter_client's AsyncKernelManager (None: no-op);
    a kernel that already died is not an error here."""
    if km is None:
        return
    from jupyter_core.utils import run_sync
    try:
        run_sync(km.shutdown_kernel)(now=now)
    except Exception:  # noqa: BLE001
        pass


def cell_seconds(path: str) -> float | None:
    """Seconds papermill recorded for an executed notebook's code cells, summed (None when
    it has no such record): the row's wall time minus this is kernel start and papermill's
    own work."""
    try:
        with open(path, encoding="utf-8") as f:
            cells = json.load(f)["cells"]
        durations = [c["metadata"]["papermill"]["duration"] for c in cells
                     if c["cell_type"] == "code"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not durations or any(d is None for d in durations):
        return None
    return float(sum(durations))
