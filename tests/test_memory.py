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
    plan = plan_training(cfg, 5000, memory_batch=(64, "halved to fit"))
    assert plan.batch_size == 64 and plan.steps_per_epoch == 5000 // 64
    assert plan.batch_rule == "halved to fit"


TF32_READERS = """
import warnings
import torch
from helpers.device import set_tf32, setup_backends, tf32
warnings.simplefilter("error")              # a deprecation warning fails too
setup_backends(torch.device("cuda"))        # sets flags only: no GPU needed
readers = dict(
    allow_tf32=lambda: torch.backends.cuda.matmul.allow_tf32,
    matmul_precision=torch.get_float32_matmul_precision,
    cudnn_allow_tf32=lambda: torch.backends.cudnn.allow_tf32,
    **({} if not hasattr(torch.backends.cuda.matmul, "fp32_precision") else dict(
        matmul_fp32=lambda: torch.backends.cuda.matmul.fp32_precision,
        conv_fp32=lambda: torch.backends.cudnn.conv.fp32_precision)))
print("on", tf32(), {k: f() for k, f in readers.items()})
set_tf32(matmul=False, conv=True)
print("matmul off", tf32(), {k: f() for k, f in readers.items()})
set_tf32(matmul=True, conv=False)
print("conv off", tf32(), {k: f() for k, f in readers.items()})
"""


def test_after_the_tf32_setup_every_legacy_and_new_reader_agrees():
    """torch >= 2.9 raises on the legacy readers once only the new fp32_precision flags
    were set; inductor and timm read them. In a fresh process, as a run starts."""
    import subprocess
    import sys
    from helpers.paths import REPO_ROOT
    done = subprocess.run([sys.executable, "-c", TF32_READERS], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(" (", 1) for line in done.stdout.strip().splitlines())
    assert set(lines) == {"on", "matmul off", "conv off"}
    expected = {"on": (True, True), "matmul off": (False, True), "conv off": (True, False)}
    for name, line in lines.items():
        matmul, conv = expected[name]
        assert line.startswith(f"{matmul}, {conv})"), (name, line)
        values = eval(line.split(") ", 1)[1])             # the readers' dict
        assert values["allow_tf32"] is matmul and values["cudnn_allow_tf32"] is conv
        assert (values["matmul_precision"] == "highest") is not matmul
        if "matmul_fp32" in values:
            assert (values["matmul_fp32"] == "tf32") is matmul
            assert (values["conv_fp32"] == "tf32") is conv


# ----------------------------------------------------------------------------- fake GPUs
class FakeGPU:
    """A meter (helpers.memory's interface) for a GPU that is not here: the probed step
    runs for real on the CPU; its 'peak' is per_image bytes per image of the outermost
    forward pass, and a pass over max_train (with gradients) or max_eval (without) images
    runs out of memory."""

    def __init__(self, name="Tesla T4", capacity=16 * GB, per_image=GB // 100,
                 max_train=None, max_eval=None):
        self.name, self._capacity, self.per_image = name, capacity, per_image
        self.max_train, self.max_eval = max_train, max_eval
        self.probes = []                       # (batch, with gradients) of each probe

    def capacity(self):
        return self._capacity

    def peak(self, step):
        seen = []

        def hook(module, args):
            if not seen:
                seen.append((args[0].shape[0], torch.is_grad_enabled()))
        handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
        try:
            step()
        finally:
            handle.remove()
        batch, grad = seen[0]
        self.probes.append((batch, grad))
        limit = self.max_train if grad else self.max_eval
        return None if limit is not None and batch > limit else self.per_image * batch


def tiny_vit(tmp_path, **over):
    base = dict(model="vit", dim=32, depth=1, heads=2, patch_size=8, dataset="synthetic",
                train_subset=1280, test_subset=300, epochs=1, device="cpu",
                results_dir=str(tmp_path / "results"), train_eval_images=0)
    return ExperimentConfig(**dict(base, **over))


def test_the_evaluation_batch_is_fitted_to_memory_like_the_training_batch(tmp_path):
    """Evaluation at eval_batch_size=1024 would run out of memory after a whole epoch on a
    small GPU; it is probed before training and halved to fit, and evaluation runs at it."""
    from helpers.experiment import Experiment
    exp = Experiment(tiny_vit(tmp_path))
    exp.meter = gpu = FakeGPU(max_eval=256)
    result = exp.run(progress=False)
    training = result["training"]
    assert training["batch_size"] == 64 and "to fit" not in training["batch_rule"]
    assert training["eval_batch_size"] == 256
    assert "1024" in training["eval_batch_rule"] and "Tesla T4" in training["eval_batch_rule"]
    assert (64, True) in gpu.probes and (1024, False) in gpu.probes and (256, False) in gpu.probes
    assert result["history"][-1]["test_acc"] is not None


def test_evaluation_is_probed_beside_what_training_leaves_resident(tmp_path):
    """The optimiser state and the gradients stay allocated during evaluation: a batch
    whose forward pass alone would fit is halved when they are counted."""
    from helpers.experiment import Experiment
    exp = Experiment(tiny_vit(tmp_path))
    exp.prepare()
    resident = memory.resident_after_training_bytes(exp.model, "adamw")
    n = sum(p.numel() for p in exp.model.parameters())
    assert resident == n * 4 * 3                                  # 2 AdamW moments + grads
    # 0.9 x capacity holds 1,024 images' forward pass, but not with the resident bytes.
    per_image = 1000
    capacity = int((1024 * per_image + resident // 2) / memory.HEADROOM)
    exp = Experiment(tiny_vit(tmp_path))
    exp.meter = FakeGPU(capacity=capacity, per_image=per_image)
    exp.prepare()
    assert exp.plan.eval_batch_size == 512 and exp.plan.batch_size == 64


@pytest.mark.parametrize("device_type, capability, expected", [
    ("cuda", (7, 5), "fp16"), ("cuda", (8, 0), "bf16"), ("cuda", (9, 0), "bf16"),
    ("cuda", (12, 0), "bf16"), ("mps", None, "fp16"), ("cpu", None, "fp32")])
def test_the_precision_rule_is_a_function_of_what_the_device_reports(device_type, capability,
                                                                      expected):
    from helpers.device import auto_precision
    assert auto_precision(device_type, capability) == expected
