"""The notebooks' side of the package: building a run's config, and executing a notebook.

The Problem 1/2 notebooks only hold a `parameters` cell and a few calls; the checks that
keep a Problem 1 notebook from training a Swin (and the reverse) live here, so the runner
and the notebooks resolve exactly the same config from the same parameters.
`execute_notebook` is how the runner and the tests run them (papermill, via helpers.pdf).

Nothing here imports torch: a bad parameter is refused in milliseconds.
"""
from __future__ import annotations

import os

from .config import ConfigError, ExperimentConfig

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = {1: os.path.join(REPO_ROOT, "notebooks", "problem1.ipynb"),
             2: os.path.join(REPO_ROOT, "notebooks", "problem2.ipynb")}
PROBLEM1_MODELS = ("resnet18", "vit")
SWIN_VARIANTS = ("tiny", "small")


# ----------------------------------------------------------------------------- configs
def problem1_config(*, model: str, **params) -> ExperimentConfig:
    """The resolved config of one Problem 1 run (ResNet-18 or a ViT), or ConfigError."""
    if model not in PROBLEM1_MODELS:
        hint = " (Swin runs belong to problem2.ipynb)" if str(model).startswith("swin") else ""
        raise ConfigError(f"model={model!r}: Problem 1 trains one of "
                          f"{', '.join(PROBLEM1_MODELS)}{hint}")
    return ExperimentConfig.from_params(model=model, **params).resolved()


def problem2_config(*, variant: str, **params) -> ExperimentConfig:
    """The resolved config of one Problem 2 run: model = f"swin_{variant}"."""
    if variant not in SWIN_VARIANTS:
        raise ConfigError(f"variant={variant!r}: valid Swin variants: {', '.join(SWIN_VARIANTS)}")
    if "model" in params:
        raise ConfigError("model: Problem 2 picks the model from `variant`; do not pass model")
    return ExperimentConfig.from_params(model=f"swin_{variant}", **params).resolved()


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
    return os.path.join("results", name)


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
    print(f"MACs      {summary['macs_thop'] / 1e6:.1f} M per image (thop, per module: "
          "misses attention matmuls)")
    print(f"FLOPs     {summary['flops'] / 1e6:.1f} M per image (exact forward count, 2 per MAC)")


# ----------------------------------------------------------------------------- papermill
def notebook_parameters(path: str) -> dict:
    """The parameters a notebook declares: name -> papermill Parameter (type, default, help)."""
    import papermill
    return papermill.inspect_notebook(path)


def execute_notebook(input_path: str, output_path: str, parameters: dict | None = None,
                     cwd: str = REPO_ROOT) -> None:
    """Run a notebook with papermill, writing the executed copy to `output_path`.

    Parameter names are checked against the notebook's `parameters` cell first: papermill
    itself only warns about an unknown name and runs on with the default, which would
    silently train something else. The kernel is this interpreter (helpers.pdf.run_notebook).
    A failing cell raises papermill's PapermillExecutionError, whose `.ename` is the class
    of the exception raised in the notebook; the executed copy, traceback included, is
    still written.
    """
    from .pdf import run_notebook
    parameters = dict(parameters or {})
    declared = notebook_parameters(input_path)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ConfigError(f"unknown parameter(s) {unknown} for {os.path.basename(input_path)}; "
                          f"valid parameters: {sorted(declared)}")
    run_notebook(input_path, output_path, parameters, cwd=cwd)
