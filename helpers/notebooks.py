"""The notebooks' side of the core: the setup cell's HOME, each problem's config from its
parameters (the runner resolves the same config the same way), and what a notebook prints.
Nothing here imports torch: a bad parameter is refused in milliseconds.
"""
from __future__ import annotations

import os

from .config import (STUDIES, SWIN_VARIANTS, ConfigError, ExperimentConfig, models_of,
                     is_swin)
from .paths import (DRIVE_FOLDER, DRIVE_MOUNT, DRIVE_MOUNT_ENV, HOME_ENV, REAL_DATASET,
                    RESULTS, at_home, home, shown)


# ----------------------------------------------------------------------------- setup
def setup_home(*, colab: bool, use_drive: bool = True) -> str:
    """The notebooks' setup cell: HOME, the folder every output goes to (paths.home).

    On Colab with use_drive, Google Drive is mounted (at $HW6_DRIVE_MOUNT, else
    /content/drive) and HOME becomes MyDrive/cifar100-hw6 on it, exported as $HW6_HOME so
    that this kernel and anything it starts agree. Elsewhere HOME is $HW6_HOME, else the
    repository root. The folder is created; its path is returned.
    """
    mount = os.environ.get(DRIVE_MOUNT_ENV) or DRIVE_MOUNT
    if colab and use_drive:
        if not os.path.ismount(mount):    # a kernel this one starts finds it mounted: no prompt
            from google.colab import drive
            drive.mount(mount)
        os.environ[HOME_ENV] = os.path.join(mount, "MyDrive", DRIVE_FOLDER)
    path = home()
    os.makedirs(path, exist_ok=True)
    return path


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, Colab, papermill), where progress bars
    draw as widgets; False in a terminal or a test."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


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
    if os.path.abspath(at_home(results_dir)) == default:
        return "notebooks/summary.ipynb reads this folder at its defaults."
    return (f"notebooks/summary.ipynb reads it with this line in its parameters cell:\n"
            f"    results_dir = {shown(results_dir)!r}")


# ----------------------------------------------------------------------------- configs
def problem1_config(*, model: str, **params) -> ExperimentConfig:
    """The resolved config of one Problem 1 run (ResNet-18 or a ViT), or ConfigError.
    Relative results_dir and data_dir are under HOME (paths.home)."""
    if model not in models_of(1):
        hint = " (Swin runs belong to problem2.ipynb)" if is_swin(model) else ""
        raise ConfigError(f"model={model!r}: Problem 1 trains one of "
                          f"{', '.join(models_of(1))}{hint}")
    return ExperimentConfig.from_params(model=model, **_with_paths(params)).resolved()


def problem2_config(*, variant: str, **params) -> ExperimentConfig:
    """The resolved config of one Problem 2 run: model = f"swin_{variant}"."""
    if variant not in SWIN_VARIANTS:
        raise ConfigError(f"variant={variant!r}: valid Swin variants: {', '.join(SWIN_VARIANTS)}")
    if "model" in params:
        raise ConfigError("model: Problem 2 picks the model from `variant`; do not pass model")
    return ExperimentConfig.from_params(model=f"swin_{variant}", **_with_paths(params)).resolved()


def problem3_config(*, study: str, **params) -> ExperimentConfig:
    """The resolved config of one Problem 3 run: one point of a claims study
    (helpers/claims.py) with any of the models."""
    if study not in STUDIES:
        raise ConfigError(f"study={study!r}: valid studies: {', '.join(STUDIES)}")
    return ExperimentConfig.from_params(study=study, **_with_paths(params)).resolved()


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


def show_probes(result: dict) -> None:
    """Print how far a trained model looks (result["probes"], helpers/probes.py)."""
    probes = result.get("probes")
    if not probes:
        print("no probes for this model (ResNet-18 and the ViTs have them)")
    elif "receptive_field" in probes:
        print(f"receptive field on the {probes['img_size']}-px input, from the architecture:")
        for s in probes["receptive_field"]:
            print(f"  after {s['stage']:7s} {s['receptive_field_px']:4d} px  "
                  f"(stride {s['stride_px']})")
    else:
        print(f"mean attention distance (px) over {probes['images']} test images, per block:")
        for i, heads in enumerate(probes["attention_distance_px"], 1):
            print(f"  block {i}: " + "  ".join(f"{d:5.1f}" for d in heads))
