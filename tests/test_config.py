"""Config: unknown names and bad values are refused with a message naming the field."""
import pytest

from helpers.config import MODEL_NAMES, ConfigError, ExperimentConfig
from helpers.grid import grid


def test_unknown_field_lists_valid_fields():
    with pytest.raises(ConfigError, match="unknown config field.*'depht'.*'depth'"):
        ExperimentConfig.from_params(model="vit", depht=4)


def test_unknown_model_lists_valid_models():
    with pytest.raises(ConfigError) as err:
        ExperimentConfig(model="vgg16").resolved()
    for name in MODEL_NAMES:
        assert name in str(err.value)


@pytest.mark.parametrize("field,value,match", [
    ("epochs", 0, "epochs=0: must be a positive integer"),
    ("epochs", -3, "epochs=-3"),
    ("batch_size", 0, "batch_size"),
    ("lr", -1.0, "lr=-1.0"),
    ("precision", "fp8", "valid precisions"),
    ("device", "tpu", "valid devices"),
    ("optimizer", "lion", "valid optimizers"),
    ("dataset", "imagenet", "cifar100 | synthetic"),
    ("dataset", "/nonexistent/file.npz", "no such .npz"),
    ("weights", "/nonexistent/w.safetensors", "weights=.*file not found"),
    ("run_name", "a/b", "plain file name"),
])
def test_bad_values_name_the_field(field, value, match):
    with pytest.raises(ConfigError, match=match):
        ExperimentConfig(**{field: value}).resolved()


def test_vit_shape_checks():
    with pytest.raises(ConfigError, match="heads=3: must divide dim=128"):
        ExperimentConfig(model="vit", dim=128, heads=3).resolved()
    with pytest.raises(ConfigError, match="patch_size=5: must divide the image size 32"):
        ExperimentConfig(model="vit", patch_size=5).resolved()


def test_mode_only_for_swin():
    with pytest.raises(ConfigError, match="only Swin models are fine-tuned"):
        ExperimentConfig(model="resnet18", mode="finetune").resolved()
    with pytest.raises(ConfigError, match="valid modes"):
        ExperimentConfig(model="swin_tiny", mode="linear_probe").resolved()


def test_cache_features_needs_frozen_finetune_without_augmentation():
    with pytest.raises(ConfigError, match="cache_features"):
        ExperimentConfig(model="swin_tiny", mode="finetune", cache_features=True).resolved()
    ExperimentConfig(model="swin_tiny", mode="finetune", cache_features=True,
                     augment=False).resolved()


def test_resolved_fills_per_model_defaults_and_keeps_overrides():
    swin = ExperimentConfig(model="swin_small", mode="finetune_full").resolved()
    assert (swin.img_size, swin.optimizer, swin.run_name) == (224, "adamw", "p2-swin_small-finetune_full")
    assert swin.problem == 2
    res = ExperimentConfig(model="resnet18", lr=0.05).resolved()
    assert (res.lr, res.optimizer, res.img_size, res.problem) == (0.05, "sgd", 32, 1)


def test_every_grid_entry_is_a_valid_config_with_its_own_run_name():
    for entry in grid():
        params = {k: v for k, v in entry.items() if k != "label"}
        cfg = ExperimentConfig.from_params(**params).resolved()
        assert cfg.default_run_name() == entry["run_name"]


def test_config_knows_the_same_models_and_modes_as_the_registry():
    """config.py keeps its own copy of the model names so validation needs no torch import;
    this keeps that copy honest."""
    from helpers import models
    assert set(MODEL_NAMES) == set(models.MODELS)
    for name in MODEL_NAMES:
        spec = models.input_spec(name)
        assert ExperimentConfig(model=name).resolved().img_size == spec["img_size"]
