"""Config: unknown names and bad values are refused with a message naming the field."""
import pytest

from helpers.config import MODELS as MODEL_NAMES, ConfigError, ExperimentConfig
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


def test_resolved_fills_per_model_defaults_and_keeps_overrides():
    swin = ExperimentConfig(model="swin_small", mode="finetune_full").resolved()
    assert (swin.img_size, swin.optimizer) == (224, "adamw")
    assert swin.run_name == "p2-swin_small-finetune_full"
    assert swin.problem == 2
    res = ExperimentConfig(model="resnet18", lr=0.05).resolved()
    assert (res.lr, res.optimizer, res.img_size, res.problem) == (0.05, "sgd", 32, 1)


def test_every_grid_entry_is_a_valid_config_with_its_own_run_name():
    for entry in grid():
        params = {k: v for k, v in entry.items() if k not in ("label", "problem")}
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


# Bad values for every field: wrong types (bool is not an int, numbers are not strings),
# None where it is not allowed, and out-of-range values. Each must give a ConfigError whose
# message starts with the field's name, from resolved(), before any data is loaded.
NAN, INF = float("nan"), float("inf")
BAD_VALUES = {
    "model": [3, None, "vgg16"],
    "patch_size": [0, 4.0, "4", True, None],
    "dim": [-1, 256.0, True],
    "depth": [0, "4"],
    "heads": [0, 2.5],
    "mode": [1, "linear_probe"],
    "weights": [3, "/no/such/weights.pth"],
    "img_size": [0, 32.0, True],
    "dataset": [None, 5, "imagenet"],
    "data_dir": ["", None, 1],
    "train_subset": [0, -5, "100", 1.5, True, 10**9],     # 10**9 synthetic images: no memory
    "test_subset": [0, "100", 10**9],
    "augment": [1, "True", None],
    "epochs": [0, -1, 2.0, "3", None, True],
    "batch_size": [0, 64.0, "64", True, 6000],          # 6000 > the 5000 synthetic images
    "lr": [0, -1, "0.1", True, NAN, INF],
    "weight_decay": [-0.1, "0", True],
    "optimizer": [1, "lion"],
    "warmup_epochs": [-1, "1", True, 100, NAN],         # 100 > half of epochs
    "label_smoothing": ["0.1", 1.0, -0.1, None, True],
    "grad_clip": [0, "1", True],
    "eval_batch_size": [0, None, "1024"],
    "seed": [-1, "0", 1.5, None, True, 2**64],
    "device": [None, "tpu", 0],
    "precision": [None, "fp8"],
    "compile": ["yes", 1, None],
    "run_name": ["", "a/b", 5],
    "results_dir": ["", None],
    "keep_checkpoints": [1, None, "no"],
    "study": [1, "speed"],
    "train_fraction": [0, -0.1, 1.5, "0.5", True, NAN],
    "train_eval_images": [-1, 1.5, None, "1000"],
    "eval_every": [0, None, "2", 1.5],
}


def test_the_bad_value_table_covers_every_field():
    assert set(BAD_VALUES) == set(ExperimentConfig().to_dict())


@pytest.mark.parametrize("field,value", [(f, v) for f, vs in BAD_VALUES.items() for v in vs],
                         ids=lambda x: repr(x))
def test_every_bad_value_of_every_field_is_a_config_error_naming_it(field, value):
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_params(**{field: value}).resolved()
    assert str(err.value).startswith(f"{field}="), str(err.value)


def test_good_values_of_the_same_fields_pass():
    cfg = ExperimentConfig(seed=2**31, lr=1, warmup_epochs=2, label_smoothing=0,
                           compile=False, weight_decay=0, grad_clip=None,
                           keep_checkpoints=True, epochs=4, batch_size=5000).resolved()
    assert (cfg.seed, cfg.lr, cfg.warmup_epochs, cfg.batch_size) == (2**31, 1, 2, 5000)


def test_an_unset_batch_size_fits_the_data_and_keeps_cifar100_defaults():
    from helpers.rules import MIN_AUTO_BATCH, MIN_STEPS_PER_EPOCH, auto_batch_size
    cifar = ExperimentConfig(model="resnet18", dataset="cifar100").resolved()
    assert cifar.batch_size is None                     # "auto", fitted once the size is known
    assert cifar.train_batch_size(50_000) == cifar.default_batch_size() == 512
    swin = ExperimentConfig(model="swin_small", mode="finetune", dataset="cifar100").resolved()
    assert swin.train_batch_size(50_000) == 128
    for n in (100, 256, 1_400, 5_000, 20_000):
        b = auto_batch_size(512, n)
        assert b >= MIN_AUTO_BATCH and (n // b >= MIN_STEPS_PER_EPOCH or b == MIN_AUTO_BATCH)
        assert n // (2 * b) < MIN_STEPS_PER_EPOCH       # the largest such power-of-two halving
    assert auto_batch_size(512, 10) == 10               # fewer images than the smallest batch
    assert ExperimentConfig(batch_size=48).resolved().train_batch_size(1_000) == 48


def test_an_explicit_batch_larger_than_a_known_training_set_is_refused_before_loading():
    with pytest.raises(ConfigError, match="batch_size=512: larger than the 256 training"):
        ExperimentConfig(model="vit", train_subset=256, batch_size=512).resolved()
    with pytest.raises(ConfigError, match="batch_size=60000: larger than the 50000"):
        ExperimentConfig(dataset="cifar100", batch_size=60_000).resolved()
    # A CIFAR-100 subset beyond the dataset, refused before the files are even looked for.
    for field, n in (("train_subset", 50_001), ("test_subset", 10_001)):
        with pytest.raises(ConfigError, match=f"^{field}={n}: CIFAR-100 has only {n - 1} "):
            ExperimentConfig(dataset="cifar100", **{field: n}).resolved()
    ExperimentConfig(dataset="cifar100", train_subset=50_000, test_subset=10_000).resolved()
    # Synthetic data is generated at train_subset, beyond its default 5,000 images.
    cfg = ExperimentConfig(dataset="synthetic", train_subset=10_000, batch_size=8_000)
    assert cfg.resolved().known_train_size() == 10_000
    from helpers.data import load_dataset
    assert len(load_dataset("synthetic", train_subset=10_000, test_subset=10).y_train) == 10_000


def test_the_known_size_of_a_share_is_the_size_the_share_has_once_loaded():
    """train_fraction keeps a rounded share of each class, at least one image: the size a
    batch is checked against before loading is the one the loaded data has (a share of
    the whole, 20 of 200 images, would refuse a batch of 64 that the 100 images allow)."""
    from helpers.data import load_dataset, with_train_fraction
    for dataset, n, fraction in (("synthetic", 200, 0.1), ("synthetic-10", 50, 0.5),
                                 ("synthetic-7", 333, 0.25), ("synthetic", None, 0.33)):
        cfg = ExperimentConfig(dataset=dataset, train_subset=n, train_fraction=fraction)
        data = load_dataset(dataset, train_subset=n, test_subset=10)
        assert cfg.known_train_size() == len(with_train_fraction(data, fraction, 0).y_train)
    ExperimentConfig(dataset="synthetic", train_subset=200, train_fraction=0.1,
                     batch_size=64).resolved()
    assert ExperimentConfig(dataset="cifar100", train_fraction=0.1).known_train_size() == 5000


def test_a_config_that_spelled_out_the_old_defaults_is_not_a_changed_config():
    """Configs written before batch size and warm-up had data-fitted defaults held the
    per-model batch and 1 epoch of warm-up. Where the rules give the same (CIFAR-100 at the
    grid's budgets), old results and checkpoints still count; where not, the change shows."""
    from helpers.changes import config_changes
    for model, mode, batch, epochs in (("resnet18", "scratch", 512, 20),
                                       ("swin_small", "finetune", 128, 5)):
        new = ExperimentConfig(model=model, mode=mode, dataset="cifar100",
                               epochs=epochs).resolved().to_dict()
        old = dict(new, batch_size=batch, warmup_epochs=1.0)
        old.pop("keep_checkpoints")                     # a field that did not exist then
        assert config_changes(old, new) == []
    small = ExperimentConfig(model="vit", train_subset=256, batch_size=64,
                             epochs=3).resolved().to_dict()
    # 4 steps an epoch, 12 in all: 1 epoch of warm-up was 4 steps, the rule now gives 2.
    assert config_changes(dict(small, warmup_epochs=1.0), small) == [
        "warmup_epochs: '4 warm-up steps' -> '2 warm-up steps'"]
    assert config_changes(dict(small, batch_size=32), small) != []
