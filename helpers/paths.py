"""Where things are: the repository root and the notebooks, defined once."""
from __future__ import annotations

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = {1: os.path.join(REPO_ROOT, "notebooks", "problem1.ipynb"),
             2: os.path.join(REPO_ROOT, "notebooks", "problem2.ipynb")}
SUMMARY_NOTEBOOK = os.path.join(REPO_ROOT, "notebooks", "summary.ipynb")
EXECUTED_DIR = os.path.join(REPO_ROOT, "notebooks", "runs")
BENCH_DIR = os.path.join(REPO_ROOT, "benchmarks")


def at_root(path: str) -> str:
    """A path as the notebooks see it: relative paths are relative to the repository root
    (where papermill runs them), whatever the caller's working directory."""
    return path if os.path.isabs(path) else os.path.join(REPO_ROOT, path)
