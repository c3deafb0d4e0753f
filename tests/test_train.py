"""fit(): learning happens, resume is exact, a NaN stops the run loudly."""
import json
import os

import pytest
import torch
from torch._dynamo.utils import counters

from helpers.batches import loader_options
from helpers.config import ExperimentConfig
from helpers.data import DeviceLoader, make_synthetic
from helpers.device import resolve_precision, seed_everything
from helpers.experiment import Experiment
from helpers.models import build_model
from helpers.train import NonFiniteLossError, TrainState, fit, make_scheduler, train_epoch

CPU = torch.device("cpu")
FP32 = resolve_precision("fp32", CPU)


def tiny_vit_cfg(tmp_path, **over):
    base = dict(model="vit", dim=32, depth=1, heads=2, patch_size=8, dataset="synthetic",
                train_subset=256, test_subset=128, epochs=3, batch_size=64, device="cpu",
                results_dir=str(tmp_path / "results"), run_name="tiny")
    base.update(over)
    return ExperimentConfig(**base).resolved()


def test_a_kept_output_buffer_trains_exactly_like_fresh_batches():
    """make_batches has resized CPU batches written into one kept buffer. The training step
    is done with a batch (backward included) before the next overwrites it, so weights must
    match training on fresh batches bit for bit, over two epochs and a partial last batch."""
    cfg = ExperimentConfig(model="vit", dim=32, depth=1, heads=2, patch_size=8, img_size=48,
                           batch_size=8, device="cpu").resolved()
    data = make_synthetic(n_train=20, n_test=1, num_classes=10, seed=0)
    models = []
    for reuse in (True, False):
        seed_everything(0)
        model = build_model("vit", 10, **cfg.model_kwargs())
        opts = dict(loader_options(cfg, CPU), reuse_output=reuse)
        loader = DeviceLoader(data.x_train, data.y_train, batch_size=8, train=True,
                              drop_last=False, **opts)
        assert opts["img_size"] == 48 and loader.resized
        state = TrainState.create(model, cfg, CPU, FP32, total_steps=6, warmup_steps=1,
                                  compile=False)
        for epoch in range(2):
            train_epoch(state, loader, epoch, cfg, CPU)
        models.append(model)
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values()):
        assert torch.equal(a, b)


def test_compiled_training_matches_eager_and_checkpoints_plain_weights(tmp_path):
    """cfg.compile=True runs the training and evaluation steps through torch.compile of the
    whole model (the CPU backend here); the losses must match eager ones, and the
    checkpoint must hold the model's own parameter names, so a compiled run resumes an
    eager one and vice versa.

    SGD, not AdamW: the gradient of the key bias is exactly zero in exact arithmetic
    (softmax ignores a constant shift), so in floating point it is rounding noise, which
    Adam normalises into full-size steps of either sign; eager and compiled kernels round
    differently, so AdamW weights legitimately differ there by up to lr per step."""
    data = make_synthetic(n_train=64, n_test=32, num_classes=10, seed=0)
    runs = {}
    for compiled in (False, True):
        cfg = tiny_vit_cfg(tmp_path, epochs=2, batch_size=16, eval_batch_size=32,
                           compile=compiled, optimizer="sgd", lr=0.05,
                           keep_checkpoints=True)
        seed_everything(0)
        model = build_model("vit", 10, **cfg.model_kwargs())
        ckpt = tmp_path / f"compiled-{compiled}.pt"
        counters.clear()
        runs[compiled] = (fit(model, data, cfg, device=CPU, precision=FP32, progress=False,
                              checkpoint_path=str(ckpt)),
                         torch.load(ckpt, weights_only=True)["model"])
        assert (counters["stats"]["unique_graphs"] > 0) == compiled   # dynamo really ran
    (eager, eager_w), (comp, comp_w) = runs[False], runs[True]
    for a, b in zip(eager, comp):
        for key in ("train_loss", "test_loss", "test_acc"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-4), key
    assert comp_w.keys() == eager_w.keys()
    assert not any("_orig_mod" in k for k in comp_w)
    for k in eager_w:
        assert torch.allclose(comp_w[k], eager_w[k], atol=1e-4), k


def test_schedule_warms_up_then_decays_to_zero():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_scheduler(opt, total_steps=10, warmup_steps=2)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:]))          # monotone decay
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_interrupted_and_resumed_run_matches_uninterrupted_run_exactly(tmp_path):
    # Uninterrupted reference.
    ref_cfg = tiny_vit_cfg(tmp_path / "ref", keep_checkpoints=True)
    ref = Experiment(ref_cfg).run(progress=False)

    # Same config elsewhere; interrupted after epoch 1 (a Colab disconnect).
    cfg = tiny_vit_cfg(tmp_path / "cut", keep_checkpoints=True)
    exp = Experiment(cfg)
    exp.prepare()

    class Disconnect(Exception):
        pass

    before: list = []

    def cut(history):
        if len(history) == 1:
            before[:] = [dict(h) for h in history]
            raise Disconnect

    with pytest.raises(Disconnect):
        fit(exp.model, exp.data, cfg, device=CPU, precision=FP32, progress=False,
            checkpoint_path=cfg.checkpoint_path, on_epoch=cut)
    assert os.path.exists(cfg.checkpoint_path)
    assert not os.path.exists(cfg.result_path)          # no half-written result

    # A fresh process-equivalent: new Experiment, same config and name -> resumes.
    resumed = Experiment(cfg).run(progress=False)
    # Resumed, not restarted: epoch 1 is the cut process's own record, epochs 2-3 a second's.
    assert resumed["history"][0] == before[0]
    assert [h["segment"] for h in resumed["history"]] == [1, 2, 2]
    keys = ("train_loss", "train_acc", "test_loss", "test_acc")
    assert [[h[k] for k in keys] for h in resumed["history"]] == \
           [[h[k] for k in keys] for h in ref["history"]]
    assert resumed["test_acc"] == ref["test_acc"]
    a = torch.load(ref_cfg.checkpoint_path, weights_only=True)["model"]
    b = torch.load(cfg.checkpoint_path, weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_checkpoint_from_a_different_config(tmp_path):
    Experiment(tiny_vit_cfg(tmp_path, epochs=1, keep_checkpoints=True)).run(progress=False)
    with pytest.raises(RuntimeError, match="different config.*lr"):
        Experiment(tiny_vit_cfg(tmp_path, epochs=1, lr=0.5)).run(progress=False)


def test_nan_loss_stops_with_clear_error_and_failed_result(tmp_path):
    cfg = tiny_vit_cfg(tmp_path, lr=1e30, grad_clip=None, optimizer="sgd", warmup_epochs=0)
    with pytest.raises(NonFiniteLossError, match="loss became"):
        Experiment(cfg).run(progress=False)
    with open(cfg.result_path) as f:
        result = json.load(f)
    assert result["status"] == "failed"
    assert "loss became" in result["reason"]


def test_evaluation_runs_without_cudnn_autotuning_and_training_keeps_it(monkeypatch):
    """On CUDA, setup_backends turns cuDNN autotuning on for training; evaluate() turns it
    off for its own shapes and back on after, even when evaluation fails. On a CPU the
    flag is left alone."""
    from helpers import train as train_mod
    from helpers.device import eval_kernels
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    with eval_kernels(torch.device("cuda")):
        assert torch.backends.cudnn.benchmark is False
    assert torch.backends.cudnn.benchmark is True
    with pytest.raises(RuntimeError), eval_kernels(torch.device("cuda")):
        raise RuntimeError("a failed evaluation")
    assert torch.backends.cudnn.benchmark is True
    with eval_kernels(CPU):
        assert torch.backends.cudnn.benchmark is True
    entered = []
    real = train_mod.eval_kernels

    def spy(device):
        entered.append(device)
        return real(device)
    monkeypatch.setattr(train_mod, "eval_kernels", spy)
    cfg = ExperimentConfig(model="vit", dim=32, depth=1, heads=2, patch_size=8, batch_size=4,
                           device="cpu").resolved()
    model = build_model("vit", 10, **cfg.model_kwargs())
    data = make_synthetic(8, 8, num_classes=10, seed=0)
    test = DeviceLoader(data.x_test, data.y_test, batch_size=4, train=False,
                        **loader_options(cfg, CPU))
    state = TrainState.create(model, cfg, CPU, FP32, total_steps=1, warmup_steps=1,
                              compile=False)
    train_mod.evaluate(state, test, CPU)
    assert entered == [CPU]


@pytest.mark.parametrize("model,shape", [("vit", dict(dim=32, depth=1, heads=2, patch_size=8)),
                                         ("swin_tiny", dict(img_size=32))])
def test_weight_decay_spares_biases_norms_embeddings_and_bias_tables(model, shape):
    """timm's convention (DeiT's and Swin's recipes): 1-D tensors, a ViT's class token and
    position embeddings and Swin's relative-position bias tables are not decayed; every
    other weight is."""
    from helpers.config import ExperimentConfig
    from helpers.models import build_model
    from helpers.train import make_optimizer
    cfg = ExperimentConfig(model=model, device="cpu", **shape).resolved()
    net = build_model(model, 10, **cfg.model_kwargs())
    groups = make_optimizer(net, cfg, torch.device("cpu"), fused=False).param_groups
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    spared = [n for n, p in net.named_parameters()
              if p.ndim < 2 or n.split(".")[-1] in ("cls_token", "pos_embed",
                                                    "relative_position_bias_table")]
    assert any(n.endswith(("pos_embed", "bias_table")) for n in spared)
    for n, p in net.named_parameters():
        assert decay[id(p)] == (0.0 if n in spared else cfg.weight_decay), n


def test_fused_adamw_steps_as_the_default_kernel_does_on_the_cpu():
    """The GPU's optimiser kernel (fused AdamW) on this CPU, where torch has it: a few
    steps give the foreach kernel's weights."""
    from helpers.config import ExperimentConfig
    from helpers.models import build_model
    from helpers.train import fused_adamw, make_optimizer
    assert fused_adamw("cuda") and not fused_adamw("cpu")
    cfg = ExperimentConfig(model="vit", dim=32, depth=1, heads=2, patch_size=8,
                           device="cpu").resolved()
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    weights = {}
    for fused in (False, True):
        torch.manual_seed(0)
        model = build_model("vit", 10, **cfg.model_kwargs())
        opt = make_optimizer(model, cfg, torch.device("cpu"), fused=fused)  # torch >= 2.4
        assert all(g["fused"] is fused for g in opt.param_groups)
        for _ in range(3):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        weights[fused] = [p.detach().clone() for p in model.parameters()]
    for a, b in zip(weights[False], weights[True]):
        assert (a - b).abs().max().item() <= 1e-3 * 1e-2   # lr x 1 %: one update apart at most 1 %
