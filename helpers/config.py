"""One experiment, one config.

`ExperimentConfig` is the single source of truth for a run. The notebooks' `parameters`
cells mirror its fields, `from_params` rejects unknown names, and `resolved()` fills the
per-model defaults and validates every value before anything expensive happens.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from .fields import field_types, type_problem
from .rules import AUTO_WARMUP_MAX_SHARE, auto_batch_size

# Every name of the homework is defined here, once: a model's row label, its problem and
# its native input side (MODELS), its training defaults (TRAIN_DEFAULTS), and the rule that
# derives a run's name, label and family from its config (ExperimentConfig's architecture,
# label, family and default_run_name; `row` for a grid entry). Nothing else builds or
# parses a run name. helpers.models registers the same model names (a test keeps
# them equal); validating a config must not import torch/timm, so a typo in a notebook
# fails in milliseconds.
@dataclass(frozen=True)
class ModelSpec:
    label: str           # the row label ('ViT' gets its shape: 'ViT (4L-4H-256)')
    problem: int         # the table its rows belong to (Problem 3's runs say their study)
    img_size: int        # native input side
    family: str          # cnn | vit | swin: the plausibility ceilings' family


MODELS = {"resnet18": ModelSpec("ResNet-18", 1, 32, "cnn"),
          "vit": ModelSpec("ViT", 1, 32, "vit"),
          "swin_tiny": ModelSpec("Swin-Tiny", 2, 224, "swin"),
          "swin_small": ModelSpec("Swin-Small", 2, 224, "swin")}
SWIN_VARIANTS = ("tiny", "small")
SWIN_MODES = ("finetune", "finetune_full", "scratch")   # in the order of Table 2
# How each mode is written: in Table 2's column, in a sentence, and in a plot legend.
MODE_WORDS = {"finetune": ("Fine-tuned (frozen backbone)", "frozen-backbone fine-tune",
                           "frozen FT"),
              "finetune_full": ("Fine-tuned (full)", "full fine-tune", "full FT"),
              "scratch": ("From scratch", "from scratch", "scratch")}
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
OPTIMIZERS = ("adamw", "sgd")
BUILTIN_DATASETS = ("cifar100", "synthetic")
# Problem 3 tests the homework's claims; a run of it belongs to one study (helpers/claims.py).
STUDIES = ("data_efficiency", "resolution")
# weights=RANDOM_INIT fine-tunes a randomly initialised Swin: the offline demo's stand-in for
# ImageNet weights, so the fine-tune code paths run without a download (labelled as such).
RANDOM_INIT = "random-init"


class ConfigError(ValueError):
    """A config value is unknown or invalid. The message names the field."""


def is_swin(model) -> bool:
    """Whether a model name is one of the Swins (Problem 2's models)."""
    spec = MODELS.get(model) if isinstance(model, str) else None
    return bool(spec and spec.family == "swin")


def problem_of(model: str, study: str | None = None) -> int:
    """Which problem a run belongs to: 3 for a claims study, else its model's table."""
    return 3 if study else MODELS[model].problem


def models_of(problem: int) -> tuple[str, ...]:
    """The model names whose rows belong to a problem's table, in MODELS order."""
    return tuple(m for m, spec in MODELS.items() if spec.problem == problem)


def family_of(model: str, mode: str = "scratch") -> str | None:
    """'cnn_scratch', 'swin_finetune', ...: a model's family and how it starts (None for
    a model this code does not know, e.g. in an old result file)."""
    spec = MODELS.get(model) if isinstance(model, str) else None
    return spec and f"{spec.family}_{mode}"


def native_img_size(model: str) -> int:
    return MODELS[model].img_size


# Per-model training defaults, used where the config leaves a value as None.
# Why these: ResNet-18 trains best with SGD+nesterov at a large batch; the ViTs and Swin
# want AdamW with decoupled weight decay. A frozen backbone only trains a linear head,
# which tolerates a 10x larger learning rate than full fine-tuning.
TRAIN_DEFAULTS = {
    "resnet18": dict(optimizer="sgd", lr=0.2, weight_decay=5e-4, batch_size=512),
    "vit": dict(optimizer="adamw", lr=1e-3, weight_decay=0.05, batch_size=512),
    ("swin", "scratch"): dict(optimizer="adamw", lr=5e-4, weight_decay=0.05, batch_size=128),
    ("swin", "finetune"): dict(optimizer="adamw", lr=1e-3, weight_decay=1e-4, batch_size=128),
    ("swin", "finetune_full"): dict(optimizer="adamw", lr=1e-4, weight_decay=0.05, batch_size=128),
}
SWIN_PATCH = 4          # Swin's patch side; timm pads the windows and merges of other sizes
# Training-set sizes known without loading anything: what a batch size is checked against
# before the data loads. A .npz file's size is known only once it is loaded.
CIFAR100_SIZES = (50_000, 10_000)                 # (train, test) images, in 100 classes
BUILTIN_TRAIN_SIZES = {"cifar100": CIFAR100_SIZES[0], "synthetic": 5_000}
SYNTHETIC_DEFAULT_SIZES = (BUILTIN_TRAIN_SIZES["synthetic"], 1_000)  # (train, test) images
# "synthetic" has 100 classes; "synthetic-<C>" the first C of them (2 <= C <= 100), e.g.
# the demo's "synthetic-10". Class k is a (shape, colour, texture) triple (data/synthetic.py).
SYNTHETIC_MAX_CLASSES = 100
SYNTHETIC_MAX_IMAGES = 500_000        # per split: 1.5 GB of 32 px images, made in memory


def synthetic_classes(dataset: str) -> int | None:
    """The number of classes of a synthetic dataset spec, None for any other dataset;
    ValueError for a malformed synthetic spec."""
    if dataset == "synthetic":
        return SYNTHETIC_MAX_CLASSES
    if not (isinstance(dataset, str) and dataset.startswith("synthetic-")):
        return None
    tail = dataset[len("synthetic-"):]
    if not tail.isdigit() or not 2 <= int(tail) <= SYNTHETIC_MAX_CLASSES:
        raise ValueError(f"dataset={dataset!r}: synthetic-<C> needs a class count C from 2 "
                         f"to {SYNTHETIC_MAX_CLASSES}, e.g. synthetic-10")
    return int(tail)


def swin_variant(model: str) -> str:
    """'swin_tiny' -> 'tiny': the Swin size a model name stands for (problem2.ipynb's
    `variant` parameter)."""
    if not is_swin(model):
        raise ValueError(f"model={model!r} is not a Swin model; Swin models are "
                         f"{', '.join(models_of(2))}")
    return model.removeprefix("swin_")


SEED_MAX = 2**63 - 1                 # torch.manual_seed's range


# Seeds: each (row, seed) is one run with its own result file and checkpoint. Seed 0 keeps
# the row's own name, so a single-seed grid is what it always was, and adding seeds 1 and 2
# later reuses the seed-0 results.
def seed_run_name(row: str, seed: int) -> str:
    """The run name of one seed of a grid row: 'p1-resnet18', 'p1-resnet18-seed2'."""
    return row if not seed else f"{row}-seed{seed}"


def row_name(run_name: str, seed: int | None) -> str:
    """The grid row a result belongs to: seed_run_name undone (given the run's seed)."""
    suffix = f"-seed{seed}"
    return run_name[:-len(suffix)] if seed and run_name.endswith(suffix) else run_name


@dataclass
class ExperimentConfig:
    # --- what to train -------------------------------------------------------------
    model: str = "resnet18"          # resnet18 | vit | swin_tiny | swin_small
    patch_size: int = 4              # ViT only: patch side in pixels
    dim: int = 256                   # ViT only: embedding width
    depth: int = 4                   # ViT only: number of encoder blocks
    heads: int = 4                   # ViT only: attention heads (must divide dim)
    mode: str = "scratch"            # Swin only: scratch | finetune (frozen backbone) |
    #                                  finetune_full
    weights: str | None = None       # Swin fine-tune: None = timm hub, a local file, or
    #                                  "random-init"
    img_size: int | None = None      # model input side; None = native (32, or 224 for Swin)
    study: str | None = None         # Problem 3 only: data_efficiency | resolution
    # --- data ----------------------------------------------------------------------
    dataset: str = "synthetic"       # cifar100 | synthetic | path/to/file.npz
    data_dir: str = "data"           # where CIFAR-100 is downloaded and cached
    train_subset: int | None = None  # None = all training images (synthetic: 5000)
    test_subset: int | None = None   # None = all test images (synthetic: 1000)
    train_fraction: float | None = None  # keep this share of each class's training images;
    #                                  the subsets of one seed are nested (data/subsets.py)
    augment: bool = True             # random crop (pad 4) + horizontal flip while training
    train_eval_images: int = 1000    # fixed, unaugmented training images scored at every
    #                                  evaluation (train accuracy for the generalisation gap)
    # --- optimisation --------------------------------------------------------------
    epochs: int = 10                 # full passes over the training set
    batch_size: int | None = None    # None = per-model default, smaller for small data
    lr: float | None = None          # peak learning rate; None = per-model default
    weight_decay: float | None = None  # None = per-model default
    optimizer: str | None = None     # adamw | sgd; None = per-model default
    warmup_epochs: float | None = None  # linear warm-up; None = 1 epoch, at most 20 % of steps
    label_smoothing: float = 0.1     # cross-entropy label smoothing
    grad_clip: float | None = 1.0    # max gradient norm; None = no clipping
    eval_batch_size: int = 1024      # evaluation batch (no gradients, so it can be large)
    eval_every: int = 1              # evaluate after every k-th epoch, and after the last
    # --- execution -----------------------------------------------------------------
    seed: int = 0                    # seeds data order, augmentation and init
    device: str = "auto"             # auto | cpu | cuda | cuda:N | mps
    precision: str = "auto"          # auto (bf16 > fp16 > fp32 by device) | bf16 | fp16 | fp32
    compile: bool = False            # torch.compile the whole model (compiled in epoch 1)
    run_name: str | None = None      # result file name; None = derived from the model
    results_dir: str = "results"     # result JSONs; checkpoints go to <results_dir>/checkpoints
    keep_checkpoints: bool = False   # keep the checkpoint after the run completes

    # ------------------------------------------------------------------------------
    @classmethod
    def from_params(cls, **params) -> "ExperimentConfig":
        """Build from notebook/papermill parameters; unknown names are an error."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(params) - set(names))
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; valid fields: {names}")
        return cls(**params)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def problem(self) -> int:
        return problem_of(self.model, self.study)

    @property
    def is_swin(self) -> bool:
        return is_swin(self.model)

    @property
    def checkpoint_path(self) -> str:
        return os.path.join(self.results_dir, "checkpoints", f"{self.run_name}.pt")

    @property
    def result_path(self) -> str:
        return os.path.join(self.results_dir, f"{self.run_name}.json")

    def model_kwargs(self) -> dict:
        """The keyword arguments `helpers.models.build_model` takes for this model."""
        if self.model == "vit":
            return dict(img_size=self.img_size, patch_size=self.patch_size, dim=self.dim,
                        depth=self.depth, heads=self.heads)
        if self.is_swin:
            return dict(img_size=self.img_size, mode=self.mode, weights=self.weights)
        return {}

    # --- the row: its name, label and family, derived here and nowhere else -----------
    @property
    def architecture(self) -> str:
        """The model as trained, without the problem: 'resnet18', 'vit-4L-4H-256' (patch
        other than 4: '-p8'), 'swin_tiny-finetune' (a fine-tune mode, or scratch)."""
        if self.model == "vit":
            return f"vit-{self._vit_shape()}" + (
                f"-p{self.patch_size}" if self.patch_size != 4 else "")
        return f"{self.model}-{self.mode}" if self.is_swin else self.model

    def _vit_shape(self) -> str:
        return f"{self.depth}L-{self.heads}H-{self.dim}"

    @property
    def label(self) -> str:
        """The row label of the report's tables: 'ResNet-18', 'ViT (4L-4H-256)' (other
        patches: 'ViT (4L-4H-256, patch 8)'), 'Swin-Tiny' (the mode is a column)."""
        label = MODELS[self.model].label
        if self.model == "vit":
            patch = "" if self.patch_size == 4 else f", patch {self.patch_size}"
            label = f"{label} ({self._vit_shape()}{patch})"
        return label

    @property
    def family(self) -> str:
        """The model family and how it starts: 'cnn_scratch', 'swin_finetune', ..."""
        return family_of(self.model, self.mode)

    def default_run_name(self) -> str:
        """p1-resnet18, p1-vit-4L-4H-256, p2-swin_tiny-finetune; in Problem 3 the study and
        its variable: p3-data-resnet18-f25, p3-res-swin_tiny-finetune-64px; seeds other
        than 0 add '-seed<k>' (`seed_run_name`)."""
        base = self.architecture
        if self.study == "data_efficiency":
            name = f"p3-data-{base}-f{round(100 * (self.train_fraction or 1))}"
        elif self.study == "resolution":
            name = f"p3-res-{base}-{self.img_size or native_img_size(self.model)}px"
        else:
            name = f"p{self.problem}-{base}"
        return seed_run_name(name, self.seed)

    def resolved(self) -> "ExperimentConfig":
        """A copy with every None default filled in, after validating all fields."""
        self.validate()
        defaults = TRAIN_DEFAULTS[self._defaults_key()]
        out = dataclasses.replace(self)
        for name, value in defaults.items():
            if name != "batch_size" and getattr(out, name) is None:
                setattr(out, name, value)   # batch_size None stays "auto": see train_batch_size
        if out.img_size is None:
            out.img_size = native_img_size(self.model)
        if out.run_name is None:
            out.run_name = out.default_run_name()
        out.validate()
        return out

    def default_batch_size(self) -> int:
        """The per-model batch size before it is fitted to the data."""
        return TRAIN_DEFAULTS[self._defaults_key()]["batch_size"]

    def _defaults_key(self):
        return ("swin", self.mode) if self.is_swin else self.model

    def known_train_size(self) -> int | None:
        """Training images this config will train on, if known without loading (else None).
        train_fraction keeps round(n_c * fraction), at least one, of each class's n_c images
        (data.nested_fraction): exact for classes as balanced as the synthetic data's and
        all of CIFAR-100's, within a random CIFAR subset's imbalance otherwise."""
        synthetic = synthetic_classes(self.dataset)          # generated at train_subset
        full = BUILTIN_TRAIN_SIZES.get("synthetic" if synthetic else self.dataset)
        if self.train_subset is not None:
            full = self.train_subset        # no larger than the dataset: validate()
        if full is None or self.train_fraction is None:
            return full
        classes = synthetic or 100                           # or CIFAR-100's
        (base, extra), f = divmod(full, classes), self.train_fraction
        per_class = [max(1, round(n * f)) if n else 0 for n in (base + 1, base)]
        return extra * per_class[0] + (classes - extra) * per_class[1]

    def train_batch_size(self, n_train: int) -> int:
        """The training batch: batch_size if set, else the default fitted to n_train."""
        return self.batch_size or auto_batch_size(self.default_batch_size(), n_train)

    def check_batch_size(self, n_train: int) -> None:
        """ConfigError if an explicit batch_size cannot give one full batch per epoch."""
        if self.batch_size is not None and self.batch_size > n_train:
            raise ConfigError(f"batch_size={self.batch_size}: larger than the {n_train} "
                              "training images, so an epoch would have no full batch; "
                              "lower it, or leave it unset to fit it to the data")

    def validate(self) -> None:
        """Raise ConfigError naming the first bad field. Cheap: no torch import."""
        problem = type_problem(self)
        if problem:
            raise ConfigError(problem)
        if self.model not in MODELS:
            _bad(self, "model", f"unknown model; valid models: {', '.join(MODELS)}")
        _check_numbers(self)
        _check_choices(self)
        _check_model_fields(self)
        _check_dataset_and_names(self)


# Keys of a grid entry that describe it rather than set a config field.
ENTRY_ONLY_KEYS = ("run_name", "label", "problem")


def row(overrides: dict) -> dict:
    """A grid entry: config overrides with the run name, label and problem that their
    config derives (helpers.grid's tables and helpers.claims' studies are lists of them)."""
    cfg = ExperimentConfig(**row_overrides(overrides))
    return dict(overrides, run_name=cfg.default_run_name(), label=cfg.label,
                problem=cfg.problem)


def row_overrides(entry: dict) -> dict:
    """A grid entry's config overrides: the entry without what describes it."""
    return {k: v for k, v in entry.items() if k not in ENTRY_ONLY_KEYS}


def _bad(cfg: ExperimentConfig, name: str, why: str):
    raise ConfigError(f"{name}={getattr(cfg, name)!r}: {why}")


def _check_numbers(cfg: ExperimentConfig) -> None:
    for name in ("epochs", "patch_size", "dim", "depth", "heads", "eval_batch_size", "eval_every",
                 "batch_size", "train_subset", "test_subset", "img_size"):
        v = getattr(cfg, name)
        if v is not None and v < 1:
            _bad(cfg, name, "must be a positive integer"
                 + (" or None" if field_types(ExperimentConfig)[name][1] else ""))
    if cfg.train_eval_images < 0:
        _bad(cfg, "train_eval_images", "must be 0 (none) or a positive number of images")
    if cfg.train_fraction is not None and not 0 < cfg.train_fraction <= 1:
        _bad(cfg, "train_fraction", "must be in (0, 1], or None for all training images")
    for name in ("lr", "grad_clip"):
        v = getattr(cfg, name)
        if v is not None and not v > 0:
            _bad(cfg, name, "must be a positive number or None")
    if cfg.weight_decay is not None and not cfg.weight_decay >= 0:
        _bad(cfg, "weight_decay", "must be >= 0 or None")
    if not (0 <= cfg.label_smoothing < 1):
        _bad(cfg, "label_smoothing", "must be in [0, 1)")
    if cfg.warmup_epochs is not None and not (0 <= cfg.warmup_epochs <= cfg.epochs / 2):
        _bad(cfg, "warmup_epochs", f"must be between 0 and half of epochs={cfg.epochs}, or "
                                   f"None (automatic: 1 epoch, at most "
                                   f"{AUTO_WARMUP_MAX_SHARE * 100:.0f} % of the steps)")
    if not 0 <= cfg.seed <= SEED_MAX:
        _bad(cfg, "seed", "must be a non-negative integer")


def _check_choices(cfg: ExperimentConfig) -> None:
    for name in ("data_dir", "results_dir"):
        if not getattr(cfg, name):
            _bad(cfg, name, "must be a non-empty path")
    if cfg.optimizer is not None and cfg.optimizer not in OPTIMIZERS:
        _bad(cfg, "optimizer", f"valid optimizers: {', '.join(OPTIMIZERS)}")
    if cfg.precision not in PRECISIONS:
        _bad(cfg, "precision", f"valid precisions: {', '.join(PRECISIONS)}")
    if not (cfg.device == "auto" or cfg.device in ("cpu", "mps", "cuda")
            or (cfg.device.startswith("cuda:") and cfg.device[5:].isdigit())):
        _bad(cfg, "device", "valid devices: auto, cpu, cuda, cuda:N, mps")


def _check_model_fields(cfg: ExperimentConfig) -> None:
    """Fields that only some models use fit the model."""
    if cfg.mode not in SWIN_MODES:
        _bad(cfg, "mode", f"valid modes: {', '.join(SWIN_MODES)}")
    if not cfg.is_swin and cfg.mode != "scratch":
        _bad(cfg, "mode", f"only Swin models are fine-tuned; {cfg.model} trains from scratch")
    if cfg.weights not in (None, RANDOM_INIT) and not os.path.isfile(cfg.weights):
        _bad(cfg, "weights", f"file not found (or {RANDOM_INIT!r} for a random init)")
    if cfg.study is not None and cfg.study not in STUDIES:
        _bad(cfg, "study", f"valid studies: {', '.join(STUDIES)}, or None")
    if cfg.model == "vit":
        if cfg.dim % cfg.heads:
            _bad(cfg, "heads", f"must divide dim={cfg.dim}")
        size = cfg.img_size or native_img_size("vit")
        if size % cfg.patch_size:
            _bad(cfg, "patch_size", f"must divide the image size {size}")
    if cfg.is_swin and cfg.img_size is not None and cfg.img_size % SWIN_PATCH:
        _bad(cfg, "img_size", f"Swin needs a multiple of {SWIN_PATCH} (its patch side)")


def _check_dataset_and_names(cfg: ExperimentConfig) -> None:
    """The dataset exists, the run name is a file name, and a set batch size fits the data."""
    try:
        synthetic = synthetic_classes(cfg.dataset)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    if cfg.dataset not in BUILTIN_DATASETS and not synthetic:
        if not cfg.dataset.endswith(".npz"):
            _bad(cfg, "dataset", f"use {' | '.join(BUILTIN_DATASETS)}, synthetic-<C> (C "
                                 "classes) or a path to a .npz file")
        if not os.path.isfile(cfg.dataset):
            _bad(cfg, "dataset", "no such .npz file")
    cifar = cfg.dataset == "cifar100"
    if cifar or synthetic:                     # checked here, not once the data is loaded
        limits = CIFAR100_SIZES if cifar else (SYNTHETIC_MAX_IMAGES,) * 2
        for name, n in zip(("train_subset", "test_subset"), limits):
            if (getattr(cfg, name) or 0) > n:
                _bad(cfg, name, f"CIFAR-100 has only {n} {name.split('_')[0]} images" if cifar
                     else f"synthetic images are made in memory: at most {n}")
    if not cfg.run_name and cfg.run_name is not None:
        _bad(cfg, "run_name", "must be a non-empty name or None")
    if cfg.run_name and (os.sep in cfg.run_name or cfg.run_name.startswith(".")):
        _bad(cfg, "run_name", "must be a plain file name (no path separators)")
    n_train = cfg.known_train_size()
    if n_train is not None:
        cfg.check_batch_size(n_train)
