"""Shared pytest fixtures. Tests run on CPU with few threads: several suites share 2 cores."""
import os

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


@pytest.fixture(autouse=True, scope="session")
def _no_benchmark_file():
    """helpers.speed picks options from benchmarks/results/<device>.json; tests see an
    empty folder unless they write a file there (tests/test_speed.py), so no committed
    measurement changes what a test runs."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="bench-results-") as folder:
        old = os.environ.get("HELPERS_BENCH_RESULTS")
        os.environ["HELPERS_BENCH_RESULTS"] = folder
        yield
        if old is None:
            os.environ.pop("HELPERS_BENCH_RESULTS", None)
        else:
            os.environ["HELPERS_BENCH_RESULTS"] = old
