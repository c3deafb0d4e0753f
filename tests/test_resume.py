"""Resume across machines (a Colab disconnect, then another GPU), honest epoch times after a
resume, and checkpoint hygiene. CPU only: fp16 and bf16 run under CPU autocast, which is
enough to exercise what differs between precisions (the GradScaler and its state)."""
import os

import pytest
import torch

from helpers.atomic import atomic_path, remove_orphans
from helpers.checkpoint import CheckpointUnusableError, load_checkpoint, resume, save_checkpoint
from helpers.config import ExperimentConfig
from helpers.data import make_synthetic
from helpers.device import Precision, seed_everything
from helpers.experiment import Experiment
from helpers.models import build_model
from helpers.results import epoch_time_summary
from helpers.train import TrainState, fit

CPU = torch.device("cpu")
DATA = make_synthetic(n_train=96, n_test=32, num_classes=10, seed=0)


def cfg_at(tmp_path, **over):
    base = dict(model="vit", dim=32, depth=1, heads=2, patch_size=8, dataset="synthetic",
                train_subset=96, test_subset=32, epochs=3, batch_size=32, device="cpu",
                results_dir=str(tmp_path / "results"), run_name="r", keep_checkpoints=True)
    base.update(over)
    return ExperimentConfig(**base).resolved()


class Disconnect(Exception):
    pass


def train(cfg, precision_name, *, stop_after=None):
    """fit() under a precision; optionally 'disconnected' after `stop_after` epochs."""
    def cut(history):
        if stop_after is not None and len(history) == stop_after:
            raise Disconnect
    seed_everything(cfg.seed)
    model = build_model("vit", DATA.num_classes, **cfg.model_kwargs())
    try:
        return fit(model, DATA, cfg, device=CPU, precision=Precision(precision_name, "cpu"),
                   progress=False, checkpoint_path=cfg.checkpoint_path, on_epoch=cut)
    except Disconnect:
        return None


@pytest.mark.parametrize("before, after", [("bf16", "fp16"), ("fp16", "bf16"),
                                           ("fp32", "fp16"), ("fp16", "fp32")])
def test_a_checkpoint_resumes_under_another_precision(tmp_path, before, after):
    cfg = cfg_at(tmp_path)
    assert train(cfg, before, stop_after=1) is None
    saved = load_checkpoint(cfg.checkpoint_path)
    assert saved["precision"] == before and bool(saved["scaler"]) == (before == "fp16")
    history = train(cfg, after)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert [h["precision"] for h in history] == [before, after, after]
    assert [h["segment"] for h in history] == [1, 2, 2]
    assert history[0] == saved["history"][0]              # the first process's epoch, kept
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in history)


def test_fp16_scaler_state_is_restored_only_when_both_sides_use_it(tmp_path):
    cfg = cfg_at(tmp_path)
    train(cfg, "fp16", stop_after=1)
    saved = load_checkpoint(cfg.checkpoint_path)["scaler"]
    model = build_model("vit", DATA.num_classes, **cfg.model_kwargs())

    def resume_with(name):
        state = TrainState.create(model, cfg, CPU, Precision(name, "cpu"), total_steps=9,
                                  warmup_steps=1, compile=False)
        resume(cfg.checkpoint_path, cfg.to_dict(), state)
        return state.scaler

    fp16 = resume_with("fp16")
    assert fp16.is_enabled() and fp16.state_dict() == saved          # restored exactly
    assert resume_with("bf16").state_dict() == {}                    # no scaler, no error
    # bf16 checkpoint into an fp16 run: a fresh scaler at its initial scale.
    save_checkpoint(cfg.checkpoint_path, dict(load_checkpoint(cfg.checkpoint_path), scaler={}))
    fresh = resume_with("fp16")
    assert fresh.get_scale() == torch.amp.GradScaler("cpu").get_scale()


def test_a_gpu_checkpoint_resumes_on_the_cpu_and_says_so(tmp_path):
    """A checkpoint as a CUDA run writes it (CUDA RNG states, a GPU name, bf16) resumes
    on this CPU in fp32; the result names both devices and averages honestly."""
    cfg = cfg_at(tmp_path, epochs=4)
    train(cfg, "bf16", stop_after=2)
    state = load_checkpoint(cfg.checkpoint_path)
    gpu = "NVIDIA H100 80GB HBM3"
    state["rng"]["cuda"] = [torch.get_rng_state(), torch.get_rng_state()]   # 2 GPUs there
    state["history"] = [dict(h, device=gpu) for h in state["history"]]
    save_checkpoint(cfg.checkpoint_path, state)
    history = train(cfg, "fp32")
    assert [h["device"] for h in history][:2] == [gpu, gpu]
    here = history[2]["device"]
    assert here.startswith("cpu") and history[3]["device"] == here
    summary = epoch_time_summary(history)
    assert summary["devices"] == [gpu, here]
    assert summary["epoch_time_epochs"] == [2, 4]       # 1 and 3 open their process
    assert f"2 devices: {gpu}, {here}" in summary["epoch_time_note"]


def test_the_optimiser_keeps_this_machines_kernel_choice_after_a_resume(tmp_path):
    """A CUDA run's AdamW is fused; its checkpoint's param groups say so. Resumed here, the
    optimiser keeps the kernel options a fresh run on this machine would have."""
    cfg = cfg_at(tmp_path)
    train(cfg, "fp32", stop_after=1)
    saved = load_checkpoint(cfg.checkpoint_path)
    saved["optimizer"]["param_groups"] = [dict(g, fused=True, foreach=False)
                                          for g in saved["optimizer"]["param_groups"]]
    save_checkpoint(cfg.checkpoint_path, saved)
    model = build_model("vit", DATA.num_classes, **cfg.model_kwargs())
    state = TrainState.create(model, cfg, CPU, Precision("fp32", "cpu"), total_steps=9,
                              warmup_steps=1, compile=False)
    fresh = [(g.get("fused"), g.get("foreach")) for g in state.optimizer.param_groups]
    resume(cfg.checkpoint_path, cfg.to_dict(), state)
    assert [(g.get("fused"), g.get("foreach")) for g in state.optimizer.param_groups] == fresh
    assert fresh[0] != (True, False)
    assert state.optimizer.param_groups[0]["lr"] == saved["optimizer"]["param_groups"][0]["lr"]


def test_a_cpu_checkpoint_resumes_under_gpu_optimiser_options(tmp_path):
    """A checkpoint written on a CPU (foreach AdamW, `step` on the CPU), resumed where the
    optimiser places `step` on the parameters' device, as fused AdamW does on a GPU. The
    GPU is faked by parameters on the meta device and capturable=True, which the
    placement rule of load_state_dict treats as it treats fused=True (fused AdamW itself
    refuses meta tensors). Before the fix the steps stayed on the CPU, and the first fused
    step on a GPU raised "Expected all tensors to be on the same device". What only a GPU
    can confirm: that fused AdamW then steps without error and matches foreach."""
    from helpers.checkpoint import load_optimizer_state
    cfg = cfg_at(tmp_path)
    train(cfg, "fp32", stop_after=1)
    saved = load_checkpoint(cfg.checkpoint_path)["optimizer"]
    assert all(s["step"].device.type == "cpu" for s in saved["state"].values())
    assert not any(g.get("capturable") or g.get("fused") for g in saved["param_groups"])
    model = build_model("vit", DATA.num_classes, **cfg.model_kwargs()).to("meta")
    kept = model.no_weight_decay()                       # make_optimizer's two groups
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and n not in kept]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or n in kept]
    gpu_like = torch.optim.AdamW([dict(params=decay), dict(params=no_decay, weight_decay=0.0)],
                                 lr=1e-3, capturable=True)
    load_optimizer_state(gpu_like, saved)
    steps = [s["step"] for s in gpu_like.state.values()]
    assert len(steps) == len(saved["state"])
    assert all(t.device.type == "meta" for t in steps)
    assert all(g["capturable"] for g in gpu_like.param_groups)


def test_epoch_time_excludes_each_processes_first_epoch():
    def h(epoch, seconds, segment, device="gpu A"):
        return dict(epoch=epoch, epoch_time_s=seconds, segment=segment, device=device)
    history = [h(1, 9.0, 1), h(2, 1.0, 1), h(3, 2.0, 1), h(4, 8.0, 2, "gpu B"),
               h(5, 3.0, 2, "gpu B")]
    s = epoch_time_summary(history)
    assert s["epoch_time_epochs"] == [2, 3, 5]
    assert s["epoch_time_s"] == pytest.approx((1.0 + 2.0 + 3.0) / 3)
    assert s["epoch_time_note"].startswith("mean of epochs 2-3, 5; epochs 1, 4 ")
    assert s["devices"] == ["gpu A", "gpu B"]
    # Nothing but first epochs: all of them, and the note says warm-up is included.
    only_first = epoch_time_summary([h(1, 4.0, 1), h(2, 6.0, 2)])
    assert only_first["epoch_time_s"] == 5.0
    assert "warm-up/compile is included" in only_first["epoch_time_note"]
    # A run never resumed: one segment, and only its first epoch is left out.
    plain = epoch_time_summary([h(1, 5.0, 1), h(2, 2.0, 1)])
    assert plain["epoch_time_epochs"] == [2] and plain["epoch_time_note"].startswith(
        "epoch 2 only; epoch 1 ")


def test_an_unreadable_checkpoint_gives_a_clear_error(tmp_path):
    cfg = cfg_at(tmp_path)
    os.makedirs(os.path.dirname(cfg.checkpoint_path))
    with open(cfg.checkpoint_path, "wb") as f:
        f.write(b"not a checkpoint")
    with pytest.raises(CheckpointUnusableError, match="cannot be read.*Delete it"):
        train(cfg, "fp32")


def test_a_complete_run_removes_its_checkpoint_unless_asked_to_keep_it(tmp_path):
    gone = cfg_at(tmp_path / "a", keep_checkpoints=False, epochs=1)
    result = Experiment(gone).run(progress=False)
    assert result["status"] == "complete" and not os.path.exists(gone.checkpoint_path)
    kept = cfg_at(tmp_path / "b", keep_checkpoints=True, epochs=1)
    Experiment(kept).run(progress=False)
    assert load_checkpoint(kept.checkpoint_path)["epoch"] == 1


def test_orphaned_temp_files_are_removed_at_the_next_start(tmp_path):
    cfg = cfg_at(tmp_path, epochs=1)
    # What a SIGKILL in the middle of a checkpoint write leaves behind.
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(cfg.checkpoint_path, suffix=".pt") as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half a checkpoint")
            raise KeyboardInterrupt          # cleaned by the context manager...
    folder = os.path.dirname(cfg.checkpoint_path)
    orphan = os.path.join(folder, f".tmp-{os.path.basename(cfg.checkpoint_path)}-x.pt")
    other = os.path.join(folder, ".tmp-another-run.pt-x.pt")
    for path in (orphan, other):             # ...a real kill is not: make the orphans by hand
        open(path, "wb").close()
    Experiment(cfg).run(progress=False)
    assert not os.path.exists(orphan)
    assert os.path.exists(other)             # another run's temp file is not ours to touch
    assert remove_orphans(cfg.checkpoint_path) == []


# ----------------------------------------------------------------------------- another GPU
def gpu_vit(tmp_path, **over):
    base = dict(model="vit", dim=32, depth=1, heads=2, patch_size=8, dataset="synthetic",
                train_subset=640, test_subset=64, epochs=3, device="cpu", train_eval_images=0,
                results_dir=str(tmp_path / "results"), run_name="r", keep_checkpoints=True)
    return ExperimentConfig(**dict(base, **over))


def run_on(cfg, gpu, stop_after=None, monkeypatch=None):
    """Experiment(cfg).run() with its memory meter replaced by a fake GPU (tests/
    test_memory.py's FakeGPU); 'disconnected' after `stop_after` epochs."""
    import helpers.experiment as experiment
    real_fit = experiment.fit

    def cut_fit(*args, on_epoch=None, **kw):
        def cut(history):
            on_epoch(history)
            if stop_after is not None and len(history) == stop_after:
                raise Disconnect
        return real_fit(*args, on_epoch=cut, **kw)
    exp = Experiment(cfg)
    exp.meter = gpu
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(experiment, "fit", cut_fit)
        try:
            return exp.run(progress=False)
        except Disconnect:
            return None


def test_a_resume_on_a_larger_gpu_keeps_the_checkpoints_batch_and_schedule(tmp_path):
    """Trained at batch 16 on a small GPU (the unset batch halved from 32 to fit), resumed
    where 32 would fit: the run keeps 16, so its schedule ends where an uninterrupted run
    on the small GPU ends, bit for bit on this CPU."""
    from test_memory import FakeGPU
    small = dict(name="Tesla T4", max_train=16)
    whole = run_on(gpu_vit(tmp_path / "whole"), FakeGPU(**small))
    cfg = gpu_vit(tmp_path / "cut")
    assert run_on(cfg, FakeGPU(**small), stop_after=1) is None
    assert run_on(cfg, FakeGPU(name="NVIDIA A100"), stop_after=2) is None
    resumed = run_on(cfg, FakeGPU(name="NVIDIA A100"))           # a second resume
    assert [h["batch_size"] for h in resumed["history"]] == [16, 16, 16]
    assert resumed["training"]["batch_size"] == 16
    rule = resumed["training"]["batch_rule"]
    assert rule.count("kept from the checkpoint") == 1 and "halved" in rule, rule
    assert [h["segment"] for h in resumed["history"]] == [1, 2, 3]
    for a, b in zip(whole["history"], resumed["history"]):
        assert (a["train_loss"], a["test_loss"]) == (b["train_loss"], b["test_loss"])
    saved = load_checkpoint(cfg.checkpoint_path)
    assert saved["scheduler"]["last_epoch"] == saved["plan"]["total_steps"]
    assert saved["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_a_resume_where_the_checkpoints_batch_does_not_fit_is_refused_clearly(tmp_path):
    """Trained at 32 on a large GPU, resumed on one where only 16 fits: refused before
    training, naming the checkpoint and the batch, and no result is written."""
    from test_memory import FakeGPU
    cfg = gpu_vit(tmp_path)
    assert run_on(cfg, FakeGPU(name="NVIDIA A100"), stop_after=1) is None
    with pytest.raises(CheckpointUnusableError, match=r"trained at batch 32.*Tesla T4"):
        run_on(cfg, FakeGPU(name="Tesla T4", max_train=16))
    assert not os.path.exists(cfg.result_path)
    assert load_checkpoint(cfg.checkpoint_path)["epoch"] == 1      # left as it was


def test_fit_refuses_a_checkpoint_made_under_another_schedule(tmp_path):
    """The core's own guard, whatever the caller planned: a plan with another batch, and a
    checkpoint without a plan (written by code older than plans)."""
    import dataclasses
    from helpers.train import plan_training
    cfg = cfg_at(tmp_path, batch_size=None)
    assert train(cfg, "fp32", stop_after=1) is None
    plan = plan_training(cfg, len(DATA.y_train))
    other = dataclasses.replace(plan, batch_size=plan.batch_size // 2,
                                steps_per_epoch=plan.steps_per_epoch * 2,
                                total_steps=plan.total_steps * 2)
    model = build_model("vit", DATA.num_classes, **cfg.model_kwargs())
    with pytest.raises(CheckpointUnusableError, match=r"another schedule.*batch_size"):
        fit(model, DATA, cfg, device=CPU, precision=Precision("fp32", "cpu"), progress=False,
            checkpoint_path=cfg.checkpoint_path, plan=other)
    old = load_checkpoint(cfg.checkpoint_path)
    del old["plan"]                                    # as written before plans were saved
    save_checkpoint(str(tmp_path / "old.pt"), old)
    with pytest.raises(CheckpointUnusableError, match=r"records no training plan"):
        fit(model, DATA, cfg, device=CPU, precision=Precision("fp32", "cpu"), progress=False,
            checkpoint_path=str(tmp_path / "old.pt"), plan=plan)
    history = fit(model, DATA, cfg, device=CPU, precision=Precision("fp32", "cpu"),
                  progress=False, checkpoint_path=cfg.checkpoint_path, plan=plan)
    assert [h["epoch"] for h in history] == [1, 2, 3]


def test_a_checkpoint_records_its_recipe_and_another_recipe_is_not_resumed(tmp_path):
    """A checkpoint written by other training code (another results.recipe_id) is refused
    like one of another config; one from before recipes counts as that code's recipe."""
    import helpers.changes
    from helpers.checkpoint import CheckpointMismatchError, saved_plan
    from helpers.results import RECIPE_BEFORE_VERSIONS, recipe_id
    cfg = cfg_at(tmp_path)
    assert train(cfg, "fp32", stop_after=1) is None
    saved = load_checkpoint(cfg.checkpoint_path)
    assert saved["recipe"] == recipe_id()
    assert saved_plan(cfg.checkpoint_path, cfg.to_dict()) == saved["plan"]
    torch.save(dict(saved, recipe="0123456789ab"), cfg.checkpoint_path)   # other code's
    assert saved_plan(cfg.checkpoint_path, cfg.to_dict()) is None
    with pytest.raises(CheckpointMismatchError, match=f"recipe: 0123456789ab -> {recipe_id()}"):
        train(cfg, "fp32")
    del saved["recipe"]                                # as written before recipes
    torch.save(saved, cfg.checkpoint_path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(helpers.changes, "recipe_id", lambda: "fedcba987654")
        with pytest.raises(CheckpointMismatchError, match=RECIPE_BEFORE_VERSIONS):
            train(cfg, "fp32")
        mp.setattr(helpers.changes, "recipe_id", lambda: RECIPE_BEFORE_VERSIONS)
        assert [h["epoch"] for h in train(cfg, "fp32")] == [1, 2, 3]


def test_a_contiguous_checkpoint_resumes_into_channels_last_fused_adamw():
    """ResNet-18's conv weights are channels_last on a GPU (train.place_model), contiguous
    on a CPU, so a CPU checkpoint's AdamW moments arrive in another memory layout than
    their parameters. Fused AdamW pairs elements by memory: CUDA's raises "must have same
    dtype, device, and layout", the CPU's (standing in for it here) silently updates each
    weight with another weight's moments. One resumed step must equal the same step with
    the checkpoint's own layout and the unfused kernel. Only a GPU can confirm CUDA's
    kernel then steps without error."""
    import copy

    import torch.nn.functional as F

    from helpers.checkpoint import load_optimizer_state
    from helpers.train import make_optimizer
    cfg = ExperimentConfig(model="resnet18", optimizer="adamw", dataset="synthetic",
                           device="cpu").resolved()
    seed_everything(0)
    model = build_model("resnet18", 10)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    opt = make_optimizer(model, cfg, CPU, fused=False)
    for _ in range(2):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    saved, grads = opt.state_dict(), [p.grad for p in model.parameters()]

    def resumed_step(memory_format, fused):
        m = copy.deepcopy(model).to(memory_format=memory_format)
        o = make_optimizer(m, cfg, CPU, fused=fused)
        load_optimizer_state(o, copy.deepcopy(saved))   # on a CPU, loading aliases `saved`
        for p, g in zip(m.parameters(), grads):
            p.grad = torch.empty_like(p).copy_(g)
        o.step()
        return m.parameters()

    convs = [p for p in model.parameters() if p.ndim == 4]
    assert convs and all(p.is_contiguous() for p in convs)
    for want, got in zip(resumed_step(torch.contiguous_format, False),
                         resumed_step(torch.channels_last, True)):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
