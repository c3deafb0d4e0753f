"""One experiment end to end: config -> data -> model -> measurement -> fit -> result file.

Order matters for failing early: the config is validated before torch is touched, the
data and the pretrained weights are fetched (or refused) before the model is measured,
and nothing is written to the results folder until training ends. The only partial
artefact of an interrupted run is its checkpoint, which is what resumes it.
"""
from __future__ import annotations

import os

import torch

from .atomic import remove_orphans
from .changes import decide
from .config import ConfigError, ExperimentConfig, synthetic_classes
from .data import DeviceLoader, check_overlap, load_dataset, with_train_fraction
from .device import (device_name, resolve_device, resolve_precision, seed_everything,
                     setup_backends)
from .measure import measure
from .checkpoint import CheckpointUnusableError, check_compatible, peek_checkpoint, saved_plan
from .memory import (CudaMeter, eval_peak, fit_batch, optimizer_state_bytes,
                     resident_after_training_bytes, step_peak)
from .models import WeightsUnavailableError, build_model, weights_problem
from .probes import receptive_fields, uniform_attention_distance, vit_attention_distances
from .results import build_result, now_iso, provenance, read_result, write_result
from .batches import loader_options, uses_channels_last
from .train import NonFiniteLossError, fit, place_model, plan_training

# Test images a trained ViT's attention distance is averaged over: the mean over 256 images
# and 64 query patches per head moves by well under a pixel from one sample to another.
PROBE_IMAGES = 256


def probes(model, cfg: ExperimentConfig, data, device, eval_batch_size: int) -> dict | None:
    """How far the trained model looks (helpers/probes.py): a ViT's mean attention distance
    per block and head on the first PROBE_IMAGES test images, trained and untrained;
    ResNet-18's receptive field per stage, from its architecture. None for other models."""
    if cfg.model == "resnet18":
        return dict(receptive_field=receptive_fields(model), img_size=cfg.img_size)
    if cfg.model != "vit":
        return None
    n = min(PROBE_IMAGES, len(data.y_test))
    batches = DeviceLoader(data.x_test[:n], data.y_test[:n], train=False,
                           batch_size=eval_batch_size, **loader_options(cfg, device))
    dist = vit_attention_distances(model, batches.epoch(0))
    # The same ViT untrained (this seed's initialisation, the RNG left as it was): what
    # the trained distances are compared with, beside uniform attention (report claim 3).
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        untrained = build_model(cfg.model, data.num_classes, **cfg.model_kwargs()).to(device)
    before = vit_attention_distances(untrained, batches.epoch(0))
    return dict(attention_distance_px=dist["mean"], attention_distance_se_px=dist["se"],
                untrained_distance_px=before["mean"], untrained_distance_se_px=before["se"],
                uniform_distance_px=uniform_attention_distance(
                    cfg.img_size // cfg.patch_size, cfg.patch_size),
                images=n, img_size=cfg.img_size, patch_size=cfg.patch_size)


class Experiment:
    """Holds one run's resolved config and, once prepared, its data, model and counts."""

    def __init__(self, cfg: ExperimentConfig):
        self.cfg = cfg.resolved()                 # raises ConfigError on bad values
        self.device = resolve_device(self.cfg.device)
        self.precision = resolve_precision(self.cfg.precision, self.device)
        self.data = self.model = self.plan = None
        # The memory rule's GPU; None where memory is not checked (CPU, MPS).
        self.meter = CudaMeter(self.device) if self.device.type == "cuda" else None
        self.resume_batch: tuple[int, str] | None = None
        self.summary: dict | None = None

    def prepare(self) -> dict:
        """Load data, build and measure the model. Returns what the notebook shows first."""
        if self.summary is not None:
            return self.summary
        cfg = self.cfg
        # What stops this run whatever the data, found before the data loads: pretrained
        # weights this machine cannot get, a checkpoint of another config or recipe.
        missing = weights_problem(cfg.model, cfg.weights, cfg.mode)
        if missing:
            raise WeightsUnavailableError(missing)
        saved = peek_checkpoint(cfg.checkpoint_path)
        if isinstance(saved, dict) and self.completed() is None:     # (done: run() skips it)
            check_compatible(saved, cfg.to_dict(), cfg.checkpoint_path)
        setup_backends(self.device)
        seed_everything(cfg.seed)
        self.data = with_train_fraction(
            load_dataset(cfg.dataset, cfg.data_dir, train_subset=cfg.train_subset,
                         test_subset=cfg.test_subset, seed=cfg.seed),
            cfg.train_fraction, cfg.seed)
        # Batch size and warm-up fitted to the data; a batch that cannot work stops here,
        # before the model is built. An unset batch resumes at its checkpoint's batch.
        n_train = len(self.data.y_train)
        self.plan = plan_training(cfg, n_train)
        self.resume_batch = self._resume_batch()
        if self.resume_batch is not None:
            self.plan = plan_training(cfg, n_train, resume_batch=self.resume_batch)
        overlap = check_overlap(self.data)
        seed_everything(cfg.seed)                 # init does not depend on data loading
        self.model = build_model(cfg.model, self.data.num_classes, **cfg.model_kwargs())
        if self.meter is not None:                # the batches must also fit the GPU
            self.plan = self._fit_to_memory()
        dataset = self.data.describe()
        dataset["synthetic"] = synthetic_classes(cfg.dataset) is not None
        dataset["train_test_overlap"] = overlap
        self.summary = dict(dataset=dataset, **measure(self.model, cfg.img_size))
        return self.summary

    def _resume_batch(self) -> tuple[int, str] | None:
        """(batch, why) when batch_size is unset and this run has a checkpoint made with
        this config: its batch is kept (its schedule depends on it), even where the memory
        rule would pick another."""
        if self.cfg.batch_size is not None or not os.path.exists(self.cfg.checkpoint_path):
            return None
        saved = saved_plan(self.cfg.checkpoint_path, self.cfg.to_dict())
        if saved is None:
            return None
        kept = f"{saved['batch_size']}, kept from the checkpoint being resumed ("
        why = saved["batch_rule"]                     # the first segment's reason, once
        why = why[len(kept):-1] if why.startswith(kept) else why
        return saved["batch_size"], f"{kept}{why})"

    def _fit_to_memory(self):
        """The plan with its training and evaluation batches checked against the GPU
        (helpers.memory's rule, through self.meter)."""
        cfg, meter, n_train = self.cfg, self.meter, len(self.data.y_train)
        place_model(self.model, self.device, cfg.model)
        probe = dict(img_size=cfg.img_size, precision=self.precision, device=self.device,
                     channels_last=uses_channels_last(cfg, self.device), meter=meter)
        kept = self.resume_batch is not None
        try:
            batch, why = fit_batch(
                self.plan.batch_size, explicit=cfg.batch_size is not None or kept,
                step_peak=lambda b: step_peak(self.model, b, **probe),
                capacity=meter.capacity(),
                state_bytes=optimizer_state_bytes(self.model, cfg.optimizer), where=meter.name)
        except ConfigError as err:
            if not kept:
                raise
            raise CheckpointUnusableError(
                f"checkpoint {cfg.checkpoint_path} trained at batch {self.plan.batch_size}, "
                f"which does not fit {meter.name} ({err}). Resume it on a GPU with more "
                "memory, or delete it to start over at a batch that fits (the grid runner "
                "does this itself).") from err
        eval_b, eval_why = fit_batch(
            self.plan.eval_batch_size, explicit=False,
            step_peak=lambda b: eval_peak(self.model, b, **probe), capacity=meter.capacity(),
            state_bytes=resident_after_training_bytes(self.model, cfg.optimizer),
            where=meter.name, field="eval_batch_size")
        if why is None and eval_why is None:
            return self.plan
        return plan_training(cfg, n_train,
                             memory_batch=(batch, why) if why else None,
                             memory_eval_batch=(eval_b, eval_why) if eval_why else None,
                             resume_batch=self.resume_batch)

    def _result(self, history, status, reason, started, probed=None) -> dict:
        cfg = self.cfg
        summary = dict(self.summary)
        dataset = summary.pop("dataset")
        return build_result(
            run_name=cfg.run_name, problem=cfg.problem, model=cfg.model, label=cfg.label,
            config=cfg.to_dict(), dataset=dataset, measured=summary, history=history,
            training=self.plan.to_dict(), status=status, reason=reason, probes=probed,
            provenance=provenance(
                device=device_name(self.device), device_type=self.device.type,
                precision=self.precision.name, compile=self.plan.compile, seed=cfg.seed,
                started=started, finished=now_iso()))

    def completed(self) -> dict | None:
        """This run's result, if it is on disk and changes.decide skips it (complete, made
        with this config, execution fields such as the device aside); else None."""
        try:
            old = read_result(self.cfg.result_path)
        except (OSError, ValueError):
            return None
        return old if decide(self.cfg.to_dict(), old).action == "skip" else None

    def run(self, progress: bool = True) -> dict:
        """Train (resuming from this run's checkpoint if one exists) and write the result.
        A run already complete with this config is not trained again: its result is
        returned (delete the result file, or pick another run_name, to train it anew)."""
        done = self.completed()
        if done is not None:
            print(f"{self.cfg.result_path} is already complete with this config: not "
                  "training again (delete it, or pick another run_name, to start over)")
            return done
        started = now_iso()
        self.prepare()
        for path in (self.cfg.result_path, self.cfg.checkpoint_path):
            for orphan in remove_orphans(path):          # left by a killed earlier attempt
                print(f"removed an unfinished temp file: {orphan}")
        history: list[dict] = []

        def keep(so_far):                         # so a NaN still reports the good epochs
            history[:] = so_far

        try:
            history = fit(self.model, self.data, self.cfg, device=self.device,
                          precision=self.precision, progress=progress,
                          checkpoint_path=self.cfg.checkpoint_path, on_epoch=keep,
                          plan=self.plan)
        except NonFiniteLossError as err:
            write_result(self._result(history, "failed", str(err), started))
            raise
        probed = probes(self.model, self.cfg, self.data, self.device, self.plan.eval_batch_size)
        result = self._result(history, "complete", None, started, probed)
        path = write_result(result)
        if not self.cfg.keep_checkpoints and os.path.exists(self.cfg.checkpoint_path):
            os.remove(self.cfg.checkpoint_path)           # the result file now holds the run
        return read_result(path)


def run_experiment(cfg: ExperimentConfig, progress: bool = True) -> dict:
    return Experiment(cfg).run(progress=progress)
