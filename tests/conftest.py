"""Shared pytest fixtures. Tests run on CPU with few threads: several suites share 2 cores."""

import os

import pytest
import torch


def need_tools(missing: list[str], what: str) -> None:
    """Skip a test whose outside tools (LaTeX, Chromium, ...) this machine lacks; under CI
    (.ci/run exports CI=true after installing them), fail it instead: there a missing tool
    is a broken install step, not a choice."""
    if not missing:
        return
    message = f"{what} needs {'; '.join(missing)} on PATH"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " (CI=true: .ci/run must install them)")
    pytest.skip(message + " (CI installs them)")


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    torch.set_num_threads(1)


@pytest.fixture
def results_dir(tmp_path):
    """An empty results folder for a test's result JSONs and checkpoints."""
    path = tmp_path / "results"
    path.mkdir()
    return path
