"""HW6, runnable: ResNet-18 vs ViT from scratch, and Swin fine-tuned vs from scratch.

The public API, what a notebook or a user imports:

    from helpers import ExperimentConfig, Experiment
    result = Experiment(ExperimentConfig(model="vit", dataset="synthetic", epochs=2)).run()

    ExperimentConfig, ConfigError   one validated config per run       (config.py)
    Experiment, run_experiment      data -> model -> measure -> fit -> result file
    problem1_config, problem2_config, problem3_config, default_results_dir, show_config,
    show_measurements, show_probes  the notebooks' parameters -> config (notebooks.py)
    grid.grid(), VIT_SHAPES         the rows of Tables 1 and 2, and Problem 3's (grid.py,
                                    claims.py: the claims studies and their sizes)
    load_results, read_results      result files -> DataFrame / dicts   (results.py)
    plot_curves                     a run's learning curves            (curves.py)
    write_report                    the report                          (report/)

The README's layout section is the package's tree.

Importing this package is cheap: torch loads only when something that needs it is used,
so a bad notebook parameter is refused in milliseconds.
"""
from importlib import import_module

from .config import ConfigError, ExperimentConfig
from .notebooks import (default_results_dir, problem1_config, problem2_config, problem3_config,
                        show_config, show_measurements, show_probes)

# name -> module, imported on first use: what pulls in torch, pandas or matplotlib, and what
# sits above the core (the grid's design, the report), which importing the core never loads.
_LAZY = {
    "Experiment": ".experiment", "run_experiment": ".experiment", "VIT_SHAPES": ".grid",
    "load_results": ".results", "read_results": ".results", "read_result": ".results",
    "write_report": ".report", "build_report": ".report", "plot_curves": ".curves",
}

__all__ = ["ConfigError", "ExperimentConfig", "VIT_SHAPES", "default_results_dir", "grid",
           "problem1_config", "problem2_config", "problem3_config", "show_config",
           "show_measurements", "show_probes", *_LAZY]


def __getattr__(name: str):
    if name == "grid":                    # the module: grid.grid(), grid.problem1_runs(), ...
        return import_module(".grid", __name__)
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")
