"""Small GPUs: precision='auto' and the batch-size memory rule, with the device queries
faked on the CPU (a T4's compute capability, a step's measured peak memory)."""
import pytest
import torch

from helpers import memory
from helpers.config import ConfigError, ExperimentConfig
from helpers.device import resolve_precision
from helpers.train import plan_training

GB = memory.GB
CUDA = torch.device("cuda")


@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((7, 0), "fp16"),
                                                  ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_auto_precision_is_bf16_only_where_it_is_native(monkeypatch, capability, expected):
    asked = []
    monkeypatch.setattr(torch.cuda, "get_device_capability",
                        lambda device=None: asked.append(device) or capability)
    # is_bf16_supported counts emulation: it says True on a T4, and must not be asked.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    p = resolve_precision("auto", torch.device("cuda:1"))
    assert p.name == expected and p.scaled == (expected == "fp16")
    assert asked == [torch.device("cuda:1")]             # the run's GPU, not the current one


def linear_peak(base, per_image, oom_above=None):
    """A fake step: base + per_image bytes per image, out of memory above oom_above."""
    calls = []

    def peak(b):
        calls.append(b)
        return None if oom_above is not None and b > oom_above else base + per_image * b
    return peak, calls


def test_unset_batch_is_halved_until_the_step_fits():
    # 16 GB usable, 0.9 of it allowed = 14.4 GB; 1 GB of optimiser state; a step needs
    # 2 GB + 0.1 GB per image: 128 -> 15.8 GB (no), 64 -> 9.4 GB (yes).
    peak, calls = linear_peak(2 * GB, GB // 10)
    batch, why = memory.fit_batch(128, explicit=False, step_peak=peak, capacity=16 * GB,
                                  state_bytes=GB, where="Tesla T4")
    assert (batch, calls) == (64, [128, 64])
    assert "128" in why and "64" in why and "Tesla T4" in why


def test_an_out_of_memory_step_counts_as_not_fitting():
    peak, calls = linear_peak(0, GB // 100, oom_above=32)
    batch, _ = memory.fit_batch(128, explicit=False, step_peak=peak, capacity=16 * GB,
                                state_bytes=0, where="gpu")
    assert batch == 32 and calls == [128, 64, 32]


def test_a_batch_that_fits_is_kept_and_an_explicit_one_that_does_not_names_batch_size():
    peak, _ = linear_peak(GB, GB // 10)
    assert memory.fit_batch(64, explicit=True, step_peak=peak, capacity=16 * GB,
                            state_bytes=0, where="gpu") == (64, None)
    with pytest.raises(ConfigError, match=r"^batch_size=256: .*lower batch_size"):
        memory.fit_batch(256, explicit=True, step_peak=peak, capacity=16 * GB,
                         state_bytes=0, where="gpu")
    with pytest.raises(ConfigError, match="^batch_size"):          # nothing fits at all
        memory.fit_batch(256, explicit=False, step_peak=lambda b: None, capacity=GB,
                         state_bytes=0, where="gpu")


def test_optimizer_state_is_counted_per_trainable_parameter():
    model = torch.nn.Sequential(torch.nn.Linear(10, 5), torch.nn.Linear(5, 2))
    model[0].requires_grad_(False)
    n = 5 * 2 + 2                                           # the trainable layer
    assert memory.optimizer_state_bytes(model, "adamw") == n * 4 * 2
    assert memory.optimizer_state_bytes(model, "sgd") == n * 4


def test_the_plan_records_the_batch_lowered_for_memory():
    cfg = ExperimentConfig(model="resnet18", dataset="synthetic", epochs=2,
                           device="cpu").resolved()
    plan = plan_training(cfg, 5000, torch.device("cpu"), "fp32",
                         memory_batch=(64, "halved to fit"))
    assert plan.batch_size == 64 and plan.steps_per_epoch == 5000 // 64
    assert plan.batch_rule == "halved to fit"


def test_tf32_is_set_without_the_deprecated_flags_where_torch_has_the_new_api():
    import warnings
    from helpers.device import set_tf32, tf32
    before = tf32()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")               # torch >= 2.9 warns on allow_tf32
            set_tf32(matmul=True, conv=True)
            assert tf32() == (True, True)
            set_tf32(matmul=False, conv=True)
            assert tf32() == (False, True)
    finally:
        set_tf32(*before)


def test_the_frozen_backbones_feature_pass_runs_with_evaluations_kernels(monkeypatch):
    """The feature cache's one pass uses eval-sized batches: like evaluate(), it must run
    inside eval_kernels (no cuDNN autotune of shapes training never uses)."""
    import contextlib
    from helpers import features
    from helpers.data import DeviceLoader, make_synthetic
    inside = []

    @contextlib.contextmanager
    def spy(device):
        inside.append(True)
        yield
        inside.append(False)
    monkeypatch.setattr(features, "eval_kernels", spy)
    seen = []

    class Backbone(torch.nn.Module):
        def forward_features(self, x):
            seen.append(inside[-1] if inside else False)
            return x.mean((2, 3))
    data = make_synthetic(8, 4, num_classes=2, seed=0)
    loader = DeviceLoader(data.x_train, data.y_train, batch_size=4, device="cpu", train=False,
                          mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    from helpers.device import Precision
    feats = features.backbone_features(Backbone(), loader, Precision("fp32", "cpu"))
    assert feats.shape == (8, 3) and seen and all(seen)
