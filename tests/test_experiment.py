"""Experiment end to end: the result file has every field, bad input writes nothing."""
import os
import time

import numpy as np
import pytest

from helpers.config import ConfigError, ExperimentConfig
from helpers.experiment import Experiment
from helpers.results import load_results, read_result

RESULT_KEYS = {"run_name", "problem", "model", "label", "config", "dataset", "params",
               "trainable_params", "macs_thop", "flops", "history", "epoch_time_s",
               "epoch_time_note", "test_acc", "status", "reason", "provenance"}
HISTORY_KEYS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "epoch_time_s",
                "images_per_s"}
PROVENANCE_KEYS = {"git_commit", "python", "torch", "torchvision", "timm", "device", "seed",
                   "started", "finished"}


def cfg_for(tmp_path, **over):
    base = dict(model="vit", dim=32, depth=1, heads=2, patch_size=8, dataset="synthetic",
                train_subset=128, test_subset=64, epochs=2, batch_size=32, device="cpu",
                results_dir=str(tmp_path / "results"))
    base.update(over)
    return ExperimentConfig(**base)


def test_result_file_has_every_field(tmp_path):
    result = Experiment(cfg_for(tmp_path)).run(progress=False)
    on_disk = read_result(os.path.join(tmp_path, "results", "p1-vit-1L-2H-32-p8.json"))
    assert on_disk == result
    assert RESULT_KEYS <= set(result)
    assert result["problem"] == 1 and result["status"] == "complete"
    assert len(result["history"]) == 2 and all(HISTORY_KEYS <= set(h) for h in result["history"])
    assert PROVENANCE_KEYS <= set(result["provenance"])
    assert result["dataset"]["name"] == "synthetic" and result["dataset"]["synthetic"] is True
    assert (result["dataset"]["n_train"], result["dataset"]["n_test"]) == (128, 64)
    # Final epoch, never the best: the headline equals the last history entry.
    assert result["test_acc"] == result["history"][-1]["test_acc"]
    # Two epochs -> the first (warm-up) is excluded from the mean, and the file says so.
    assert result["epoch_time_s"] == result["history"][1]["epoch_time_s"]
    assert "epoch 1" in result["epoch_time_note"] and "excluded" in result["epoch_time_note"]
    assert result["trainable_params"] == result["params"] > 0
    assert result["flops"] > result["macs_thop"] > 0


def test_npz_dataset_trains_and_infers_classes(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=rng.integers(0, 256, (96, 32, 32, 3), dtype=np.uint8),
             y_train=rng.integers(0, 7, 96), x_test=rng.integers(0, 256, (40, 32, 32, 3),
                                                                  dtype=np.uint8),
             y_test=rng.integers(0, 7, 40))
    result = Experiment(cfg_for(tmp_path, dataset=str(path), train_subset=None,
                                test_subset=None, epochs=1)).run(progress=False)
    assert result["dataset"]["num_classes"] == 7
    assert result["dataset"]["n_train"] == 96
    assert load_results(str(tmp_path / "results"))["run_name"].tolist() == [result["run_name"]]


def assert_refused_without_result(tmp_path, exc, match, **over):
    t0 = time.perf_counter()
    with pytest.raises(exc, match=match):
        Experiment(cfg_for(tmp_path, **over)).run(progress=False)
    assert time.perf_counter() - t0 < 15, "bad input must be refused before expensive work"
    results = tmp_path / "results"
    assert not results.exists() or not any(p.suffix == ".json" for p in results.iterdir())


def test_bad_inputs_are_refused_before_training_and_leave_no_result(tmp_path):
    assert_refused_without_result(tmp_path, ConfigError, "valid models: resnet18, vit",
                                  model="alexnet")
    assert_refused_without_result(tmp_path, ConfigError, "heads=3: must divide dim=32", heads=3)
    assert_refused_without_result(tmp_path, ConfigError, "patch_size=5", patch_size=5)
    assert_refused_without_result(tmp_path, ConfigError, "epochs=0", epochs=0)
    assert_refused_without_result(tmp_path, ConfigError, "epochs=-1", epochs=-1)


def test_malformed_npz_is_refused_naming_the_key(tmp_path):
    from helpers.data import DatasetFormatError
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=np.zeros((4, 32, 32), np.uint8), y_train=np.zeros(4, int),
             x_test=np.zeros((2, 32, 32, 3), np.uint8), y_test=np.zeros(2, int))
    assert_refused_without_result(tmp_path, DatasetFormatError, "x_train", dataset=str(path),
                                  train_subset=None, test_subset=None)


def test_cifar100_missing_offline_is_refused_fast(tmp_path, monkeypatch):
    from helpers import data
    from helpers.data import DataUnavailableError
    monkeypatch.setattr(data, "PROBE_URL", "http://127.0.0.1:9/cifar-100-python.tar.gz")
    assert_refused_without_result(tmp_path, DataUnavailableError, "cifar-100-python.tar.gz",
                                  dataset="cifar100", data_dir=str(tmp_path / "nodata"),
                                  train_subset=None, test_subset=None)


def test_weights_missing_offline_is_refused_fast(tmp_path, monkeypatch):
    from helpers.models import WeightsUnavailableError
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert_refused_without_result(tmp_path, WeightsUnavailableError, "weights=",
                                  model="swin_tiny", mode="finetune", dim=256, heads=4,
                                  patch_size=4)
