"""The batch sources of a run, built on the device as DeviceLoaders: training, test, and
the fixed train sample."""
from __future__ import annotations

from .data import DeviceLoader, train_sample
from .models import input_spec, prefers_channels_last


def uses_channels_last(cfg, device) -> bool:
    """channels_last is the native layout of cuDNN's fast conv kernels (a model whose class
    sets `channels_last`), and what F.interpolate gives resized batches on CUDA, so keeping
    it there skips a copy. On a CPU, resized batches come out of a matrix product in NCHW,
    which is kept for the same reason."""
    return device.type == "cuda" and (prefers_channels_last(cfg.model) or cfg.img_size != 32)


def loader_options(cfg, device) -> dict:
    """DeviceLoader keywords (all but the data, batch size and train/augment) for this run:
    what make_batches, and the benchmark's data-path figure, build loaders with."""
    spec = input_spec(cfg.model)
    return dict(device=device, mean=spec["mean"], std=spec["std"], img_size=cfg.img_size,
                seed=cfg.seed, channels_last=uses_channels_last(cfg, device),
                reuse_output=True)   # train_epoch and evaluate use a batch at a time


def make_batches(data, cfg, device):
    """Training and test batch sources for this run."""
    common = loader_options(cfg, device)
    test = DeviceLoader(data.x_test, data.y_test, batch_size=cfg.eval_batch_size,
                        train=False, **common)
    train = DeviceLoader(data.x_train, data.y_train, batch_size=cfg.batch_size,
                         train=True, augment=cfg.augment, **common)
    return train, test


def train_sample_batches(data, cfg, device):
    """Evaluation batches of the run's fixed train sample (data.train_sample), unaugmented;
    None when cfg.train_eval_images is 0."""
    idx = train_sample(len(data.y_train), cfg.train_eval_images, cfg.seed)
    if idx is None:
        return None
    return DeviceLoader(data.x_train[idx], data.y_train[idx], batch_size=cfg.eval_batch_size,
                        train=False, **loader_options(cfg, device))
