"""Experiment end to end: the result file has every field, bad input writes nothing."""
import contextlib
import os
from unittest import mock

import numpy as np
import pytest

from helpers.config import ConfigError, ExperimentConfig
from helpers.experiment import Experiment
from helpers.results import record_problems
from helpers.results import ResultRecord, load_results, read_result

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
    assert record_problems(result) == []
    extras = set(result) - set(ResultRecord.__annotations__)
    assert extras == {"probes"}                                 # a ViT has probes
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


def random_npz(path, n_train: int, n_test: int, classes: int):
    """A .npz of random 32x32 images with labels 0..classes-1 (the loader's layout)."""
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
             y_train=rng.integers(0, classes, n_train),
             x_test=rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8),
             y_test=rng.integers(0, classes, n_test))
    return path


def test_npz_dataset_trains_and_infers_classes(tmp_path):
    path = random_npz(tmp_path / "mine.npz", 96, 40, classes=7)
    result = Experiment(cfg_for(tmp_path, dataset=str(path), train_subset=None,
                                test_subset=None, epochs=1)).run(progress=False)
    assert result["dataset"]["num_classes"] == 7
    assert result["dataset"]["n_train"] == 96
    assert load_results(str(tmp_path / "results"))["run_name"].tolist() == [result["run_name"]]


def assert_refused_without_result(tmp_path, exc, match, before=("measure", "fit"), **over):
    """Refused before the steps `before` (of helpers.experiment: the model measured or
    trained by default): reaching one raises AssertionError, which pytest.raises(exc) does
    not catch."""
    expensive = AssertionError(f"bad input reached one of {before}")
    with pytest.raises(exc, match=match), contextlib.ExitStack() as stack:
        for step in before:
            stack.enter_context(mock.patch(f"helpers.experiment.{step}", side_effect=expensive))
        Experiment(cfg_for(tmp_path, **over)).run(progress=False)
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
    from helpers.data import DataUnavailableError, cifar100
    monkeypatch.setattr(cifar100, "PROBE_URL", "http://127.0.0.1:9/cifar-100-python.tar.gz")
    assert_refused_without_result(tmp_path, DataUnavailableError, "cifar-100-python.tar.gz",
                                  dataset="cifar100", data_dir=str(tmp_path / "nodata"),
                                  train_subset=None, test_subset=None)


def test_weights_missing_offline_is_refused_fast(tmp_path, monkeypatch):
    from helpers.models import WeightsUnavailableError
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert_refused_without_result(tmp_path, WeightsUnavailableError, "weights=",
                                  before=("load_dataset", "measure", "fit"),
                                  model="swin_tiny", mode="finetune", dim=256, heads=4,
                                  patch_size=4)


def test_a_checkpoint_of_another_config_is_refused_before_the_data_loads(tmp_path):
    """What the notebook hits on resuming with a changed config: refused at prepare(), not
    after the data has loaded and the model been built; once the run is complete under
    this config, that checkpoint no longer matters (run() returns the result)."""
    import torch
    from helpers.checkpoint import CheckpointMismatchError
    from helpers.results import recipe_id
    cfg = cfg_for(tmp_path, epochs=1).resolved()
    os.makedirs(os.path.dirname(cfg.checkpoint_path))
    torch.save(dict(config=dict(cfg.to_dict(), lr=0.5), recipe=recipe_id(), epoch=1),
               cfg.checkpoint_path)
    assert_refused_without_result(tmp_path, CheckpointMismatchError, "lr: 0.5 -> ",
                                  before=("load_dataset", "measure", "fit"), epochs=1)
    kept = open(cfg.checkpoint_path, "rb").read()
    os.remove(cfg.checkpoint_path)
    done = Experiment(cfg).run(progress=False)
    with open(cfg.checkpoint_path, "wb") as f:
        f.write(kept)
    assert Experiment(cfg).prepare() and Experiment(cfg).run(progress=False) == done


# ----------------------------------------------------------------------------- small data
def test_a_small_npz_dataset_trains_well_at_default_settings(tmp_path):
    """A user's own small dataset (1,000 training images, 10 classes) at default settings:
    the batch is fitted to the data (32, so 31 steps an epoch), and ResNet-18 clearly beats
    chance in two epochs. The per-model default of 512 would make one step an epoch, all
    warm-up, and stay at chance. This is also the suite's "ResNet-18 learns" check."""
    from helpers.data import make_synthetic
    ds = make_synthetic(n_train=1000, n_test=200, num_classes=10, seed=3)
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=ds.x_train.numpy(), y_train=ds.y_train.numpy(),
             x_test=ds.x_test.numpy(), y_test=ds.y_test.numpy())
    cfg = ExperimentConfig(model="resnet18", dataset=str(path), epochs=2, device="cpu",
                           results_dir=str(tmp_path / "results"))
    result = Experiment(cfg).run(progress=False)
    assert result["config"]["batch_size"] is None               # the user never chose one
    training = result["training"]
    assert training["batch_size"] == 32 and training["steps_per_epoch"] == 1000 // 32
    assert "halved" in training["batch_rule"]
    total = 2 * (1000 // 32)                                  # two epochs of 31 steps
    assert training["total_steps"] == total and training["warmup_steps"] == int(0.2 * total)
    assert result["history"][-1]["train_loss"] < result["history"][0]["train_loss"]
    assert result["test_acc"] > 3 * 10.0, result["history"]


def test_a_subset_of_a_few_hundred_images_needs_no_batch_size(tmp_path):
    cfg = cfg_for(tmp_path, model="vit", train_subset=256, test_subset=64, batch_size=None,
                  epochs=1)
    result = Experiment(cfg).run(progress=False)
    assert result["status"] == "complete"
    assert result["training"]["batch_size"] == 16 and result["training"]["steps_per_epoch"] == 16
    assert "minimum of 16" in result["training"]["batch_rule"]


def test_an_explicit_batch_too_large_for_an_npz_is_refused_before_the_model_is_built(
        tmp_path, monkeypatch):
    from helpers import experiment
    path = random_npz(tmp_path / "small.npz", 40, 8, classes=3)

    def no_model(*a, **k):
        raise AssertionError("the model was built")
    monkeypatch.setattr(experiment, "build_model", no_model)
    assert_refused_without_result(tmp_path, ConfigError, "batch_size=64: larger than the 40",
                                  dataset=str(path), train_subset=None, test_subset=None,
                                  batch_size=64)


def test_provenance_records_what_was_used(tmp_path):
    result = Experiment(cfg_for(tmp_path, epochs=2)).run(progress=False)
    prov, training = result["provenance"], result["training"]
    assert prov["compile"] is False and prov["precision"] == "fp32"       # resolved, not None
    assert training["compile"] is False and training["batch_size"] == 32
    assert training["warmup_steps"] == min(128 // 32, int(0.2 * 2 * 128 // 32))  # 20 % cap
    assert [prov["device"]] == result["devices"]
    assert all(h["segment"] == 1 and h["device"] == prov["device"] for h in result["history"])


def test_non_finite_metrics_are_stored_as_null_with_a_reason(tmp_path):
    from helpers.results import write_result
    result = Experiment(cfg_for(tmp_path, epochs=1)).run(progress=False)
    result["history"][0]["test_loss"] = float("inf")
    result["epoch_time_s"] = float("nan")
    path = write_result(result)
    again = read_result(path)
    assert again["status"] == "complete"
    assert again["history"][0]["test_loss"] is None and again["epoch_time_s"] is None
    assert again["nonfinite_metrics"] == {"history[0].test_loss": "inf", "epoch_time_s": "nan"}
    assert "history[0].test_loss=inf" in again["reason"]
    assert again["test_acc"] == result["test_acc"]


def test_a_complete_run_is_not_trained_again(tmp_path):
    """Run the notebook again after it finished (a Colab reconnect): the checkpoint is gone,
    but the complete result with the same config is returned instead of retraining."""
    cfg = cfg_for(tmp_path, epochs=1)
    first = Experiment(cfg).run(progress=False)
    path = Experiment(cfg).cfg.result_path
    before = os.stat(path).st_mtime_ns
    again = Experiment(cfg_for(tmp_path, epochs=1, eval_batch_size=512)).run(progress=False)
    assert again == first and os.stat(path).st_mtime_ns == before
    changed = Experiment(cfg_for(tmp_path, epochs=2)).run(progress=False)   # another config
    assert [h["epoch"] for h in changed["history"]] == [1, 2]
