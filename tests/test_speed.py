"""helpers.speed: torch.compile of the whole model, with the backend it is given, static
graphs, a fresh compile per run and the kernel cache in the results folder (that compiled
training matches eager is tests/test_train.py's)."""
import os

import torch
from torch._dynamo.utils import counters

from helpers import speed
from helpers.config import ExperimentConfig
from helpers.device import seed_everything
from helpers.experiment import Experiment
from helpers.models import build_model


def vit_cfg(tmp_path, **over):
    base = dict(model="vit", dim=32, depth=1, heads=2, patch_size=8, device="cpu",
                results_dir=str(tmp_path / "results"))
    return ExperimentConfig(**dict(base, **over)).resolved()


def symbolic_inputs(gm) -> list[str]:
    """The graph inputs dynamo traced with symbolic sizes (a SymInt, or a tensor with one)."""
    out = []
    for node in gm.graph.nodes:
        v = node.meta.get("example_value", node.meta.get("val"))
        if node.op == "placeholder" and (isinstance(v, torch.SymInt) or any(
                isinstance(d, torch.SymInt) for d in getattr(v, "shape", ()))):
            out.append(node.name)
    return out


def test_compiled_forward_compiles_with_the_backend_it_is_given(tmp_path):
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
        got = speed.compiled_forward(model, True, backend=recording)(x)
    torch._dynamo.reset()
    assert graphs and torch.allclose(got, expected, atol=1e-6)


def test_a_compiled_run_compiles_afresh_with_its_cache_in_the_results_folder(tmp_path):
    """End to end: compile=True makes Experiment compile (dynamo runs), the compile cache is
    in the results folder and the environment is restored. A second identical run in the
    same process compiles again: the compiler is reset per run, so no run inherits (or is
    starved by) another's cache."""
    env = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    graphs = []
    for name in ("tiny", "tiny-again"):
        cfg = vit_cfg(tmp_path, dataset="synthetic", train_subset=64, test_subset=32,
                      epochs=1, batch_size=16, run_name=name, compile=True)
        counters.clear()
        assert Experiment(cfg).run(progress=False)["training"]["compile"] is True
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs[0] > 0 and graphs[1] == graphs[0]
    cache = speed.compile_cache_dir(cfg.results_dir)
    assert cache.startswith(os.path.abspath(cfg.results_dir))
    assert os.listdir(cache) and os.environ.get("TORCHINDUCTOR_CACHE_DIR") == env  # restored


def test_compiled_graphs_are_static_across_batch_sizes(tmp_path):
    """With dynamo's automatic dynamic shapes, a second batch size (evaluation's last
    batch) would be traced with symbolic sizes. A recording backend sees every graph;
    none may have a symbolic input."""
    graphs = []

    def recording(gm, example_inputs):
        graphs.append(gm)
        return gm.forward
    seed_everything(0)
    model = build_model("vit", 10, **vit_cfg(tmp_path).model_kwargs()).eval()
    torch._dynamo.reset()
    try:
        step = speed.compiled_forward(model, True, backend=recording)
        with torch.no_grad():
            for batch in (2, 3):                           # e.g. evaluation's last batch
                step(torch.randn(batch, 3, 32, 32))
    finally:
        torch._dynamo.reset()
    assert graphs
    assert [n for gm in graphs for n in symbolic_inputs(gm)] == []
