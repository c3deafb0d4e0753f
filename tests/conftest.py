"""Shared pytest fixtures. Tests run on CPU with few threads: several suites share 2 cores."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    torch.set_num_threads(1)


@pytest.fixture
def results_dir(tmp_path):
    """An empty results folder for a test's result JSONs and checkpoints."""
    path = tmp_path / "results"
    path.mkdir()
    return path
