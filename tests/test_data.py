"""helpers.data: datasets, .npz validation and the CIFAR-100 cache (the loader:
test_loader.py; the download probe: test_net.py).

Expected values are derived by hand (numpy slicing, explicit formulas), never read back
from the code under test.
"""
import os
import pickle
import socket
import tarfile
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import net
from helpers.config import SYNTHETIC_DEFAULT_SIZES, SYNTHETIC_MAX_CLASSES
from helpers.data import (DataUnavailableError, DatasetFormatError, DeviceLoader, check_overlap,
                          cifar100, load_cifar100, load_dataset, load_npz, make_synthetic)
from helpers.data.synthetic import COLOURS, SHAPES, TEXTURES, synthetic_class


# ---------------------------------------------------------------------------- synthetic

def test_synthetic_is_deterministic_per_seed():
    a, b = make_synthetic(300, 100, seed=3), make_synthetic(300, 100, seed=3)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(a, key), getattr(b, key)), key
    c = make_synthetic(300, 100, seed=4)
    assert not torch.equal(a.x_train, c.x_train)
    assert not torch.equal(a.x_test, c.x_test)
    # the training set does not depend on how many test images are drawn
    assert torch.equal(make_synthetic(300, 50, seed=3).x_train, a.x_train)
    assert not torch.equal(a.x_train[:100], a.x_test)


def test_synthetic_shapes_dtypes_and_balance():
    ds = make_synthetic(1050, 200, num_classes=100, seed=0)
    assert ds.name == "synthetic" and ds.num_classes == 100
    assert ds.x_train.shape == (1050, 32, 32, 3) and ds.x_train.dtype == torch.uint8
    assert ds.x_test.shape == (200, 32, 32, 3)
    assert ds.y_train.dtype == torch.int64 and ds.y_train.shape == (1050,)
    counts = np.bincount(ds.y_train.numpy(), minlength=100)
    assert counts.min() == 10 and counts.max() == 11          # 1050 = 100 * 10 + 50
    assert (np.bincount(ds.y_test.numpy(), minlength=100) == 2).all()
    assert len(set(ds.classes)) == 100
    assert all(len(name.split("/")) == 3 for name in ds.classes)
    assert ds.describe() == dict(name="synthetic", num_classes=100, n_train=1050, n_test=200)
    # the pictures use the whole byte range, not a constant
    assert ds.x_train.float().std() > 20

    small = make_synthetic(40, 20, num_classes=10, seed=0, size=48)
    assert small.x_train.shape == (40, 48, 48, 3) and int(small.y_train.max()) == 9
    assert len(set(small.classes)) == 10


def test_synthetic_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        make_synthetic(10, 10, num_classes=101)
    with pytest.raises(ValueError, match="n_train"):
        make_synthetic(0, 10)


def test_synthetic_factors_give_exactly_the_configured_class_count():
    """config.py states the class count without importing the data code; the factors
    that make the classes must multiply to it."""
    assert len(SHAPES) * len(COLOURS) * len(TEXTURES) == SYNTHETIC_MAX_CLASSES
    triples = {synthetic_class(k) for k in range(SYNTHETIC_MAX_CLASSES)}
    assert len(triples) == SYNTHETIC_MAX_CLASSES              # every class distinct


def test_synthetic_is_learnable():
    """A tiny CNN reaches many times chance (1 %) on held-out images within a few seconds."""
    torch.manual_seed(0)
    ds = make_synthetic(2000, 500, seed=1)
    stats = dict(mean=(0.35,) * 3, std=(0.18,) * 3)
    train = DeviceLoader(ds.x_train, ds.y_train, batch_size=64, device="cpu", train=True,
                         augment=False, **stats)
    test = DeviceLoader(ds.x_test, ds.y_test, batch_size=500, device="cpu", train=False, **stats)

    def block(i, o, s):
        return nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU())

    net = nn.Sequential(block(3, 16, 1), block(16, 32, 2), block(32, 64, 2),
                        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(64, 100))
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    for epoch in range(6):
        for x, y in train.epoch(epoch):
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        x, y = next(test.epoch(0))
        acc = (net(x).argmax(1) == y).float().mean().item()
    assert acc > 0.20, f"test accuracy {acc:.3f}, chance is 0.01"


# ---------------------------------------------------------------------------- .npz files

def good_arrays():
    rng = np.random.default_rng(0)
    return dict(x_train=rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8),
                y_train=rng.integers(0, 5, 20),
                x_test=rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8),
                y_test=np.array([0, 1, 2, 3, 6, 1]))


def test_npz_round_trip_and_inferred_classes(tmp_path):
    a = good_arrays()
    path = tmp_path / "mine.npz"
    np.savez(path, **a)
    ds = load_npz(str(path))
    assert ds.name == "mine"
    assert ds.num_classes == 7              # max label 6 (in the test split) + 1
    assert ds.classes is None
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert np.array_equal(getattr(ds, key).numpy(), a[key]), key
    assert ds.y_train.dtype == torch.int64 and ds.x_train.dtype == torch.uint8

    names = np.array([f"c{k}" for k in range(9)])
    np.savez(path, classes=names, **a)
    ds = load_npz(str(path))
    assert ds.num_classes == 9 and ds.classes == list(names)


def _set(key, value):
    return lambda a: a.__setitem__(key, value)


MALFORMED = {
    "missing y_test": (lambda a: a.pop("y_test"), "y_test"),
    "float pixels": (lambda a: a.__setitem__("x_train", a["x_train"].astype(np.float32)),
                     "x_train"),
    "channels first": (lambda a: a.__setitem__("x_train", a["x_train"].transpose(0, 3, 1, 2)),
                       "x_train"),
    "grey images": (lambda a: a.__setitem__("x_test", a["x_test"][..., 0]), "x_test"),
    "non-square": (lambda a: a.__setitem__("x_train", a["x_train"][:, :, :6]), "x_train"),
    "no images": (lambda a: a.update(x_train=a["x_train"][:0], y_train=a["y_train"][:0]),
                  "x_train"),
    "test size differs": (lambda a: a.__setitem__("x_test", np.zeros((6, 4, 4, 3), np.uint8)),
                          "x_test"),
    "label count": (lambda a: a.__setitem__("y_train", a["y_train"][:-1]), "y_train"),
    "negative label": (lambda a: a["y_test"].__setitem__(0, -1), "y_test"),
    "float labels": (lambda a: a.__setitem__("y_train", a["y_train"].astype(np.float64)),
                     "y_train"),
    "2-D labels": (lambda a: a.__setitem__("y_test", a["y_test"][:, None]), "y_test"),
    "object labels": (lambda a: a.__setitem__("y_train", a["y_train"].astype(object)), "y_train"),
    "too few class names": (lambda a: a.__setitem__("classes", np.array(["a", "b"])), "classes"),
    "empty images": (lambda a: a.update(x_train=np.zeros((20, 0, 0, 3), np.uint8),
                                        x_test=np.zeros((6, 0, 0, 3), np.uint8)), "x_train"),
    "a label beyond any class count": (lambda a: a["y_train"].__setitem__(0, 10**9), "y_train"),
    "a uint64 label past int64": (lambda a: a.__setitem__(
        "y_test", np.array([0, 1, 2, 3, 2**63 + 5, 1], np.uint64)), "y_test"),
    "class names not UTF-8": (lambda a: a.__setitem__(
        "classes", np.array([b"\xff\xfe"] + [b"ok"] * 8)), "classes"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_npz_malformed_names_the_key(tmp_path, case):
    mutate, key = MALFORMED[case]
    a = good_arrays()
    mutate(a)
    path = tmp_path / "bad.npz"
    np.savez(path, **a)
    with pytest.raises(DatasetFormatError) as e:
        load_npz(str(path))
    assert key in str(e.value)


def test_npz_unreadable_files(tmp_path):
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"this is not a zip archive")
    with pytest.raises(DatasetFormatError, match="corrupt.npz"):
        load_npz(str(corrupt))
    single = tmp_path / "single.npz"
    with open(single, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(DatasetFormatError, match="single array"):
        load_npz(str(single))
    with pytest.raises(DatasetFormatError, match=r"\.npz"):
        load_npz(str(tmp_path / "data.csv"))
    with pytest.raises(DatasetFormatError, match="no such file"):
        load_npz(str(tmp_path / "absent.npz"))
    import zipfile
    with zipfile.ZipFile(tmp_path / "bytes.npz", "w") as z:   # members that are not .npy data
        for key in ("x_train", "y_train", "x_test", "y_test"):
            z.writestr(f"{key}.npy", b"garbage")
    with pytest.raises(DatasetFormatError, match="key x_train is not a NumPy array"):
        load_npz(str(tmp_path / "bytes.npz"))


# ---------------------------------------------------------------------------- load_dataset

def test_load_dataset_subsets_are_seeded_samples(tmp_path):
    a = good_arrays()
    a["x_train"][:, 0, 0, 0] = np.arange(20)        # make every training image unique
    path = str(tmp_path / "d.npz")
    np.savez(path, **a)
    s1 = load_dataset(path, train_subset=7, test_subset=3, seed=5)
    s2 = load_dataset(path, train_subset=7, test_subset=3, seed=5)
    s3 = load_dataset(path, train_subset=7, seed=6)
    assert s1.describe()["n_train"] == 7 and s1.describe()["n_test"] == 3
    assert torch.equal(s1.x_train, s2.x_train) and torch.equal(s1.y_test, s2.y_test)
    assert not torch.equal(s1.x_train, s3.x_train)
    assert len(s3.y_test) == 6                      # no subset: everything
    # every sampled image is a distinct original image with its own label
    ids = s1.x_train[:, 0, 0, 0].numpy()
    assert len(set(ids)) == 7
    assert np.array_equal(s1.y_train.numpy(), a["y_train"][ids])
    with pytest.raises(ValueError, match="train_subset=21"):
        load_dataset(path, train_subset=21)
    with pytest.raises(ValueError, match="dataset='imagenet'"):
        load_dataset("imagenet")


def test_load_dataset_synthetic_sizes():
    ds = load_dataset("synthetic", train_subset=200, test_subset=50, seed=2)
    assert ds.describe() == dict(name="synthetic", num_classes=100, n_train=200, n_test=50)
    assert torch.equal(ds.x_train, make_synthetic(200, 50, seed=2).x_train)
    ds = load_dataset("synthetic")
    assert (len(ds.y_train), len(ds.y_test)) == SYNTHETIC_DEFAULT_SIZES


# ---------------------------------------------------------------------------- CIFAR-100

def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                      # nothing listens there now: connecting is refused at once
    return port


def test_cifar_offline_fails_after_one_probe_and_says_where_to_put_the_archive(tmp_path,
                                                                                monkeypatch):
    import torchvision.datasets
    url = f"http://127.0.0.1:{_closed_port()}/c.tar.gz"
    monkeypatch.setattr(cifar100, "PROBE_URL", url)
    for var in ("HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(var, raising=False)
    probes = []

    def spy(u, timeout):
        probes.append((u, timeout))
        return net.reachable(u, timeout)
    monkeypatch.setattr(cifar100, "reachable", spy)
    monkeypatch.setattr(torchvision.datasets, "CIFAR100", _no_network)   # no download tried
    with pytest.raises(DataUnavailableError) as e:
        load_cifar100(str(tmp_path))
    assert probes == [(url, cifar100.PROBE_TIMEOUT_S)]
    msg = str(e.value)
    assert os.path.abspath(tmp_path / "cifar-100-python.tar.gz") in msg
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in msg


def write_fake_cifar(folder, n_train=12, n_test=5, bytes_keys=True):
    """torchvision's layout: pickled dicts, data rows = 1024 R, 1024 G, 1024 B bytes."""
    rng = np.random.default_rng(0)
    key = (lambda s: s.encode()) if bytes_keys else (lambda s: s)
    os.makedirs(folder)
    raw = {}
    for split, n in (("train", n_train), ("test", n_test)):
        raw[split] = (rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                      list(rng.integers(0, 100, n)))
        with open(os.path.join(folder, split), "wb") as f:
            pickle.dump({key("data"): raw[split][0], key("fine_labels"): raw[split][1]}, f)
    with open(os.path.join(folder, "meta"), "wb") as f:
        pickle.dump({key("fine_label_names"): [key(f"class{k}") for k in range(100)]}, f)
    return raw


def _no_network(*args, **kwargs):
    raise AssertionError("must not touch the network when the data is on disk")


def publish(monkeypatch, *paths):
    """Make the given files the 'published' ones: the loader checks every hand-placed file
    against torchvision's md5 sums, which files made here cannot have."""
    sums = {os.path.basename(str(p)): cifar100.file_md5(str(p)) for p in paths}
    monkeypatch.setattr(cifar100, "published_md5", lambda: sums)


def fake_pickles(folder):
    return [os.path.join(folder, f) for f in ("train", "test", "meta")]


def test_cifar_loads_when_its_cache_cannot_be_written(tmp_path, monkeypatch):
    """A full disk or a read-only data folder (a full Google Drive) costs the cache only:
    the data loaded is returned, with a warning."""
    monkeypatch.setattr(cifar100, "reachable", _no_network)
    write_fake_cifar(tmp_path / "cifar-100-python")
    publish(monkeypatch, *fake_pickles(tmp_path / "cifar-100-python"))

    def disk_full(path, **arrays):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(cifar100, "save_npz_atomic", disk_full)
    with pytest.warns(UserWarning, match="could not be written .*No space left"):
        ds = load_cifar100(str(tmp_path))
    assert ds.x_train.shape == (12, 32, 32, 3)
    assert not (tmp_path / "cifar100_uint8.npz").exists()


@pytest.mark.parametrize("bytes_keys", [True, False])
def test_cifar_pickles_are_converted_and_cached(tmp_path, monkeypatch, bytes_keys):
    monkeypatch.setattr(cifar100, "reachable", _no_network)
    raw = write_fake_cifar(tmp_path / "cifar-100-python", bytes_keys=bytes_keys)
    publish(monkeypatch, *fake_pickles(tmp_path / "cifar-100-python"))
    ds = load_cifar100(str(tmp_path))
    assert ds.name == "cifar100" and ds.num_classes == 100 and ds.classes[7] == "class7"
    rows, labels = raw["train"]
    assert ds.x_train.shape == (12, 32, 32, 3) and ds.x_test.shape == (5, 32, 32, 3)
    # hand-derived layout: pixel (i, j) of channel c sits at c*1024 + i*32 + j
    for n, i, j, c in [(0, 0, 0, 0), (3, 5, 31, 1), (11, 31, 2, 2)]:
        assert ds.x_train[n, i, j, c] == rows[n, c * 1024 + i * 32 + j]
    assert ds.y_train.tolist() == [int(v) for v in labels]
    cache = tmp_path / "cifar100_uint8.npz"
    assert cache.is_file()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]

    for f in os.listdir(tmp_path / "cifar-100-python"):     # now only the cache is left
        os.remove(tmp_path / "cifar-100-python" / f)
    again = load_cifar100(str(tmp_path))                   # from the cache: no pickles left
    assert torch.equal(again.x_train, ds.x_train) and torch.equal(again.y_test, ds.y_test)
    assert again.classes == ds.classes and again.name == "cifar100"

    sub = load_dataset("cifar100", str(tmp_path), train_subset=4, test_subset=2, seed=0)
    assert sub.describe() == dict(name="cifar100", num_classes=100, n_train=4, n_test=2)


def test_cifar_archive_placed_by_hand_is_extracted_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar100, "reachable", _no_network)
    raw = write_fake_cifar(tmp_path / "staging" / "cifar-100-python")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with tarfile.open(data_dir / "cifar-100-python.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "staging" / "cifar-100-python", arcname="cifar-100-python")
    publish(monkeypatch, data_dir / "cifar-100-python.tar.gz",
            *fake_pickles(tmp_path / "staging" / "cifar-100-python"))
    ds = load_cifar100(str(data_dir))
    assert np.array_equal(ds.x_test.permute(0, 3, 1, 2).reshape(5, -1).numpy(), raw["test"][0])


def test_cifar_truncated_archive_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar100, "reachable", _no_network)
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(b"\x1f\x8b\x08 truncated")
    with pytest.raises(DataUnavailableError, match="cifar-100-python.tar.gz"):
        load_cifar100(str(tmp_path))


def test_the_md5_sums_are_torchvisions_published_ones():
    sums = cifar100.published_md5()
    assert set(sums) == {"cifar-100-python.tar.gz", "train", "test", "meta"}
    assert sums["cifar-100-python.tar.gz"] == cifar100.CIFAR100_TGZ_MD5  # the one we tell users
    assert all(len(v) == 32 and int(v, 16) >= 0 for v in sums.values())


class RunsCode:
    """A pickle that runs code when it is loaded: it creates a marker file."""
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_tampered_archive_is_refused_before_it_is_extracted(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar100, "reachable", _no_network)
    write_fake_cifar(tmp_path / "staging" / "cifar-100-python")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    tgz = data_dir / "cifar-100-python.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(tmp_path / "staging" / "cifar-100-python", arcname="cifar-100-python")
    publish(monkeypatch, tgz, *fake_pickles(tmp_path / "staging" / "cifar-100-python"))
    tgz.write_bytes(tgz.read_bytes() + b"appended")                   # altered after publishing
    with pytest.raises(DataUnavailableError, match=r"cifar-100-python\.tar\.gz.*not the published"):
        load_cifar100(str(data_dir))
    assert sorted(os.listdir(data_dir)) == ["cifar-100-python.tar.gz"]   # nothing extracted


def test_a_tampered_pickle_is_refused_before_it_is_unpickled(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar100, "reachable", _no_network)
    folder = tmp_path / "cifar-100-python"
    write_fake_cifar(folder)
    publish(monkeypatch, *fake_pickles(folder))
    marker = tmp_path / "code-ran"
    with open(folder / "train", "wb") as f:                            # swapped by someone
        pickle.dump(RunsCode(marker), f)
    with pytest.raises(DataUnavailableError, match=r"train'? is not the published"):
        load_cifar100(str(tmp_path))
    assert not marker.exists()                                         # never unpickled
    assert not (tmp_path / "cifar100_uint8.npz").exists()              # nothing written


# ---------------------------------------------------------------------------- overlap

def test_check_overlap_finds_planted_duplicates():
    ds = make_synthetic(100, 30, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_overlap(ds) == 0
    ds.x_test[4] = ds.x_train[17]
    ds.x_test[20] = ds.x_train[99]
    with pytest.warns(UserWarning, match="2 of 30 test images"):
        assert check_overlap(ds) == 2
