"""The baseline the benchmark compares against: the "typical homework loop".

What most CIFAR homework code looks like, written the way students write it:
a torchvision-datasets-style Dataset that turns each uint8 image into a PIL image,
per-image transforms (RandomCrop(32, padding=4), RandomHorizontalFlip, Resize(224) for
Swin, ToTensor, Normalize) in DataLoader(num_workers=2, shuffle=True) worker processes,
fp32, no torch.compile, and `loss.item()` after every step. Nothing here is tuned; a
faster baseline would make our speedup smaller, which is the honest direction to err in.

Also here: the data path alone (batches, no model) of both pipelines, for the CPU
target in benchmarks/README.md (DeviceLoader batches at least 5x faster than
DataLoader + PIL).
"""
from __future__ import annotations

import contextlib
import time

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from helpers.data import DeviceLoader
from helpers.device import set_tf32, synchronize, tf32
from helpers.models import input_spec
from helpers.batches import loader_options
from .timing import EPOCH_IMAGES

NUM_WORKERS = 2          # what Colab-era tutorials use (Colab has 2 vCPUs)
CIFAR_SIDE = 32


class PILImages(torch.utils.data.Dataset):
    """torchvision.datasets.CIFAR100 in miniature: the uint8 array stays in memory and
    every __getitem__ builds a PIL image and runs the per-image transform on it."""

    def __init__(self, x_uint8_nhwc, y, transform):
        self.x = np.asarray(x_uint8_nhwc)           # (N, 32, 32, 3) uint8
        self.y = np.asarray(y)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        img = Image.fromarray(self.x[i])            # as torchvision's CIFAR datasets do
        return self.transform(img), int(self.y[i])


def typical_transform(img_size: int, mean, std):
    """The typical homework training transforms (see the module docstring), in the order
    students write them."""
    from torchvision import transforms as T
    steps = [T.RandomCrop(CIFAR_SIDE, padding=4), T.RandomHorizontalFlip()]
    if img_size != CIFAR_SIDE:
        steps.append(T.Resize(img_size))            # PIL resize (bilinear, antialiased)
    steps += [T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(steps)


def typical_loader(x, y, *, batch_size: int, img_size: int, mean,
                   std) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(
        PILImages(x, y, typical_transform(img_size, mean, std)),
        batch_size=batch_size, shuffle=True, num_workers=NUM_WORKERS)


@contextlib.contextmanager
def torch_default_backends(device: torch.device):
    """PyTorch's out-of-the-box CUDA flags for the duration (no cudnn autotuning, fp32
    matmuls not in TF32): a student's notebook does not set what setup_backends sets."""
    if device.type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.benchmark, tf32()
    torch.backends.cudnn.benchmark = False
    set_tf32(matmul=False, conv=True)               # PyTorch's defaults
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = saved[0]
        set_tf32(*saved[1])


def time_typical_loop(model: nn.Module, loader, *, optimizer_name: str, lr: float,
                      weight_decay: float, device: torch.device, warmup_steps: int,
                      steps: int) -> dict:
    """Train `steps` steps the typical way after `warmup_steps` untimed ones.

    The DataLoader must hold at least warmup_steps + steps full batches. The warm-up
    covers the worker start-up; the timed window then sees the steady state of workers
    and model together (batches the workers prefetched during warm-up are a small
    advantage to the baseline).
    """
    model.to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer_name == "sgd":
        optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    else:
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    criterion = nn.CrossEntropyLoss()
    running_loss = 0.0
    batches = iter(loader)

    def step():
        nonlocal running_loss
        images, labels = next(batches)  # noqa: F821  (bound above; deleted after use)
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()                 # the per-step host sync students write

    with torch_default_backends(device):
        t0 = time.perf_counter()
        for _ in range(warmup_steps):
            step()
        synchronize(device)
        t1 = time.perf_counter()
        for _ in range(steps):
            step()
        synchronize(device)
        t2 = time.perf_counter()
    del batches                                     # shuts the worker processes down
    images = steps * loader.batch_size
    return dict(precision="fp32", compile=False, num_workers=loader.num_workers,
                batch_size=loader.batch_size, warmup_steps=warmup_steps, warmup_s=t1 - t0,
                steps=steps, timed_images=images, train_s=t2 - t1,
                images_per_s=images / (t2 - t1), epoch_50k_s=EPOCH_IMAGES * (t2 - t1) / images,
                loss_finite=bool(np.isfinite(running_loss)))


# ----------------------------------------------------------------------------- data path only
def time_device_loader(x, y, *, batch_size: int, cfg, device: torch.device,
                       warmup_batches: int) -> dict:
    """Images/s of the engine's training batches (crop, flip, resize, normalise) alone,
    from a DeviceLoader built as make_batches builds it for `cfg`."""
    loader = DeviceLoader(x, y, batch_size=batch_size, train=True, augment=True,
                          **loader_options(cfg, device))
    for i, _ in enumerate(loader.epoch(0)):        # warm-up: allocator, kernels, buffers
        if i + 1 >= warmup_batches:
            break
    synchronize(device)
    t0 = time.perf_counter()
    n = 0
    for xb, _ in loader.epoch(1):
        n += xb.shape[0]
    synchronize(device)
    seconds = time.perf_counter() - t0
    return dict(images=n, seconds=seconds, images_per_s=n / seconds)


def time_pil_loader(x, y, *, batch_size: int, img_size: int, mean, std,
                    device: torch.device, warmup_batches: int) -> dict:
    """Images/s of the typical DataLoader + PIL pipeline alone, after worker start-up.

    x must hold at least warmup_batches + 1 batches; the batches after the warm-up are
    timed, including the host-to-device copy a training loop would do."""
    loader = typical_loader(x, y, batch_size=batch_size, img_size=img_size, mean=mean,
                            std=std)
    batches = iter(loader)
    t_start = time.perf_counter()
    for _ in range(warmup_batches):
        next(batches)
    t0 = time.perf_counter()
    n = 0
    for xb, _ in batches:
        n += xb.to(device).shape[0]
    synchronize(device)
    seconds = time.perf_counter() - t0
    return dict(images=n, seconds=seconds, images_per_s=n / seconds,
                startup_s=t0 - t_start, num_workers=NUM_WORKERS)


def data_path_comparison(data, *, cfg, batch_size: int, batches: int,
                         device: torch.device) -> dict:
    """Both data paths on the same images at cfg.img_size, with cfg's model's normalisation;
    speedup = DeviceLoader / DataLoader+PIL. "ours" is the DeviceLoader make_batches builds
    for cfg (on a CPU at 224 px: the matrix-product resize into a kept buffer)."""
    warm = 2
    n = (batches + warm) * batch_size               # the caller's data holds at least n
    x, y = data.x_train[:n], data.y_train[:n]
    ours = time_device_loader(x[:batches * batch_size], y[:batches * batch_size],
                              batch_size=batch_size, cfg=cfg, device=device,
                              warmup_batches=warm)
    spec = input_spec(cfg.model)
    ref = time_pil_loader(x.numpy(), y.numpy(), batch_size=batch_size, img_size=cfg.img_size,
                          mean=spec["mean"], std=spec["std"], device=device, warmup_batches=warm)
    return dict(img_size=cfg.img_size, model=cfg.model, batch_size=batch_size, ours=ours,
                reference=ref, speedup=ours["images_per_s"] / ref["images_per_s"])
