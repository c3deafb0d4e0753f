"""helpers.speed: every speed option computes what the plain path computes, and the rule
that picks options from a benchmark file picks what the hand-derived break-even says."""
import json
import os

import pytest
import torch
import torch.nn.functional as F
from torch._dynamo.utils import counters

from helpers import speed
from helpers.config import ConfigError, ExperimentConfig
from helpers.device import device_name, resolve_precision, seed_everything
from helpers.experiment import Experiment
from helpers.models import build_model
from helpers.train import plan_training

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


# ----------------------------------------------------------------------------- the rule
def _bench_file(folder, cfg, batch, variants, *, device=CPU, precision="fp32"):
    """A benchmark result with hand-chosen figures for one run, where helpers.speed looks."""
    run = dict(run_name=cfg.default_run_name(), img_size=cfg.img_size, batch_size=batch,
               status="complete", measured="2026-12-02T00:00:00+00:00", ours=variants)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{speed.device_slug(device)}.json"
    path.write_text(json.dumps(dict(kind="speed-benchmark", device=device_name(device),
                                    precision=precision, runs=[run])))
    return path


# eager: 100 img/s, 1.5 s of warm-up. Compiled: 200 img/s; cold warm-up 11.5 s, so 10 s
# more than eager; warm 2.5 s, so 1 s more. Compiling saves 1/100 - 1/200 = 0.005 s per
# image: it pays after 10 / 0.005 = 2,000 images cold, 1 / 0.005 = 200 images warm.
EAGER = dict(compile=False, images_per_s=100.0, warmup_s=1.0, eval_warmup_s=0.5)
COMPILED = dict(compile=True, compile_scope="model", images_per_s=200.0, warmup_s=9.0,
                eval_warmup_s=2.5, warm=dict(warmup_s=2.0, eval_warmup_s=0.5))


@pytest.fixture
def bench_dir(tmp_path, monkeypatch):
    folder = tmp_path / "bench-results"
    monkeypatch.setenv(speed.BENCH_RESULTS_ENV, str(folder))
    return folder


def vit_cfg(tmp_path, **over):
    base = dict(model="vit", dim=32, depth=1, heads=2, patch_size=8, device="cpu",
                results_dir=str(tmp_path / "results"))
    return ExperimentConfig(**dict(base, **over)).resolved()


@pytest.mark.parametrize("images, compiled", [(1_990, False), (2_010, True)])
def test_compile_is_chosen_exactly_past_the_cold_break_even(bench_dir, tmp_path, images, compiled):
    cfg = vit_cfg(tmp_path)
    _bench_file(bench_dir, cfg, 64, dict(eager=EAGER, compiled=COMPILED))
    choice = speed.choose(cfg, device=CPU, precision="fp32", batch_size=64, images=images)
    assert (choice.compile, choice.compile_scope, choice.fused_attention) == (compiled, "model", False)
    assert choice.measured_in and "10.0 s cold compile" in choice.reasons[-1]
    assert speed.break_even_images(100.0, 200.0, 10.0) == pytest.approx(2_000)


def test_a_warm_compile_cache_moves_the_break_even(bench_dir, tmp_path):
    cfg = vit_cfg(tmp_path)
    _bench_file(bench_dir, cfg, 64, dict(eager=EAGER, compiled=COMPILED))
    cache = speed.compile_cache_dir(cfg.results_dir)
    args = dict(device=CPU, precision="fp32", batch_size=64, images=300, cache_dir=cache)
    assert not speed.choose(cfg, **args).compile               # 3 s eager against 11.5 s
    os.makedirs(cache)
    speed.mark_warm(cache, speed.variant_key(cfg, "compiled", 64, "fp32", CPU))
    warm = speed.choose(cfg, **args)                           # 3 s against 1.5 + 1 s
    assert warm.compile and "1.0 s warm compile" in warm.reasons[-1]
    other_batch = speed.variant_key(cfg, "compiled", 32, "fp32", CPU)
    assert other_batch != speed.variant_key(cfg, "compiled", 64, "fp32", CPU)


def test_the_config_wins_and_a_mismatched_measurement_is_not_used(bench_dir, tmp_path):
    cfg = vit_cfg(tmp_path)
    _bench_file(bench_dir, cfg, 64, dict(eager=EAGER, compiled=COMPILED))
    big = dict(device=CPU, precision="fp32", images=10**6)
    assert speed.choose(cfg, batch_size=64, **big).compile
    off = vit_cfg(tmp_path, compile=False)
    choice = speed.choose(off, batch_size=64, **big)
    assert not choice.compile and "set in the config: compile=False" in choice.reasons[0]
    for mismatch in (dict(batch_size=32), dict(batch_size=64, precision="bf16")):
        choice = speed.choose(cfg, **dict(big, **mismatch))
        assert not choice.compile and choice.measured_in is None
        assert "no measurement of this run" in choice.reasons[0]
    forced = speed.choose(vit_cfg(tmp_path, compile=True, compile_scope="blocks"),
                          batch_size=32, **big)            # not measured: as the config says
    assert (forced.compile, forced.compile_scope) == (True, "blocks")


def test_fused_attention_is_chosen_for_swin_only_when_measured_faster(bench_dir, tmp_path):
    swin = ExperimentConfig(model="swin_tiny", img_size=64, device="cpu",
                            results_dir=str(tmp_path / "r")).resolved()
    args = dict(device=CPU, precision="fp32", batch_size=16, images=10_000)
    fast = dict(compile=False, fused_attention=True, images_per_s=150.0, warmup_s=1.0)
    _bench_file(bench_dir, swin, 16, dict(eager=EAGER, **{"fused-eager": fast}))
    assert speed.choose(swin, **args).fused_attention
    _bench_file(bench_dir, swin, 16, dict(eager=EAGER, **{"fused-eager": dict(fast, images_per_s=90.0)}))
    assert not speed.choose(swin, **args).fused_attention
    vit = vit_cfg(tmp_path)                                    # a file listing a fused ViT
    _bench_file(bench_dir, vit, 16, dict(eager=EAGER, **{"fused-eager": fast}))
    assert not speed.choose(vit, **args).fused_attention


def test_without_a_benchmark_file_every_run_takes_the_plain_path(bench_dir, tmp_path):
    for cfg in (vit_cfg(tmp_path), ExperimentConfig(model="swin_small", device="cpu").resolved()):
        plan = plan_training(cfg, 5_000, CPU, "fp32")
        assert (plan.compile, plan.compile_scope, plan.fused_attention) == (False, "model", False)
        assert "no measurement" in plan.speed_reasons[0]


def test_a_measured_choice_reaches_the_run_and_warms_its_compile_cache(bench_dir, tmp_path):
    """End to end: a file that says compiling pays makes Experiment compile (dynamo runs),
    the result records why, the compile cache sits in the results folder and is marked
    warm, and the next plan of the same run counts the warm cost."""
    cfg = vit_cfg(tmp_path, dataset="synthetic", train_subset=64, test_subset=32, epochs=1,
                  batch_size=16, run_name="tiny")
    compiled = dict(COMPILED, images_per_s=10**9, warmup_s=1.0, eval_warmup_s=0.5)
    _bench_file(bench_dir, cfg, 16, dict(eager=EAGER, compiled=compiled))
    counters.clear()
    env = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    result = Experiment(cfg).run(progress=False)
    assert counters["stats"]["unique_graphs"] > 0
    training = result["training"]
    assert training["compile"] is True and training["speed_measured_in"]
    assert any("compiled is predicted fastest" in r for r in training["speed_reasons"])
    cache = speed.compile_cache_dir(cfg.results_dir)
    assert cache.startswith(os.path.abspath(cfg.results_dir))
    assert os.listdir(cache) and os.environ.get("TORCHINDUCTOR_CACHE_DIR") == env  # restored
    key = speed.variant_key(cfg, "compiled", 16, "fp32", CPU)
    assert key in speed.read_warm_index(cache)
