"""CIFAR-100: the uint8 cache, the extracted pickles, the tar.gz, or a download.

Offline it fails within seconds (a HEAD probe first, because torchvision's download has no
timeout) and says where to put the archive (data/README.md). What a student places by hand
is checked before it is trusted: the archive, and the extracted train/test/meta pickles,
against the md5 sums torchvision publishes for them, before anything is extracted or
unpickled (unpickling a wrong or tampered file runs its code).
"""
from __future__ import annotations

import hashlib
import os
import pickle
import socket
import warnings

import numpy as np

from ..net import reachable
from .arrays import Dataset, DatasetFormatError, dataset_from_arrays, load_npz, save_npz_atomic


class DataUnavailableError(RuntimeError):
    """CIFAR-100 is not on disk and cannot be downloaded."""


CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_TGZ = "cifar-100-python.tar.gz"
CIFAR100_TGZ_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
CIFAR100_CACHE = "cifar100_uint8.npz"
# Probed (helpers.net.reachable) before torchvision downloads, because its download has no
# timeout and can hang without network. Module-level so tests can point it elsewhere.
PROBE_URL = CIFAR100_URL
PROBE_TIMEOUT_S = 5.0
DOWNLOAD_STALL_S = 60.0   # a download that receives nothing for this long fails


def published_md5() -> dict[str, str]:
    """The md5 of the archive and of each extracted file, by file name, as torchvision's
    CIFAR100 dataset lists them (the sums its own download is checked against)."""
    from torchvision.datasets import CIFAR100
    sums = {CIFAR100.filename: CIFAR100.tgz_md5, CIFAR100.meta["filename"]: CIFAR100.meta["md5"]}
    sums.update(dict(CIFAR100.train_list + CIFAR100.test_list))
    return sums


def file_md5(path: str) -> str:
    md5 = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            md5.update(chunk)
    return md5.hexdigest()


def check_md5(paths: list[str], data_dir: str) -> None:
    """DataUnavailableError naming the first file whose md5 is not the published one."""
    sums = published_md5()
    for path in paths:
        got, want = file_md5(path), sums[os.path.basename(path)]
        if got != want:
            raise DataUnavailableError(_unavailable_message(
                data_dir, f"{path!r} is not the published file (md5 {got}, expected {want}); "
                          "it is incomplete, another file or altered, and was not opened - "
                          "delete it"))


def _unavailable_message(data_dir: str, why: str) -> str:
    tgz = os.path.abspath(os.path.join(data_dir, CIFAR100_TGZ))
    return (f"CIFAR-100 is not in {os.path.abspath(data_dir)!r} and {why}.\n"
            f"Download it on a machine with internet from\n    {CIFAR100_URL}\n"
            f"(md5 {CIFAR100_TGZ_MD5}) and place the archive, unextracted, at\n    {tgz}\n"
            "It is extracted and cached on the next load, without network. "
            "Or use dataset='synthetic' to run without it.")


def _read_cifar_pickles(folder: str) -> dict:
    """torchvision's layout: train/test pickles with data (N, 3072) + fine_labels, and meta."""
    def load(name):
        with open(os.path.join(folder, name), "rb") as f:
            d = pickle.load(f, encoding="latin1")   # Python 2 pickles, as torchvision reads them
        return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}

    out = {}
    for split in ("train", "test"):
        d = load(split)
        data = np.asarray(d["data"], dtype=np.uint8)
        # Rows are 1024 red, 1024 green, 1024 blue values: (N, 3072) -> (N, 3, 32, 32) -> NHWC
        out[f"x_{split}"] = np.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        out[f"y_{split}"] = np.asarray(d["fine_labels"], dtype=np.int64)
    names = load("meta")["fine_label_names"]
    out["classes"] = np.array([n.decode() if isinstance(n, bytes) else n for n in names])
    return out


def load_cifar100(data_dir: str = "data") -> Dataset:
    """CIFAR-100 from the uint8 cache, else the extracted pickles, else the tar.gz, else
    torchvision's download (after a quick reachability probe)."""
    cache = os.path.join(data_dir, CIFAR100_CACHE)
    folder = os.path.join(data_dir, "cifar-100-python")
    tgz = os.path.join(data_dir, CIFAR100_TGZ)
    if os.path.isfile(cache):
        try:
            return load_npz(cache, name="cifar100")
        except DatasetFormatError as e:
            warnings.warn(f"ignoring unreadable CIFAR-100 cache ({e}); rebuilding it")
    have_pickles = all(os.path.isfile(os.path.join(folder, f)) for f in ("train", "test", "meta"))
    if not have_pickles and os.path.isfile(tgz):
        from torchvision.datasets.utils import extract_archive
        check_md5([tgz], data_dir)                       # before anything is extracted
        try:
            extract_archive(tgz, data_dir)
        except Exception as e:
            raise DataUnavailableError(_unavailable_message(
                data_dir, f"the archive {tgz!r} could not be extracted ({e}); it is probably "
                          "incomplete - delete it and download it again")) from e
        have_pickles = True
    if not have_pickles:
        if not reachable(PROBE_URL, PROBE_TIMEOUT_S):
            raise DataUnavailableError(_unavailable_message(
                data_dir, f"{PROBE_URL} cannot be reached (offline?)"))
        from torchvision.datasets import CIFAR100
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_STALL_S)   # torchvision's urlopen sets no timeout
        try:  # downloads, checks the md5 and extracts to data_dir/cifar-100-python
            CIFAR100(root=data_dir, train=True, download=True)
        except Exception as e:
            raise DataUnavailableError(_unavailable_message(
                data_dir, f"the download failed ({e})")) from e
        finally:
            socket.setdefaulttimeout(previous)
    check_md5([os.path.join(folder, f) for f in ("train", "test", "meta")], data_dir)
    try:
        arrays = _read_cifar_pickles(folder)
    except Exception as e:
        raise DataUnavailableError(_unavailable_message(
            data_dir, f"the files in {folder!r} are unreadable ({e!r}); delete that folder")) from e
    ds = dataset_from_arrays(arrays, "cifar100", where=folder)
    try:                                   # the cache only saves time: a full disk loses none
        save_npz_atomic(cache, **arrays)
    except OSError as err:
        warnings.warn(f"CIFAR-100 loaded, but its cache {cache} could not be written ({err}); "
                      "the next run reads the pickles again", stacklevel=2)
    return ds
