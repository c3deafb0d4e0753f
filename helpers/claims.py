"""Problem 3: experiments that test the homework's own explanations.

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

from dataclasses import dataclass

from .config import CIFAR100_SIZES, row
from .rules import AUTO_WARMUP_MAX_SHARE

FRACTIONS = (0.1, 0.25, 0.5, 1.0)
RESOLUTIONS = (32, 64, 112, 224)
FINETUNE_MODES = ("finetune", "finetune_full")
DATA_VITS = (dict(patch_size=4, depth=2, heads=2, dim=128),      # Table 1's two smallest
             dict(patch_size=4, depth=4, heads=4, dim=256))


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


# The default sizes, a choice rather than a measurement: all 50,000 training images for 5
# epochs of the 100 % runs, and 9,000 images per resolution run for the homework's 5
# epochs, meant as a few minutes of one H100. The runner's --demo presets have their own.
DEFAULT_SIZES = ClaimsSizes(data_images=None, data_epochs=5, data_batch=512, res_images=9_000,
                            res_epochs=5, test_images=None)


def data_rows(s: ClaimsSizes, n_train: int = CIFAR100_SIZES[0]) -> list[dict]:
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


