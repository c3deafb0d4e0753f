"""load_dataset: CIFAR-100 (cifar100.py), learnable synthetic images (synthetic.py) or
one's own .npz (data/README.md), as one uint8 `Dataset` record; subsets and the
train/test overlap check.
"""
from __future__ import annotations

import hashlib
import warnings

import numpy as np
import torch

from ..config import SYNTHETIC_DEFAULT_SIZES, SYNTHETIC_MAX_CLASSES, synthetic_classes
from .arrays import Dataset, load_npz
from .cifar100 import load_cifar100
from .synthetic import COLOURS, SHAPES, TEXTURES, synthetic_class, synthetic_split


def make_synthetic(n_train: int, n_test: int, num_classes: int = 100, seed: int = 0,
                   size: int = 32) -> Dataset:
    """A learnable CIFAR-shaped dataset, identical for identical arguments."""
    for name, v, lo in (("n_train", n_train, 1), ("n_test", n_test, 1), ("size", size, 8),
                        ("num_classes", num_classes, 2)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name}={v!r}: must be an integer >= {lo}")
    if num_classes > SYNTHETIC_MAX_CLASSES:
        raise ValueError(f"num_classes={num_classes}: the synthetic set has at most "
                         f"{SYNTHETIC_MAX_CLASSES} ({len(SHAPES)} shapes x {len(COLOURS)} "
                         f"colours x {len(TEXTURES)} textures)")
    # Separate streams per split: the training set does not change when n_test does.
    x_tr, y_tr = synthetic_split(n_train, num_classes, size, np.random.default_rng([seed, 0]))
    x_te, y_te = synthetic_split(n_test, num_classes, size, np.random.default_rng([seed, 1]))
    classes = ["/".join(synthetic_class(k)) for k in range(num_classes)]
    return Dataset("synthetic", torch.from_numpy(x_tr), torch.from_numpy(y_tr),
                   torch.from_numpy(x_te), torch.from_numpy(y_te), num_classes, classes)


# ---------------------------------------------------------------------------------------
# One entry point

def _subset(x, y, n, seed, split):
    if n is None or n == len(y):
        return x, y
    if n > len(y):
        raise ValueError(f"{split}_subset={n}: only {len(y)} {split} images are available")
    keep = np.random.default_rng([seed, {"train": 0, "test": 1}[split]]).permutation(len(y))[:n]
    keep = torch.from_numpy(np.sort(keep))   # original order kept; the loader shuffles anyway
    return x[keep], y[keep]


def load_dataset(spec: str, data_dir: str = "data", *, train_subset: int | None = None,
                 test_subset: int | None = None, seed: int = 0) -> Dataset:
    """spec: 'cifar100' | 'synthetic' | 'synthetic-<C>' | path/to/file.npz. Subsets are a
    seeded random sample.

    For 'synthetic' the subsets are the generated sizes (default 5000 / 1000, 100 classes;
    'synthetic-<C>' has the first C classes).
    """
    for name, v in (("train_subset", train_subset), ("test_subset", test_subset)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"{name}={v!r}: must be a positive integer or None")
    classes = synthetic_classes(spec)
    if classes:
        return make_synthetic(train_subset or SYNTHETIC_DEFAULT_SIZES[0],
                              test_subset or SYNTHETIC_DEFAULT_SIZES[1], classes, seed=seed)
    if spec == "cifar100":
        ds = load_cifar100(data_dir)
    elif str(spec).endswith(".npz"):
        ds = load_npz(spec)
    else:
        raise ValueError(f"dataset={spec!r}: use 'cifar100', 'synthetic', 'synthetic-<C>' or "
                         "a path to a .npz file")
    ds.x_train, ds.y_train = _subset(ds.x_train, ds.y_train, train_subset, seed, "train")
    ds.x_test, ds.y_test = _subset(ds.x_test, ds.y_test, test_subset, seed, "test")
    return ds


def check_overlap(dataset: Dataset) -> int:
    """Number of test images whose exact bytes also occur in the training set (warns if > 0)."""
    def digests(x):
        rows = x.reshape(len(x), -1).numpy()
        return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in rows]

    train = set(digests(dataset.x_train))
    count = sum(d in train for d in digests(dataset.x_test))
    if count:
        warnings.warn(f"{dataset.name}: {count} of {len(dataset.y_test)} test images also occur "
                      "in the training set; test accuracy overstates generalisation", stacklevel=2)
    return count
