"""The Dataset record and .npz files: what every data source (cifar100.py, synthetic data,
one's own .npz) is turned into. x is uint8 (N, H, W, 3) on the CPU, y int64 (N,)."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from ..atomic import atomic_path


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
MAX_CLASSES = 100_000      # a label beyond it is a mistake: its head would be that wide


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
    return dataset_from_arrays(arrays, name or os.path.splitext(os.path.basename(path))[0],
                                where=path)


def dataset_from_arrays(a: dict, name: str, where: str) -> Dataset:
    def bad(key, why):
        raise DatasetFormatError(f"{where!r}: key {key} {why}")

    for key in a:
        if not isinstance(a[key], np.ndarray):    # a member that is not .npy data: raw bytes
            bad(key, f"is not a NumPy array ({type(a[key]).__name__}); write it with numpy.savez")
    for split in ("train", "test"):
        x, y = a[f"x_{split}"], a[f"y_{split}"]
        if x.ndim != 4 or x.shape[-1] != 3:
            hint = " (looks channels-first: transpose to (N, H, W, 3))" if (
                x.ndim == 4 and x.shape[1] == 3) else ""
            bad(f"x_{split}", f"has shape {x.shape}, expected (N, H, W, 3) RGB images{hint}")
        if x.dtype != np.uint8:
            bad(f"x_{split}", f"has dtype {x.dtype}, expected uint8 pixels in 0..255")
        if x.shape[0] == 0 or x.shape[1] == 0:
            bad(f"x_{split}", "holds no images" if x.shape[0] == 0 else "has empty 0x0 images")
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
        if int(y.max()) >= MAX_CLASSES:      # (a uint64 label past int64 would wrap too)
            bad(f"y_{split}", f"has label {int(y.max())}: labels must be 0..C-1, with C at "
                              f"most {MAX_CLASSES}")
    if a["x_test"].shape[1:] != a["x_train"].shape[1:]:
        bad("x_test", f"images are {a['x_test'].shape[1:]}, but x_train's are "
                      f"{a['x_train'].shape[1:]}")
    max_label = int(max(a["y_train"].max(), a["y_test"].max()))
    classes = None
    if "classes" in a:
        c = a["classes"]
        if c.ndim != 1 or c.dtype.kind not in "US":
            bad("classes", f"has shape {c.shape} dtype {c.dtype}, expected a 1-D string array")
        try:
            classes = [s.decode() if isinstance(s, bytes) else str(s) for s in c.tolist()]
        except UnicodeDecodeError as err:
            bad("classes", f"holds a name that is not UTF-8 text ({err.reason})")
        if len(classes) <= max_label:
            bad("classes", f"names {len(classes)} classes but labels go up to {max_label}")
    num_classes = len(classes) if classes else max_label + 1
    t = {k: torch.from_numpy(np.ascontiguousarray(a[k])) for k in NPZ_KEYS}
    return Dataset(name, t["x_train"], t["y_train"].long(), t["x_test"], t["y_test"].long(),
                   num_classes, classes)


def save_npz_atomic(path: str, **arrays) -> None:
    """Write to a temp file in the same folder, then rename: readers never see half a file."""
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)   # uncompressed: the cache must load in well under a second
