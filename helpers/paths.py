"""Where things are: the repository, the notebooks, and HOME, the folder outputs go to.

HOME holds results, checkpoints, the CIFAR-100 download, report.md, figures and the PDF.
It is the repository root unless the environment variable HW6_HOME names another folder;
the notebooks' setup cell sets it to a Google Drive folder on Colab (HOME_ENV below), so a
disconnect loses nothing and every notebook, in its own runtime, finds the same files.
"""
from __future__ import annotations

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = {p: os.path.join(REPO_ROOT, "notebooks", f"problem{p}.ipynb") for p in (1, 2, 3)}
SUMMARY_NOTEBOOK = os.path.join(REPO_ROOT, "notebooks", "summary.ipynb")
GRID_NOTEBOOK = os.path.join(REPO_ROOT, "notebooks", "grid.ipynb")
EXECUTED_DIR = os.path.join(REPO_ROOT, "notebooks", "runs")

HOME_ENV = "HW6_HOME"
DRIVE_MOUNT_ENV = "HW6_DRIVE_MOUNT"     # where Google Drive is mounted; Colab's default below
DRIVE_MOUNT = "/content/drive"
DRIVE_FOLDER = "cifar100-hw6"          # HOME on Colab: <mount>/MyDrive/cifar100-hw6
RESULTS = "results"                    # HOME/results/<dataset>/<run_name>.json
REAL_DATASET = "cifar100"              # its report is HOME's report.md, figures/, report.pdf


def home() -> str:
    """The folder outputs go to: $HW6_HOME, else the repository root."""
    return os.path.abspath(os.environ.get(HOME_ENV) or REPO_ROOT)


def at_home(path: str) -> str:
    """Relative paths are relative to HOME; absolute ones are kept."""
    return path if os.path.isabs(path) else os.path.join(home(), path)


def shown(path: str) -> str:
    """A path as a message shows it: relative to HOME when inside it (so no machine's
    folders appear in a report), else as it is."""
    full = os.path.abspath(at_home(path))
    rel = os.path.relpath(full, home())
    return full if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel
