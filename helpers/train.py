"""fit(): epochs of training, each followed by evaluation, with checkpoints and resume.

Hot-path rules (they are what makes an epoch take seconds on a GPU):
- batches come from the device-resident DeviceLoader, never from host memory;
- nothing inside the step loop reads a device value on the host (no .item()): loss
  and accuracy are accumulated on the device and read once per epoch;
- the clock is read only after synchronising the device, and evaluation has its own
  clock, so "train time per epoch" is exactly the training passes.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import speed
from .checkpoint import resume, save_checkpoint
from .batches import make_batches, train_sample_batches
from .device import Precision, device_name, eval_kernels, rng_state, synchronize
from .models import prefers_channels_last
from .rules import AUTO_WARMUP_MAX_SHARE, MIN_AUTO_BATCH, MIN_STEPS_PER_EPOCH, warmup_steps


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or inf; the run cannot continue."""


# ----------------------------------------------------------------------------- optimiser
def fused_adamw(device_type: str) -> bool:
    """AdamW's fused kernel (every tensor updated in one launch) where it pays: CUDA. A
    CPU can run it too (torch >= 2.4), which is how tests exercise it."""
    return device_type == "cuda"


def make_optimizer(model: nn.Module, cfg, device: torch.device,
                   fused: bool | None = None) -> torch.optim.Optimizer:
    """AdamW or SGD over the trainable parameters. Biases and norm gains (1-D tensors),
    and what the model's no_weight_decay() names (timm's convention: a ViT's position
    embeddings and class token, Swin's relative-position bias tables), get no weight decay:
    shrinking them towards zero only hurts. `fused` (AdamW only) defaults to
    fused_adamw(device.type)."""
    kept = getattr(model, "no_weight_decay", set)()
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("the model has no trainable parameters")
    decay = [p.ndim >= 2 and n not in kept for n, p in named]
    groups = [dict(params=[p for (_, p), d in zip(named, decay) if d],
                   weight_decay=cfg.weight_decay),
              dict(params=[p for (_, p), d in zip(named, decay) if not d], weight_decay=0.0)]
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "adamw":
        fused = fused_adamw(torch.device(device).type) if fused is None else fused
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999), fused=fused)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)


def make_scheduler(optimizer, total_steps: int, warmup_steps: int):
    """Linear warm-up to the peak learning rate, then cosine decay to zero, per step."""
    def factor(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# ----------------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class TrainingPlan:
    """What a run trains with once the data size and the device are known: the values the
    config may leave to a rule (batch sizes, warm-up), and whether it is compiled.
    Recorded in the result and in every checkpoint, which resumes only under the same
    schedule (checkpoint.SCHEDULE_FIELDS)."""
    batch_size: int
    batch_rule: str
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    warmup_rule: str
    compile: bool
    eval_batch_size: int = 1024
    eval_batch_rule: str = "eval_batch_size in the config"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def plan_training(cfg, n_train: int, *,
                  memory_batch: tuple[int, str] | None = None,
                  memory_eval_batch: tuple[int, str] | None = None,
                  resume_batch: tuple[int, str] | None = None) -> TrainingPlan:
    """The plan for `n_train` training images; ConfigError if an explicit batch size
    cannot work. Cheap: call it right after the data loads. `memory_batch` and
    `memory_eval_batch`: (batch, why) when helpers.memory lowered a batch to fit the GPU;
    `resume_batch`: (batch, why) for an unset batch_size whose checkpoint trained at
    another batch, which the schedule must keep."""
    cfg.check_batch_size(n_train)
    batch = cfg.train_batch_size(n_train)
    if resume_batch is not None and cfg.batch_size is None:
        batch = resume_batch[0]
    if memory_batch is not None:
        batch = min(batch, memory_batch[0])
    if cfg.batch_size is not None:
        batch_rule = "set in the config"
    elif batch == cfg.default_batch_size():
        batch_rule = f"per-model default {batch}"
    elif n_train // batch >= MIN_STEPS_PER_EPOCH:
        batch_rule = (f"per-model default {cfg.default_batch_size()} halved to give at least "
                      f"{MIN_STEPS_PER_EPOCH} steps per epoch on {n_train} images")
    else:
        batch_rule = (f"per-model default {cfg.default_batch_size()} halved down to the "
                      f"minimum of {MIN_AUTO_BATCH}: {n_train} images give "
                      f"{n_train // batch} steps per epoch, fewer than {MIN_STEPS_PER_EPOCH}")
    if resume_batch is not None and cfg.batch_size is None and batch == resume_batch[0]:
        batch_rule = resume_batch[1]
    if memory_batch is not None:
        batch_rule = memory_batch[1]
    steps = n_train // batch                       # the training loader drops the last batch
    total = steps * cfg.epochs
    warmup = warmup_steps(cfg.warmup_epochs, steps, total)
    warmup_rule = (f"automatic: 1 epoch, at most {AUTO_WARMUP_MAX_SHARE * 100:.0f} % of the steps"
                   if cfg.warmup_epochs is None else f"warmup_epochs={cfg.warmup_epochs}")
    eval_b, eval_rule = cfg.eval_batch_size, "eval_batch_size in the config"
    if memory_eval_batch is not None and memory_eval_batch[0] < eval_b:
        eval_b, eval_rule = memory_eval_batch
    return TrainingPlan(batch, batch_rule, steps, total, warmup, warmup_rule, cfg.compile,
                        eval_b, eval_rule)


def place_model(model: nn.Module, device, name: str) -> nn.Module:
    """Move the model (registered as `name`) to the device, in the memory format it wants
    there (models.prefers_channels_last)."""
    model.to(device)
    if device.type == "cuda" and prefers_channels_last(name):
        model.to(memory_format=torch.channels_last)
    return model


# ----------------------------------------------------------------------------- state
@dataclass
class TrainState:
    """Everything one training step touches, passed around as one object.

    `model` holds the weights (what a checkpoint saves, what eval/train mode is set on);
    `forward` is what a step calls: the model itself or its torch.compile wrapper."""
    model: nn.Module
    forward: Callable
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    precision: Precision
    params: list            # trainable parameters, for gradient clipping
    first_step_s: float | None = None   # the last train_epoch's first step (compile, autotune)

    @classmethod
    def create(cls, model: nn.Module, cfg, device, precision: Precision, *, total_steps: int,
               warmup_steps: int, compile: bool) -> "TrainState":
        optimizer = make_optimizer(model, cfg, device)
        return cls(model, speed.compiled_forward(model, compile), optimizer,
                   make_scheduler(optimizer, total_steps, warmup_steps), precision.make_scaler(),
                   precision, [p for p in model.parameters() if p.requires_grad])


# ----------------------------------------------------------------------------- epochs
def train_epoch(state: TrainState, batches, epoch: int, cfg, device, progress: bool = False):
    """One pass over the training set. Returns (loss, acc%, seconds, images), timed honestly."""
    state.model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    state.first_step_s = None
    synchronize(device)
    t0 = time.perf_counter()
    for x, y in tqdm(batches.epoch(epoch), total=len(batches), desc=f"epoch {epoch} train",
                     leave=False, disable=not progress):
        with state.precision.autocast():
            logits = state.forward(x)                # (B, num_classes)
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
        state.optimizer.zero_grad(set_to_none=True)
        state.scaler.scale(loss).backward()
        if cfg.grad_clip:
            state.scaler.unscale_(state.optimizer)
            torch.nn.utils.clip_grad_norm_(state.params, cfg.grad_clip)
        state.scaler.step(state.optimizer)
        state.scaler.update()
        state.scheduler.step()
        loss_sum += loss.detach().float() * y.shape[0]
        correct += (logits.detach().argmax(1) == y).sum()
        seen += y.shape[0]
        if state.first_step_s is None:            # one sync per epoch: where compile shows
            synchronize(device)
            state.first_step_s = time.perf_counter() - t0
    synchronize(device)
    seconds = time.perf_counter() - t0
    loss = (loss_sum / max(seen, 1)).item()          # the epoch's one host read
    if not math.isfinite(loss):
        raise NonFiniteLossError(
            f"training loss became {loss} in epoch {epoch} (lr={cfg.lr}, precision="
            f"{state.precision.name}). Lower the learning rate, keep grad_clip on, or use "
            "bf16/fp32.")
    return loss, 100.0 * correct.item() / max(seen, 1), seconds, seen


@torch.no_grad()
def evaluate(state: TrainState, batches, device, epoch: int = 0, progress: bool = False):
    """Test loss (plain cross-entropy, no smoothing) and accuracy in percent."""
    state.model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    with eval_kernels(device):                    # no second cuDNN autotune for eval shapes
        for x, y in tqdm(batches.epoch(epoch), total=len(batches), desc="eval", leave=False,
                         disable=not progress):
            with state.precision.autocast():
                logits = state.forward(x)
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
            correct += (logits.argmax(1) == y).sum()
            seen += y.shape[0]
    return (loss_sum / max(seen, 1)).item(), 100.0 * correct.item() / max(seen, 1)


# ----------------------------------------------------------------------------- fit
def checkpoint_state(state: TrainState, history: list[dict], config: dict,
                     plan: TrainingPlan) -> dict:
    """What a checkpoint holds after the last epoch of `history` (helpers.checkpoint)."""
    return dict(model=state.model.state_dict(), optimizer=state.optimizer.state_dict(),
                scheduler=state.scheduler.state_dict(), scaler=state.scaler.state_dict(),
                rng=rng_state(), history=history, epoch=history[-1]["epoch"], config=config,
                precision=state.precision.name, plan=plan.to_dict())


def fit(model: nn.Module, data, cfg, *, device, precision, progress: bool = True,
        checkpoint_path: str | None = None, on_epoch=None,
        plan: TrainingPlan | None = None) -> list[dict]:
    """Train `model` on `data` for cfg.epochs and return the history, one dict per epoch:
    train loss/accuracy (running, over the augmented batches), test and train-sample
    (train_eval_*) loss/accuracy when evaluated, train time and throughput, and the
    process ("segment": 1, then 2 after a resume, ...), device and precision that ran it.

    An existing `checkpoint_path` is resumed (same config; device and precision may
    differ), and a new checkpoint is written atomically after every epoch, then
    `on_epoch(history)` is called. `plan` defaults to plan_training(...).
    """
    with contextlib.ExitStack() as stack:
        return _fit(stack, model, data, cfg, device=device, precision=precision,
                    progress=progress, checkpoint_path=checkpoint_path, on_epoch=on_epoch,
                    plan=plan or plan_training(cfg, len(data.y_train)))


def _fit(stack, model, data, cfg, *, device, precision, progress, checkpoint_path, on_epoch,
         plan) -> list[dict]:
    run_cfg = dataclasses.replace(cfg, batch_size=plan.batch_size,      # batches as planned
                                  eval_batch_size=plan.eval_batch_size)
    place_model(model, device, cfg.model)
    train_batches, test_batches = make_batches(data, run_cfg, device)
    sample_batches = train_sample_batches(data, run_cfg, device)
    if plan.compile:   # kernels compile in the first steps: the cache must be set till the end
        stack.enter_context(speed.compile_cache(cfg.results_dir))
        speed.reset_compiler()
    state = TrainState.create(model, run_cfg, device, precision, total_steps=plan.total_steps,
                              warmup_steps=plan.warmup_steps, compile=plan.compile)
    config = cfg.to_dict()

    history, start_epoch = [], 1
    if checkpoint_path and os.path.exists(checkpoint_path):
        history, start_epoch = resume(checkpoint_path, config, state, plan.to_dict())
    where = dict(segment=1 + max((h.get("segment", 1) for h in history), default=0),
                 device=device_name(device), precision=precision.name,
                 batch_size=plan.batch_size)

    epochs = tqdm(range(start_epoch, cfg.epochs + 1), desc=cfg.run_name or "fit",
                  disable=not progress, initial=start_epoch - 1, total=cfg.epochs)
    for epoch in epochs:
        tr_loss, tr_acc, seconds, seen = train_epoch(state, train_batches, epoch, run_cfg, device,
                                                     progress)
        synchronize(device)
        t0 = time.perf_counter()
        te_loss = te_acc = sample_loss = sample_acc = None
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            te_loss, te_acc = evaluate(state, test_batches, device)
            # The fixed train sample, unaugmented and in eval mode as the test set is: the
            # train side of the generalisation gap (train_acc is the running, augmented one).
            if sample_batches:
                sample_loss, sample_acc = evaluate(state, sample_batches, device)
        synchronize(device)
        record = dict(epoch=epoch, train_loss=tr_loss, train_acc=tr_acc, test_loss=te_loss,
                      test_acc=te_acc, train_eval_loss=sample_loss, train_eval_acc=sample_acc,
                      epoch_time_s=seconds, images_per_s=seen / seconds,
                      eval_time_s=time.perf_counter() - t0, first_step_s=state.first_step_s,
                      **where)
        history.append(record)
        epochs.set_postfix(loss=f"{tr_loss:.3f}",
                           test_acc="-" if te_acc is None else f"{te_acc:.1f}%")
        if checkpoint_path:
            save_checkpoint(checkpoint_path, checkpoint_state(state, history, config, plan))
        if on_epoch:
            on_epoch(list(history))
    return history
