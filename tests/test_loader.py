"""helpers.data.DeviceLoader: batches built on the device, checked against hand-made images.

Expected values are derived by hand (numpy slicing, explicit formulas), never read back
from the code under test.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import data
from helpers.data import DeviceLoader, bilinear_matrix, make_synthetic


def position_images(n, size=32):
    """Images whose pixels name their own position: R = row+1, G = col+1, B = image id+1.

    Zero never occurs, so zero padding is recognisable after a crop.
    """
    i = np.arange(size)
    x = np.zeros((n, size, size, 3), np.uint8)
    x[..., 0] = i[None, :, None] + 1
    x[..., 1] = i[None, None, :] + 1
    x[..., 2] = (np.arange(n) % 250 + 1)[:, None, None]
    return torch.from_numpy(x), torch.arange(n)


RAW = dict(mean=(0.0, 0.0, 0.0), std=(1 / 255,) * 3)   # normalisation that leaves bytes as they are


def collect(loader, epoch=0):
    xs, ys = zip(*loader.epoch(epoch))
    return torch.cat(xs), torch.cat(ys)


def test_loader_normalises_with_the_given_stats():
    x = make_synthetic(256, 10, seed=0).x_train
    flat = x.numpy().reshape(-1, 3).astype(np.float64) / 255
    mean, std = tuple(flat.mean(0)), tuple(flat.std(0))
    loader = DeviceLoader(x, torch.zeros(256, dtype=torch.long), batch_size=100, device="cpu",
                          mean=mean, std=std, train=False)
    out, _ = collect(loader)
    assert out.shape == (256, 3, 32, 32) and out.dtype == torch.float32
    per_channel = out.transpose(0, 1).reshape(3, -1).double()
    assert torch.allclose(per_channel.mean(1), torch.zeros(3, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(per_channel.std(1), torch.ones(3, dtype=torch.float64), atol=1e-3)
    expected = (x[7, 3, 9, 2].item() / 255 - mean[2]) / std[2]
    assert abs(out[7, 2, 3, 9].item() - expected) < 1e-5


def test_eval_order_is_fixed_and_covers_everything_once():
    x, y = position_images(10)
    loader = DeviceLoader(x, y, batch_size=4, device="cpu", train=False, **RAW)
    assert len(loader) == 3 and loader.num_images == 10
    batches = list(loader.epoch(0))
    assert [len(b[1]) for b in batches] == [4, 4, 2]         # last partial batch kept
    out, labels = collect(loader, epoch=5)
    assert labels.tolist() == list(range(10))
    assert torch.equal(out.round().to(torch.uint8), x.permute(0, 3, 1, 2))   # no augmentation


def test_train_epoch_is_a_permutation_and_drop_last():
    x, y = position_images(10)
    kw = dict(batch_size=4, device="cpu", train=True, augment=False, **RAW)
    keep = DeviceLoader(x, y, drop_last=False, **kw)
    assert len(keep) == 3
    _, labels = collect(keep)
    assert sorted(labels.tolist()) == list(range(10)) and labels.tolist() != list(range(10))
    drop = DeviceLoader(x, y, **kw)                          # train: drop_last by default
    assert len(drop) == 2
    batches = list(drop.epoch(0))
    assert [len(b[1]) for b in batches] == [4, 4]
    assert len(set(torch.cat([b[1] for b in batches]).tolist())) == 8
    # unaugmented images travel with their labels
    xb, yb = batches[0]
    assert torch.equal(xb.round().to(torch.uint8), x[yb].permute(0, 3, 1, 2))
    assert len(DeviceLoader(x, y, batch_size=4, device="cpu", train=False, drop_last=True,
                            **RAW)) == 2
    with pytest.raises(ValueError, match="batch_size=16"):
        DeviceLoader(x, y, batch_size=16, device="cpu", train=True, **RAW)


def test_loader_is_deterministic_per_seed_and_epoch():
    x, y = position_images(64)
    make = lambda seed: DeviceLoader(x, y, batch_size=16, device="cpu", train=True,
                                     seed=seed, **RAW)
    run = make(0)
    history = [collect(run, e) for e in range(4)]
    resumed = make(0)                                        # e.g. restarted from a checkpoint
    for e in (3, 2):
        xr, yr = collect(resumed, e)
        assert torch.equal(xr, history[e][0]) and torch.equal(yr, history[e][1])
    assert not torch.equal(history[0][1], history[1][1])     # new order each epoch
    assert not torch.equal(history[0][0], history[1][0])
    assert not torch.equal(collect(make(1), 0)[1], history[0][1])


def expected_crop(img, dy, dx, flip, pad=4):
    """Hand-written reference: zero-pad, cut the window at offset (dy, dx), then mirror."""
    H, W, _ = img.shape
    padded = np.zeros((H + 2 * pad, W + 2 * pad, 3), img.dtype)
    padded[pad:pad + H, pad:pad + W] = img
    out = padded[dy:dy + H, dx:dx + W]
    return out[:, ::-1] if flip else out


def test_crop_shifts_at_most_4px_pads_with_zeros_and_flips():
    x, y = position_images(256)
    loader = DeviceLoader(x, y, batch_size=64, device="cpu", train=True, **RAW)
    seen, flips = set(), 0
    for xb, yb in loader.epoch(0):
        imgs = xb.round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        batch_offsets = set()
        for img, n in zip(imgs, yb.tolist()):
            src = x[n].numpy()
            matches = [(dy, dx, f) for dy in range(9) for dx in range(9) for f in (False, True)
                       if np.array_equal(img, expected_crop(src, dy, dx, f))]
            assert len(matches) == 1, f"image {n} is no padded crop of its source"
            dy, dx, f = matches[0]
            seen.add((dy, dx))
            batch_offsets.add((dy, dx))
            flips += f
        assert len(batch_offsets) > 1                        # offsets are per image
    assert len(seen) > 60                                    # nearly all 81 shifts occur
    assert 0.35 < flips / 256 < 0.65


def test_flip_mirrors_columns():
    x, y = position_images(64)
    loader = DeviceLoader(x, y, batch_size=64, device="cpu", train=True, **RAW)
    xb, _ = next(loader.epoch(0))
    cols = xb[:, 1, 16, 8:24]          # column numbers along the middle row, away from padding
    steps = cols.diff(dim=1)
    increasing = (steps == 1).all(1)
    decreasing = (steps == -1).all(1)
    assert (increasing | decreasing).all() and increasing.any() and decreasing.any()


def test_resize_and_channels_last():
    x = make_synthetic(12, 4, seed=0).x_train
    y = torch.zeros(12, dtype=torch.long)
    stats = dict(mean=data.CIFAR100_MEAN, std=data.CIFAR100_STD)
    big = DeviceLoader(x, y, batch_size=5, device="cpu", train=False, img_size=224, **stats)
    small = DeviceLoader(x, y, batch_size=5, device="cpu", train=False, **stats)
    xb, _ = next(big.epoch(0))
    assert xb.shape == (5, 3, 224, 224) and xb.dtype == torch.float32 and xb.is_contiguous()
    ref = F.interpolate(next(small.epoch(0))[0], size=224, mode="bilinear", align_corners=False)
    assert torch.allclose(xb, ref, atol=1e-5)
    aug = DeviceLoader(x, y, batch_size=5, device="cpu", train=True, img_size=64,
                       channels_last=True, **stats)
    xb, _ = next(aug.epoch(0))
    assert xb.shape == (5, 3, 64, 64)
    assert xb.is_contiguous(memory_format=torch.channels_last)
    # a uniform image stays uniform after the bilinear resize
    flat = torch.full((1, 8, 8, 3), 200, dtype=torch.uint8)
    out, _ = next(DeviceLoader(flat, torch.zeros(1, dtype=torch.long), batch_size=1,
                               device="cpu", train=False, img_size=32, **RAW).epoch(0))
    assert torch.allclose(out, torch.full_like(out, 200.0))


def test_bilinear_matrix_by_hand():
    # 2 -> 4 pixels: output i samples the input at (i + 0.5) / 2 - 0.5, clamped to [0, 1].
    expected = torch.tensor([[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]])
    assert torch.equal(bilinear_matrix(2, 4), expected)


@pytest.mark.parametrize("n_in,n_out", [(32, 224), (32, 100), (32, 24), (7, 5), (1, 4), (5, 5)])
def test_matrix_resize_matches_interpolate(n_in, n_out):
    """W_rows @ x @ W_cols^T is F.interpolate's bilinear resize, up- and downsampling, for
    non-square images and non-integer ratios."""
    x = torch.rand(2, 3, n_in, n_in + 3, generator=torch.Generator().manual_seed(0))
    ref = F.interpolate(x, size=(n_out, n_out + 1), mode="bilinear", align_corners=False,
                        antialias=False)
    w_rows, w_cols = bilinear_matrix(n_in, n_out), bilinear_matrix(n_in + 3, n_out + 1)
    assert torch.allclose(w_rows @ x @ w_cols.T, ref, atol=1e-6, rtol=1e-5)
    assert torch.allclose(w_rows.sum(1), torch.ones(n_out)) and ((w_rows > 0).sum(1) <= 2).all()


def test_reused_output_buffer_gives_the_same_batches():
    x = make_synthetic(10, 1, seed=0).x_train
    y = torch.arange(10)
    kw = dict(batch_size=4, device="cpu", train=True, img_size=64, seed=3, drop_last=False,
              mean=data.CIFAR100_MEAN, std=data.CIFAR100_STD)
    fresh = list(DeviceLoader(x, y, **kw).epoch(2))
    ptrs = []
    for (xa, ya), (xb, yb) in zip(fresh, DeviceLoader(x, y, reuse_output=True, **kw).epoch(2),
                                  strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
        ptrs.append(xb.data_ptr())
    assert len(ptrs) == 3 and len(set(ptrs)) == 1      # one buffer, partial last batch included
    assert len({xa.data_ptr() for xa, _ in fresh}) == 3


def test_loader_rejects_bad_input():
    x, y = position_images(4)
    with pytest.raises(ValueError, match="uint8"):
        DeviceLoader(x.float(), y, batch_size=2, device="cpu", train=False, **RAW)
    with pytest.raises(ValueError, match="y"):
        DeviceLoader(x, y[:3], batch_size=2, device="cpu", train=False, **RAW)


def test_the_gpus_resize_branch_runs_on_the_cpu_and_gives_the_same_batches():
    """The resize a CUDA loader takes (F.interpolate, channels_last) is chosen by a flag,
    not by the device, so it runs here beside the CPU's matrix-product branch."""
    from helpers.data import DeviceLoader, make_synthetic
    data = make_synthetic(12, 4, num_classes=3, seed=0)
    common = dict(batch_size=4, device="cpu", mean=(0.5, 0.4, 0.3), std=(0.2, 0.3, 0.4),
                  train=True, img_size=56, seed=3)
    cpu = DeviceLoader(data.x_train, data.y_train, **common)
    gpu = DeviceLoader(data.x_train, data.y_train, resize="interpolate", channels_last=True,
                       **common)
    assert (cpu.resize, gpu.resize) == ("matmul", "interpolate")
    for (xa, ya), (xb, yb) in zip(cpu.epoch(1), gpu.epoch(1)):
        assert torch.equal(ya, yb) and xb.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(xa, xb, atol=1e-5)
    with pytest.raises(ValueError, match="^resize="):
        DeviceLoader(data.x_train, data.y_train, resize="nearest", **common)
