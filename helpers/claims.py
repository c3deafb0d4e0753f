"""Problem 3: experiments that test the homework's own explanations, sized to a GPU budget.

The homework explains its results with six claims and tests none of them:
  1. ViTs trail a CNN on small data (no inductive bias) and close the gap with more data.
  2. ViTs generalise poorly on small data: they overfit.
  3. Self-attention relates the whole image; a CNN stays local.
  4. Pretrained Swin transfers poorly because CIFAR's 32 px is far below ImageNet's 224.
  5. Five epochs are too few for the freshly initialised head of a frozen fine-tune.
  6. Larger models are better, but cost more.

Two studies train new runs; the other claims read what runs record:
  data_efficiency (claims 1-3): ResNet-18 and two ViTs on 10, 25, 50 and 100 % of the
      training set (class-balanced and nested: data/subsets.py) at MATCHED OPTIMISER STEPS:
      every run takes the steps of the 100 % run, with the same batch and warm-up steps, so
      a smaller share is passed over more often and only the number of distinct images
      changes. Each run is evaluated about once per 100 % epoch's worth of steps, so the
      curves share their x-axis. Every run records train accuracy on a fixed sample (claim
      2) and how far the trained model looks (helpers/probes.py, claim 3).
  resolution (claims 4, 5): Swin-T fine-tuned, frozen and full, at 32, 64, 112 and 224 px
      for the homework's 5 epochs: accuracy beside time per epoch. The per-epoch curves of
      the 224-px pair show whether the frozen head has levelled off by epoch 5.
  Claim 6 reads Problems 1 and 2.
The ViTs are the two cheapest presets: Problem 1 already compares sizes, and here the
budget goes into steps.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .config import ExperimentConfig, is_swin, row, row_overrides
from .rules import AUTO_WARMUP_MAX_SHARE

FRACTIONS = (0.1, 0.25, 0.5, 1.0)
RESOLUTIONS = (32, 64, 112, 224)
FINETUNE_MODES = ("finetune", "finetune_full")
DATA_VITS = (dict(patch_size=4, depth=2, heads=2, dim=128),      # Table 1's two smallest
             dict(patch_size=4, depth=4, heads=4, dim=256))

# ---------------------------------------------------------------------------- the cost model
# Training images per second on one H100 (bf16, eager), measured by `python -m helpers.bench`
# and committed in benchmarks/reference/h100-2026-11-26/ (a test keeps these equal to the
# files), by the run's architecture (helpers.config). An H200 is at least as fast, so a
# plan that fits an H100 fits both.
H100_TRAIN_IMG_S = {"resnet18": 42_223, "vit-2L-2H-128": 69_416, "vit-4L-4H-256": 41_269,
                    "swin_tiny-finetune": 5_175, "swin_tiny-finetune_full": 1_970}  # Swin: 224 px
SWIN_MEASURED_PX = 224
# Evaluation is a forward pass only: the same files show 4.5-6x the training rate for the
# Problem 1 models; the cost model assumes 3x.
EVAL_SPEEDUP = 3
# A Swin image costs (px / 224)^2 of a 224-px one in FLOPs, but small inputs leave the GPU
# bound by kernel launches rather than FLOPs; the model assumes at most this much speed-up.
MAX_SMALL_INPUT_SPEEDUP = 8
# Per run, beyond its epochs: kernel start and imports, the data to the device, building
# and measuring the model, the first epoch's warm-up and the probes. The same files' grid
# check spent about 4 s per row outside its epochs' steady state without a notebook; 8 s
# leaves room for the notebook's cells.
RUN_OVERHEAD_S = 8.0
CIFAR100_TRAIN, CIFAR100_TEST = 50_000, 10_000
TRAIN_EVAL_IMAGES = ExperimentConfig.train_eval_images    # the fixed train sample's size
DEFAULT_BUDGET_S = 300.0           # the family's share of one GPU: 5 minutes


@dataclass(frozen=True)
class ClaimsSizes:
    """How big Problem 3's runs are. None for images means the whole split."""
    data_images: int | None         # training images at 100 % (None: all)
    data_epochs: int                # epochs of the 100 % run; smaller shares match its steps
    data_batch: int                 # one batch size for every data-efficiency run
    res_images: int | None          # training images of each resolution run
    res_epochs: int
    test_images: int | None         # test images of every Problem 3 run
    resolutions: tuple[int, ...] = RESOLUTIONS
    weights_default: str | None = None    # Swin weights when none are given (None: the hub)

    def check(self, n_train: int) -> None:
        """ValueError naming the size when the smallest share cannot fill one batch."""
        smallest = round((self.data_images or n_train) * min(FRACTIONS))
        if self.data_batch > smallest:
            raise ValueError(f"data_batch={self.data_batch}: larger than the "
                             f"{smallest} images of the {min(FRACTIONS):.0%} share")
        if self.data_epochs < 2:
            raise ValueError(f"data_epochs={self.data_epochs}: at least 2 (one for warm-up)")


def data_rows(s: ClaimsSizes, n_train: int = CIFAR100_TRAIN) -> list[dict]:
    """The data-efficiency runs: every model at every share, at the 100 % run's steps."""
    s.check(n_train)
    full = s.data_images or n_train
    steps_full = full // s.data_batch
    total = steps_full * s.data_epochs
    warm = min(steps_full, int(AUTO_WARMUP_MAX_SHARE * total))      # the automatic rule's
    rows = []
    for model in [dict(model="resnet18"), *(dict(model="vit", **shape) for shape in DATA_VITS)]:
        for f in FRACTIONS:
            steps = round(full * f) // s.data_batch
            epochs = max(1, round(total / steps))
            rows.append(row(dict(model, study="data_efficiency", train_fraction=f,
                                 train_subset=s.data_images, test_subset=s.test_images,
                                 epochs=epochs, batch_size=s.data_batch,
                                 eval_every=max(1, round(epochs / s.data_epochs)),
                                 warmup_epochs=round(warm / steps, 4))))
    return rows


def resolution_rows(s: ClaimsSizes) -> list[dict]:
    """The resolution runs: Swin-T, frozen and full fine-tune, at every input size."""
    return [row(dict(model="swin_tiny", mode=mode, study="resolution", img_size=px,
                     train_subset=s.res_images, test_subset=s.test_images,
                     epochs=s.res_epochs))
            for px in s.resolutions for mode in FINETUNE_MODES]


def problem3_runs(sizes: ClaimsSizes | None = None) -> list[dict]:
    """Every Problem 3 run, data efficiency first; `sizes` default to DEFAULT_SIZES."""
    s = sizes or DEFAULT_SIZES
    return data_rows(s) + resolution_rows(s)


def architecture(entry: dict) -> str:
    """The architecture of a grid entry (helpers.config), the cost model's key."""
    return ExperimentConfig(**row_overrides(entry)).architecture


# ---------------------------------------------------------------------------- the arithmetic
def train_img_s(entry: dict) -> float:
    """The cost model's training images per second of one row on an H100."""
    ips = H100_TRAIN_IMG_S[architecture(entry)]
    if entry.get("img_size") and is_swin(entry["model"]):
        ips *= min((SWIN_MEASURED_PX / entry["img_size"]) ** 2, MAX_SMALL_INPUT_SPEEDUP)
    return ips


def row_cost_s(row: dict, n_train: int = CIFAR100_TRAIN, n_test: int = CIFAR100_TEST) -> float:
    """Seconds one row costs by the model: overhead, its epochs' training images, and at
    every evaluation the test set and the fixed train sample at EVAL_SPEEDUP times the rate."""
    images = round((row.get("train_subset") or n_train) * row.get("train_fraction", 1.0))
    steps = images // row["batch_size"] if row.get("batch_size") else None
    trained = steps * row["batch_size"] if steps else images            # drop_last
    evals = (row.get("test_subset") or n_test) + min(TRAIN_EVAL_IMAGES, images)
    ips = train_img_s(row)
    n_evals = math.ceil(row["epochs"] / row.get("eval_every", 1))
    return RUN_OVERHEAD_S + row["epochs"] * trained / ips + n_evals * evals / (EVAL_SPEEDUP * ips)


def claims_cost_s(sizes: ClaimsSizes) -> float:
    """What the whole family costs on one H100 by the model above."""
    return sum(row_cost_s(r) for r in problem3_runs(sizes))


def sizes_for_budget(budget_s: float) -> ClaimsSizes:
    """The largest sizes whose claims_cost_s fits budget_s: the per-run overhead first, then
    half of what is left to each study, spent on the data-efficiency epochs (all 50,000
    images, batch 512) and on the resolution runs' training images (the homework's 5
    epochs, whole thousands). ValueError when not even the smallest sizes fit."""
    if not (isinstance(budget_s, (int, float)) and math.isfinite(budget_s) and budget_s > 0):
        raise ValueError(f"claims budget {budget_s!r}: must be a positive number of seconds")
    base = ClaimsSizes(data_images=None, data_epochs=2, data_batch=512, res_images=1_000,
                       res_epochs=5, test_images=None)
    least = claims_cost_s(base)
    if least > budget_s:
        raise ValueError(f"claims budget {budget_s:g} s: too small; the smallest sizes "
                         f"(2 epochs, 1,000 images per resolution run) cost {least:.0f} s")
    overhead = RUN_OVERHEAD_S * len(problem3_runs(base))
    half = (budget_s - overhead) / 2

    def study_cost(s: ClaimsSizes, study: str) -> float:
        return sum(row_cost_s(r) - RUN_OVERHEAD_S for r in problem3_runs(s)
                   if r["study"] == study)

    epochs, images = 2, 1_000
    while study_cost(dataclasses.replace(base, data_epochs=epochs + 1), "data_efficiency") <= half:
        epochs += 1
    while (images < CIFAR100_TRAIN and study_cost(
            dataclasses.replace(base, res_images=images + 1_000), "resolution") <= half):
        images += 1_000
    return dataclasses.replace(base, data_epochs=epochs, res_images=images)


DEFAULT_SIZES = sizes_for_budget(DEFAULT_BUDGET_S)
