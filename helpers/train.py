"""fit(): epochs of training, each followed by evaluation, with checkpoints and exact resume.

Hot-path rules (they are what makes an epoch take seconds on a GPU):
- batches come from the device-resident DeviceLoader, never from host memory;
- nothing inside the step loop reads a device value on the host (no .item()): loss
  and accuracy are accumulated on the device and read once per epoch;
- the clock is read only after synchronising the device, and evaluation has its own
  clock, so "train time per epoch" is exactly the training passes.
"""
from __future__ import annotations

import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .checkpoint import check_compatible, load_checkpoint, save_checkpoint
from .loader import DeviceLoader
from .device import default_compile, rng_state, set_rng_state, synchronize
from .models import input_spec


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or inf; the run cannot continue."""


# ----------------------------------------------------------------------------- optimiser
def make_optimizer(model: nn.Module, cfg, device: torch.device) -> torch.optim.Optimizer:
    """AdamW or SGD over the trainable parameters. Biases and norm gains (1-D tensors)
    get no weight decay: shrinking them towards zero only hurts."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    groups = [dict(params=[p for p in params if p.ndim >= 2], weight_decay=cfg.weight_decay),
              dict(params=[p for p in params if p.ndim < 2], weight_decay=0.0)]
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "adamw":
        # The fused kernel updates every tensor in one launch; CUDA only.
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999),
                                 fused=device.type == "cuda")
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)


def make_scheduler(optimizer, total_steps: int, warmup_steps: int):
    """Linear warm-up to the peak learning rate, then cosine decay to zero, per step."""
    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ----------------------------------------------------------------------------- batches
class FeatureBatches:
    """Batches of precomputed backbone features for the frozen-backbone fine-tune.

    Only valid without augmentation (every epoch then sees identical images, so the
    frozen backbone's output never changes and one pass is enough). Same interface as
    DeviceLoader; training batches follow `images.order(epoch)`, the exact permutation
    the image loader would use, so caching changes the speed and nothing else.
    """
    def __init__(self, features, labels, images: DeviceLoader):
        self.x, self.y, self.images = features, labels, images
        self.batch_size, self.train = images.batch_size, images.train
        self.num_images = len(labels)

    def __len__(self):
        return len(self.images)

    def epoch(self, epoch: int):
        n = self.num_images
        order = self.images.order(epoch) if self.train else torch.arange(n, device=self.x.device)
        for i in range(len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            yield self.x[idx], self.y[idx]


@torch.no_grad()
def _backbone_features(model, loader: DeviceLoader, precision) -> torch.Tensor:
    model.eval()
    chunks = []
    for x, _ in loader.epoch(0):
        with precision.autocast():
            chunks.append(model.forward_features(x))
    return torch.cat(chunks)


def uses_channels_last(cfg, device) -> bool:
    """channels_last is the native layout of cuDNN's fast conv kernels (ResNet on CUDA), and
    what F.interpolate gives resized batches on CUDA, so keeping it there skips a copy. On a
    CPU resized batches come out of a matrix product in NCHW, which is kept for the same reason."""
    return device.type == "cuda" and (cfg.model == "resnet18" or cfg.img_size != 32)


def place_model(model: nn.Module, cfg, device) -> nn.Module:
    """Move the model to the device in the memory format its batches will have."""
    model.to(device)
    if cfg.model == "resnet18" and device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    return model


def loader_options(cfg, device) -> dict:
    """DeviceLoader keywords (all but the data, batch size and train/augment) for this run:
    what make_batches, and the benchmark's data-path figure, build loaders with."""
    spec = input_spec(cfg.model)
    return dict(device=device, mean=spec["mean"], std=spec["std"], img_size=cfg.img_size,
                seed=cfg.seed, channels_last=uses_channels_last(cfg, device),
                reuse_output=True)   # train_epoch/evaluate/_backbone_features use a batch at a time


def make_batches(model, data, cfg, device, precision):
    """Training and test batch sources for this run, plus the one-off caching time."""
    common = loader_options(cfg, device)
    test = DeviceLoader(data.x_test, data.y_test, batch_size=cfg.eval_batch_size,
                        train=False, **common)
    train = DeviceLoader(data.x_train, data.y_train, batch_size=cfg.batch_size,
                         train=True, augment=cfg.augment, **common)
    if not cfg.cache_features:
        return train, test, 0.0
    synchronize(device)
    t0 = time.perf_counter()
    in_order = DeviceLoader(data.x_train, data.y_train, batch_size=cfg.eval_batch_size,
                            train=False, **common)
    train_f = _backbone_features(model, in_order, precision)      # (N_train, C)
    test_f = _backbone_features(model, test, precision)           # (N_test, C)
    synchronize(device)
    cache_time = time.perf_counter() - t0
    return (FeatureBatches(train_f, train.y, train), FeatureBatches(test_f, test.y, test),
            cache_time)


# ----------------------------------------------------------------------------- epochs
def train_epoch(step_model, forward, batches, epoch, optimizer, scheduler, scaler, precision,
                cfg, device, params, progress):
    """One pass over the training set. Returns (loss, acc%, seconds), timed honestly."""
    step_model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    synchronize(device)
    t0 = time.perf_counter()
    for x, y in tqdm(batches.epoch(epoch), total=len(batches), desc=f"epoch {epoch} train",
                     leave=False, disable=not progress):
        with precision.autocast():
            logits = forward(x)                      # (B, num_classes)
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        loss_sum += loss.detach().float() * y.shape[0]
        correct += (logits.detach().argmax(1) == y).sum()
        seen += y.shape[0]
    synchronize(device)
    seconds = time.perf_counter() - t0
    loss = (loss_sum / max(seen, 1)).item()          # the epoch's one host read
    if not math.isfinite(loss):
        raise NonFiniteLossError(
            f"training loss became {loss} in epoch {epoch} (lr={cfg.lr}, precision="
            f"{precision.name}). Lower the learning rate, keep grad_clip on, or use bf16/fp32.")
    return loss, 100.0 * correct.item() / max(seen, 1), seconds, seen


@torch.no_grad()
def evaluate(forward, module, batches, precision, device, epoch=0, progress=False):
    """Test loss (plain cross-entropy, no smoothing) and accuracy in percent."""
    module.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    for x, y in tqdm(batches.epoch(epoch), total=len(batches), desc="eval", leave=False,
                     disable=not progress):
        with precision.autocast():
            logits = forward(x)
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        seen += y.shape[0]
    return (loss_sum / max(seen, 1)).item(), 100.0 * correct.item() / max(seen, 1)


# ----------------------------------------------------------------------------- fit
def fit(model: nn.Module, data, cfg, *, device, precision, progress: bool = True,
        checkpoint_path: str | None = None, on_epoch=None) -> list[dict]:
    """Train `model` on `data` for cfg.epochs, evaluating after every epoch.

    If `checkpoint_path` exists, training resumes from it (the config must match);
    after every epoch a new checkpoint is written atomically, and `on_epoch` (if given)
    is called with the history so far. Returns the history:
    one dict per epoch with train/test loss and accuracy, train time and throughput.
    """
    place_model(model, cfg, device)
    train_batches, test_batches, cache_time = make_batches(model, data, cfg, device, precision)

    optimizer = make_optimizer(model, cfg, device)
    steps_per_epoch = len(train_batches)
    if steps_per_epoch == 0:
        raise ValueError(f"batch_size={cfg.batch_size} is larger than the training set "
                         f"({train_batches.num_images} images): no full batch per epoch")
    total = steps_per_epoch * cfg.epochs
    warmup = min(round(cfg.warmup_epochs * steps_per_epoch), total // 2)
    scheduler = make_scheduler(optimizer, total, warmup)
    scaler = precision.make_scaler()
    config = cfg.to_dict()

    history, start_epoch = [], 1
    if checkpoint_path and os.path.exists(checkpoint_path):
        state = load_checkpoint(checkpoint_path)
        check_compatible(state["config"], config, checkpoint_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        history = list(state["history"])
        start_epoch = state["epoch"] + 1

    # What one training step calls: the frozen fine-tune with cached features only
    # trains the head; otherwise the (optionally compiled) whole model.
    use_compile = default_compile(device) if cfg.compile is None else cfg.compile
    step_model = torch.compile(model) if use_compile else model
    forward = model.forward_head if cfg.cache_features else step_model
    params = [p for p in model.parameters() if p.requires_grad]

    epochs = tqdm(range(start_epoch, cfg.epochs + 1), desc=cfg.run_name or "fit",
                  disable=not progress, initial=start_epoch - 1, total=cfg.epochs)
    for epoch in epochs:
        tr_loss, tr_acc, seconds, seen = train_epoch(
            step_model, forward, train_batches, epoch, optimizer, scheduler, scaler, precision,
            cfg, device, params, progress)
        synchronize(device)
        t0 = time.perf_counter()
        te_loss, te_acc = evaluate(forward, step_model, test_batches, precision, device)
        synchronize(device)
        record = dict(epoch=epoch, train_loss=tr_loss, train_acc=tr_acc, test_loss=te_loss,
                      test_acc=te_acc, epoch_time_s=seconds, images_per_s=seen / seconds,
                      eval_time_s=time.perf_counter() - t0)
        if epoch == start_epoch and cache_time:
            record["feature_cache_time_s"] = cache_time
        history.append(record)
        epochs.set_postfix(loss=f"{tr_loss:.3f}", test_acc=f"{te_acc:.1f}%")
        if checkpoint_path:
            save_checkpoint(checkpoint_path, dict(
                model=model.state_dict(), optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict(), scaler=scaler.state_dict(), rng=rng_state(),
                history=history, epoch=epoch, config=config))
        if on_epoch:
            on_epoch(list(history))
    return history
