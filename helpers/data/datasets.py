"""Datasets as uint8 tensors, and a loader that keeps them on the device.

Three sources share one `Dataset` record (x uint8 (N, H, W, 3) on the CPU, y int64 (N,)):
  * "cifar100"   - torchvision's CIFAR-100, converted once to a uint8 .npz cache;
  * "synthetic"  - learnable CIFAR-shaped images drawn from a seed (no download, for tests
                   and for machines without the real data);
  * "path.npz"   - one's own data in the same layout (see data/README.md).

CIFAR-100's download and cache live in cifar100.py, the synthetic images in synthetic.py,
and the device-resident batch loader in loader.py.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..atomic import atomic_path
from ..config import SYNTHETIC_DEFAULT_SIZES, synthetic_classes
from .synthetic import (COLOURS, MAX_SYNTHETIC_CLASSES, SHAPES, TEXTURES, synthetic_class,
                        synthetic_split)


class DatasetFormatError(ValueError):
    """A dataset file is malformed. The message names the key at fault."""


# Per-channel statistics of the CIFAR-100 training images in [0, 1] units. These are the
# widely published values (a property of the dataset itself, not of any run).
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)


@dataclass
class Dataset:
    name: str
    x_train: torch.Tensor   # uint8 (N, H, W, 3), CPU
    y_train: torch.Tensor   # int64 (N,)
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    classes: list[str] | None = None

    def describe(self) -> dict:
        return dict(name=self.name, num_classes=self.num_classes,
                    n_train=len(self.y_train), n_test=len(self.y_test))


# ---------------------------------------------------------------------------------------
# .npz datasets (one's own data, and the CIFAR-100 cache)

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_npz(path: str, *, name: str | None = None) -> Dataset:
    """Read and validate x_train/y_train/x_test/y_test (+ optional `classes`) from a .npz.

    num_classes = len(classes) if given, else max label + 1 over both splits.
    """
    path = os.fspath(path)
    if not path.endswith(".npz"):
        raise DatasetFormatError(f"{path!r}: expected a .npz file (numpy.savez) with keys "
                                 f"{', '.join(NPZ_KEYS)}")
    if not os.path.isfile(path):
        raise DatasetFormatError(f"{path!r}: no such file")
    try:
        npz = np.load(path, allow_pickle=False)
    except Exception as e:  # zipfile.BadZipFile, ValueError, OSError, EOFError ...
        raise DatasetFormatError(f"{path!r}: not a readable .npz file ({e})") from e
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DatasetFormatError(f"{path!r}: holds a single array (.npy), expected a .npz "
                                 f"archive with keys {', '.join(NPZ_KEYS)}")
    with npz:
        missing = [k for k in NPZ_KEYS if k not in npz.files]
        if missing:
            raise DatasetFormatError(f"{path!r}: missing key(s) {', '.join(missing)}; "
                                     f"found {sorted(npz.files)}, need {', '.join(NPZ_KEYS)}")
        arrays = {}
        for key in NPZ_KEYS + (("classes",) if "classes" in npz.files else ()):
            try:
                arrays[key] = npz[key]
            except Exception as e:  # object arrays need pickle, which we refuse
                raise DatasetFormatError(f"{path!r}: key {key} cannot be read without pickle "
                                         f"({e}); store plain numeric arrays") from e
    return _dataset_from_arrays(arrays, name or os.path.splitext(os.path.basename(path))[0],
                                where=path)


def _dataset_from_arrays(a: dict, name: str, where: str) -> Dataset:
    def bad(key, why):
        raise DatasetFormatError(f"{where!r}: key {key} {why}")

    for split in ("train", "test"):
        x, y = a[f"x_{split}"], a[f"y_{split}"]
        if x.ndim != 4 or x.shape[-1] != 3:
            hint = " (looks channels-first: transpose to (N, H, W, 3))" if (
                x.ndim == 4 and x.shape[1] == 3) else ""
            bad(f"x_{split}", f"has shape {x.shape}, expected (N, H, W, 3) RGB images{hint}")
        if x.dtype != np.uint8:
            bad(f"x_{split}", f"has dtype {x.dtype}, expected uint8 pixels in 0..255")
        if x.shape[0] == 0:
            bad(f"x_{split}", "holds no images")
        if x.shape[1] != x.shape[2]:
            bad(f"x_{split}", f"has non-square {x.shape[1]}x{x.shape[2]} images; every model "
                              "here takes square inputs")
        if y.ndim != 1:
            bad(f"y_{split}", f"has shape {y.shape}, expected (N,) integer labels")
        if y.dtype.kind not in "iu":
            bad(f"y_{split}", f"has dtype {y.dtype}, expected integer class labels")
        if len(y) != len(x):
            bad(f"y_{split}", f"has {len(y)} labels but x_{split} has {len(x)} images")
        if y.min() < 0:
            bad(f"y_{split}", f"has negative label {int(y.min())}; labels must be 0..C-1")
    if a["x_test"].shape[1:] != a["x_train"].shape[1:]:
        bad("x_test", f"images are {a['x_test'].shape[1:]}, but x_train's are "
                      f"{a['x_train'].shape[1:]}")
    max_label = int(max(a["y_train"].max(), a["y_test"].max()))
    classes = None
    if "classes" in a:
        c = a["classes"]
        if c.ndim != 1 or c.dtype.kind not in "US":
            bad("classes", f"has shape {c.shape} dtype {c.dtype}, expected a 1-D string array")
        classes = [s.decode() if isinstance(s, bytes) else str(s) for s in c.tolist()]
        if len(classes) <= max_label:
            bad("classes", f"names {len(classes)} classes but labels go up to {max_label}")
    num_classes = len(classes) if classes else max_label + 1
    t = {k: torch.from_numpy(np.ascontiguousarray(a[k])) for k in NPZ_KEYS}
    return Dataset(name, t["x_train"], t["y_train"].long(), t["x_test"], t["y_test"].long(),
                   num_classes, classes)


def _save_npz_atomic(path: str, **arrays) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file."""
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)   # uncompressed: the cache must load in well under a second


def make_synthetic(n_train: int, n_test: int, num_classes: int = 100, seed: int = 0,
                   size: int = 32) -> Dataset:
    """A learnable CIFAR-shaped dataset, identical for identical arguments."""
    for name, v, lo in (("n_train", n_train, 1), ("n_test", n_test, 1), ("size", size, 8),
                        ("num_classes", num_classes, 2)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name}={v!r}: must be an integer >= {lo}")
    if num_classes > MAX_SYNTHETIC_CLASSES:
        raise ValueError(f"num_classes={num_classes}: the synthetic set has at most "
                         f"{MAX_SYNTHETIC_CLASSES} ({len(SHAPES)} shapes x {len(COLOURS)} "
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


# The grid's rows share one dataset: in one process (the runner's --no-notebooks mode, the
# GPU check) it is loaded once and kept (the last one only, to bound memory); a row gets a
# copy of the record sharing the tensors, which nothing in the engine writes to.
_LOADED: dict = {}
# Synthetic sets at least this large are kept on disk in <data_dir>/synthetic/ (generating
# 60,000 images takes seconds, loading them a fraction of one), for notebook runs, where
# each row is a new process. Smaller ones are generated faster than they would load.
SYNTHETIC_DISK_CACHE_MIN = 20_000


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
    try:
        stamp = os.stat(spec).st_mtime_ns if str(spec).endswith(".npz") else None
    except OSError:
        stamp = None
    key = (spec, os.path.abspath(data_dir), train_subset, test_subset, seed, stamp)
    if key not in _LOADED:
        ds = _load(spec, data_dir, train_subset, test_subset, seed)
        _LOADED.clear()
        _LOADED[key] = ds
    return dataclasses.replace(_LOADED[key])


def _synthetic(classes: int, n_train: int, n_test: int, seed: int, data_dir: str) -> Dataset:
    if n_train + n_test < SYNTHETIC_DISK_CACHE_MIN:
        return make_synthetic(n_train, n_test, classes, seed=seed)
    path = os.path.join(data_dir, "synthetic", f"{classes}c-{n_train}-{n_test}-seed{seed}.npz")
    if os.path.exists(path):
        try:
            return load_npz(path, name="synthetic")
        except (DatasetFormatError, OSError, ValueError):
            pass                                   # a damaged cache: make it again
    ds = make_synthetic(n_train, n_test, classes, seed=seed)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        _save_npz_atomic(path, x_train=ds.x_train.numpy(), y_train=ds.y_train.numpy(),
                         x_test=ds.x_test.numpy(), y_test=ds.y_test.numpy(),
                         classes=np.array(ds.classes))
    except OSError:                                # a read-only data folder: no cache
        pass
    return ds


def _load(spec, data_dir, train_subset, test_subset, seed) -> Dataset:
    classes = synthetic_classes(spec)
    if classes:
        return _synthetic(classes, train_subset or SYNTHETIC_DEFAULT_SIZES[0],
                          test_subset or SYNTHETIC_DEFAULT_SIZES[1], seed, data_dir)
    if spec == "cifar100":
        from .cifar100 import load_cifar100
        ds = load_cifar100(data_dir)
    elif str(spec).endswith(".npz"):
        ds = load_npz(spec)
    else:
        raise ValueError(f"dataset={spec!r}: use 'cifar100', 'synthetic', 'synthetic-<C>' or "
                         "a path to a .npz file")
    ds.x_train, ds.y_train = _subset(ds.x_train, ds.y_train, train_subset, seed, "train")
    ds.x_test, ds.y_test = _subset(ds.x_test, ds.y_test, test_subset, seed, "test")
    return ds


def channel_stats(x_uint8_nhwc: torch.Tensor) -> tuple[tuple, tuple]:
    """Per-channel mean and std in [0, 1] units, e.g. to normalise one's own .npz data."""
    x = x_uint8_nhwc.reshape(-1, x_uint8_nhwc.shape[-1]).double() / 255
    return tuple(x.mean(0).tolist()), tuple(x.std(0).tolist())


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
