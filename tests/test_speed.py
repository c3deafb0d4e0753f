"""helpers.speed: every speed option computes what the plain path computes, and the
defaults are written in code, each resting on a committed measurement."""
import json
import os
import re

import pytest
import torch
import torch.nn.functional as F

from helpers import speed
from helpers.bench.timing import uncompile
from helpers.bench.smoke import symbolic_inputs
from helpers.config import ConfigError, ExperimentConfig, row_overrides
from helpers.device import resolve_precision, seed_everything
from helpers.experiment import Experiment
from helpers.models import build_model

CPU = torch.device("cpu")
FP32 = resolve_precision("fp32", CPU)


# ----------------------------------------------------------------------------- fused attention
def _swin_pass(model, x, y, fused: bool, autocast=None):
    """Logits and every parameter's gradient of one training-mode step, with the same
    drop-path draws for both attention paths (Swin trains with stochastic depth)."""
    model.set_fused_attention(fused)
    model.zero_grad(set_to_none=True)
    torch.manual_seed(1)
    with autocast or torch.autocast("cpu", enabled=False):
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
    loss.backward()
    return logits.detach().float(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.fixture(scope="module")
def swin64():
    """Swin-T at 64 px: stage 1 has shifted 7x7 windows on a 16x16 grid (padded), so the
    shift mask and padding take part as they do at 224 px."""
    seed_everything(0)
    model = build_model("swin_tiny", 10, img_size=64, mode="scratch")
    x, y = torch.randn(4, 3, 64, 64), torch.randint(0, 10, (4,))
    return model, x, y


def test_fused_window_attention_gives_timms_logits_and_gradients_in_fp32(swin64, monkeypatch):
    model, x, y = swin64
    calls = []
    sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention",
                        lambda *a, **k: calls.append(1) or sdpa(*a, **k))
    plain_logits, plain = _swin_pass(model, x, y, fused=False)
    assert not calls and not model.uses_fused_attention()
    fused_logits, fused = _swin_pass(model, x, y, fused=True)
    assert len(calls) == 12 and model.uses_fused_attention()   # every block of Swin-T (2+2+6+2)
    assert torch.allclose(fused_logits, plain_logits, atol=1e-5)
    assert plain.keys() == fused.keys()
    tables = [n for n in plain if n.endswith("relative_position_bias_table")]
    assert len(tables) == 12
    for name in plain:
        scale = plain[name].abs().max().item()
        assert scale > 0, name                                 # every parameter learns
        assert (fused[name] - plain[name]).abs().max().item() <= 1e-4 * scale + 1e-7, name


def test_fused_window_attention_agrees_under_bf16_autocast(swin64):
    model, x, y = swin64
    bf16 = resolve_precision("bf16", CPU)
    plain_logits, plain = _swin_pass(model, x, y, fused=False, autocast=bf16.autocast())
    fused_logits, fused = _swin_pass(model, x, y, fused=True, autocast=bf16.autocast())
    ref_logits, _ = _swin_pass(model, x, y, fused=False)       # fp32, for the scale of bf16 noise
    bf16_noise = (plain_logits - ref_logits).abs().max().item()
    assert (fused_logits - plain_logits).abs().max().item() <= 4 * bf16_noise + 1e-3
    for name in plain:
        if name.endswith("relative_position_bias_table"):
            cos = F.cosine_similarity(fused[name].flatten(), plain[name].flatten(), dim=0)
            assert cos > 0.99, name
    model.set_fused_attention(False)


def test_switching_attention_leaves_the_parameters_and_weights_file_alone(swin64, tmp_path):
    model, _, _ = swin64
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.set_fused_attention(True)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    path = tmp_path / "w.pt"                                   # a fused model's file loads
    torch.save(after, path)                                    # into a plain one unchanged
    other = build_model("swin_tiny", 10, img_size=64, mode="scratch")
    other.load_state_dict(torch.load(path))
    model.set_fused_attention(False)


def test_fused_attention_is_refused_for_a_model_without_window_attention():
    with pytest.raises(ConfigError, match="^fused_attention="):
        ExperimentConfig(model="vit", fused_attention=True).resolved()
    with pytest.raises(ValueError, match="only Swin"):
        speed.set_attention(build_model("vit", 10, dim=32, depth=1, heads=2), True)


# ----------------------------------------------------------------------------- the defaults
CUDA = torch.device("cuda")          # choose() only reads the device's type


def vit_cfg(tmp_path, **over):
    base = dict(model="vit", dim=32, depth=1, heads=2, patch_size=8, device="cpu",
                results_dir=str(tmp_path / "results"))
    return ExperimentConfig(**dict(base, **over)).resolved()


def grid_cfgs():
    from helpers import grid
    return [ExperimentConfig(**row_overrides(e),
                             device="cpu").resolved() for e in grid.grid()]


def test_every_run_off_cuda_takes_the_plain_path():
    for cfg in grid_cfgs():
        c = speed.choose(cfg, device=CPU)
        assert (c.compile, c.compile_scope, c.fused_attention) == (False, "model", False)
        assert c.reasons == [speed.OFF_CUDA_REASON]


def test_every_cuda_default_has_a_reason_that_names_a_committed_measurement():
    """The defaults are code, not a lookup of whatever benchmark files a checkout holds;
    each one names the file it rests on, and that file is in the repository."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for cfg in grid_cfgs():
        c = speed.choose(cfg, device=CUDA)
        d = speed.default_for(cfg, CUDA)
        assert (c.compile, c.compile_scope, c.fused_attention) == \
            (d.compile, d.compile_scope, d.fused_attention)
        assert c.reasons == [d.reason]
        assert speed.H100 in d.reason and os.path.isdir(os.path.join(root, speed.H100))
        for path in re.findall(r"benchmarks/\S+\.(?:json|md)", d.reason):
            assert os.path.isfile(os.path.join(root, path)), path


def test_the_compile_defaults_follow_the_committed_h100_measurement():
    """A run measured eager and compiled defaults to compiled exactly when compiling paid
    for itself over Problem 1's epochs on CIFAR-100, its evaluation compile counted."""
    from helpers import grid
    from helpers.claims import architecture
    from helpers.config import CIFAR100_SIZES
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, speed.H100, "bench_compile.json")) as f:
        runs = json.load(f)["runs"]
    arch = {r["run_name"]: architecture(grid.find_entry(r["run_name"])) for r in runs}
    assert set(arch.values()) <= set(speed.CUDA_DEFAULTS)
    for r in runs:
        verdict = speed.compile_saving(r["ours"]["eager"], r["ours"]["compiled"],
                                       epochs=grid.EPOCHS[1], train_images=CIFAR100_SIZES[0],
                                       test_images=CIFAR100_SIZES[1])
        assert speed.CUDA_DEFAULTS[arch[r["run_name"]]].compile == verdict["pays"], (r["run_name"],
                                                                                verdict)


def test_compile_saving_counts_training_and_evaluation_compile_once():
    # eager 100 img/s train, 400 eval; compiled 200 and 800. 10 epochs of 1,000 images:
    # 10 x (10 - 5) = 50 s saved in training, 10 x (0.25 - 0.125) = 1.25 s in 100-image evaluations.
    eager = dict(images_per_s=100.0, eval_images_per_s=400.0, warmup_s=1.0, eval_warmup_s=0.5)
    compiled = dict(images_per_s=200.0, eval_images_per_s=800.0, warmup_s=31.0,
                    eval_warmup_s=20.5)
    v = speed.compile_saving(eager, compiled, epochs=10, train_images=1000, test_images=100)
    assert v["saved_s"] == pytest.approx(51.25) and v["cost_s"] == pytest.approx(30.0 + 20.0)
    assert v["pays"] and v["net_s"] == pytest.approx(1.25)
    slower_eval = dict(compiled, eval_warmup_s=22.5)               # 2 s more: no longer pays
    assert not speed.compile_saving(eager, slower_eval, epochs=10, train_images=1000,
                                    test_images=100)["pays"]
    one_eval = speed.compile_saving(eager, compiled, epochs=10, train_images=1000,
                                    test_images=100, evals=1)
    assert one_eval["saved_s"] == pytest.approx(50.125)


def test_the_config_wins_over_the_default(tmp_path):
    big = vit_cfg(tmp_path, dim=512, depth=8, heads=8, patch_size=4)
    assert big.default_run_name() == "p1-vit-8L-8H-512"
    assert speed.choose(big, device=CUDA).compile == speed.CUDA_DEFAULTS[
        big.architecture].compile
    off = speed.choose(vit_cfg(tmp_path, dim=512, depth=8, heads=8, compile=False), device=CUDA)
    assert not off.compile and off.reasons[0] == "set in the config: compile=False"
    forced = speed.choose(vit_cfg(tmp_path, compile=True, compile_scope="blocks"), device=CPU)
    assert (forced.compile, forced.compile_scope) == (True, "blocks")
    assert forced.reasons == ["set in the config: compile=True, compile_scope='blocks'"]


def test_block_compile_raises_dynamos_cache_limit_for_every_block():
    """Swin's blocks share one code object: each block, shape and mode is a cache entry,
    and past the limit the rest (evaluation first) would run uncompiled."""
    name = speed.recompile_limit_name()
    # dynamo's own patch(), not pytest's monkeypatch: the latter deletes the setting on
    # undo, and a deleted dynamo setting hides it from every later compile.
    with torch._dynamo.config.patch({name: 8}):
        model = build_model("swin_tiny", 10, img_size=32)
        regions = list(model.compile_regions())
        assert len(regions) > 8
        speed.compiled_forward(model, True, "blocks")
        assert getattr(torch._dynamo.config, name) >= speed.ENTRIES_PER_REGION * len(regions)
        uncompile(model)


@pytest.mark.parametrize("scope", ["model", "blocks"])
def test_compiled_forward_compiles_with_the_backend_it_is_given(tmp_path, scope):
    """The backend is an argument (the GPU check's dry run passes "eager"), not a setting
    changed on the module: a backend that records its graphs sees every one."""
    graphs = []

    def recording(gm, example_inputs):
        graphs.append(gm)
        return gm.forward
    cfg = vit_cfg(tmp_path)
    model = build_model("vit", 10, **cfg.model_kwargs()).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
        torch._dynamo.reset()
        got = speed.compiled_forward(model, True, scope, backend=recording)(x)
    uncompile(model)
    torch._dynamo.reset()
    assert graphs and torch.allclose(got, expected, atol=1e-6)
    assert len(graphs) >= (len(model.compile_regions()) if scope == "blocks" else 1) > 0


def test_a_compiled_run_records_the_graphs_it_compiled_and_each_run_compiles_afresh(tmp_path):
    """End to end: compile=True makes Experiment compile (dynamo runs), the result says
    how many graphs compiled, the compile cache is in the results folder and the
    environment is restored. A second identical run in the same process compiles again:
    the compiler is reset per run, so no run inherits (or is starved by) another's cache."""
    env = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    graphs = []
    for name in ("tiny", "tiny-again"):
        cfg = vit_cfg(tmp_path, dataset="synthetic", train_subset=64, test_subset=32,
                      epochs=1, batch_size=16, run_name=name, compile=True)
        training = Experiment(cfg).run(progress=False)["training"]
        assert training["compile"] is True and training["compile_used"] is True
        graphs.append(training["compiled_graphs"])
    assert graphs[0] > 0 and graphs[1] == graphs[0]
    cache = speed.compile_cache_dir(cfg.results_dir)
    assert cache.startswith(os.path.abspath(cfg.results_dir))
    assert os.listdir(cache) and os.environ.get("TORCHINDUCTOR_CACHE_DIR") == env  # restored


@pytest.mark.parametrize("scope", ["blocks", "model"])
def test_compiled_graphs_are_static_across_swins_stages_and_batch_sizes(scope):
    """Swin's blocks share one code object: with dynamo's automatic dynamic shapes, the
    second stage's blocks (and a second batch size) were traced with symbolic sizes. A
    recording backend sees every graph; none may have a symbolic input."""
    graphs = []

    def recording(gm, example_inputs):
        graphs.append(gm)
        return gm.forward
    seed_everything(0)
    model = build_model("swin_tiny", 10, img_size=64, mode="scratch").eval()
    torch._dynamo.reset()
    try:
        step = speed.compiled_forward(model, True, scope, backend=recording)
        with torch.no_grad():
            for batch in (2, 3):                           # e.g. evaluation's last batch
                step(torch.randn(batch, 3, 64, 64))
    finally:
        uncompile(model)
        torch._dynamo.reset()
    assert graphs
    assert [n for gm in graphs for n in symbolic_inputs(gm)] == []
