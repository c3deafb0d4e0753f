"""The Problem 1/2 notebooks, executed end to end with papermill at toy scale.

Each execution starts a kernel (a few seconds), so the runs are shared through
module-scoped fixtures: one ViT with 4x4 patches, the same ViT with 8x8 patches, one
frozen-backbone Swin-Tiny fine-tune from a weights file the test writes itself.
"""
import os
import re
import subprocess
import sys

import nbformat
import pytest
from papermill.exceptions import PapermillExecutionError

from helpers import grid
from helpers.config import ConfigError, ExperimentConfig
from helpers.notebook_exec import execute_notebook, parameter_defaults
from helpers.paths import NOTEBOOKS
from helpers.results import record_problems
from helpers.results import read_result

DATASET_KEYS = {"name", "num_classes", "n_train", "n_test", "synthetic"}
HISTORY_KEYS = {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "epoch_time_s",
                "images_per_s"}
PROVENANCE_KEYS = {"git_commit", "git_dirty", "python", "torch", "torchvision", "timm",
                   "device", "device_type", "precision", "compile", "seed", "started",
                   "finished", "hostname"}
TINY = dict(dataset="synthetic", train_subset=64, test_subset=32, epochs=1, batch_size=32,
            device="cpu")
VIT = dict(model="vit", dim=32, depth=1, heads=2)


def run_nb(problem, tmp, name, **params):
    """Execute problem<N>.ipynb into tmp/<name>.ipynb; returns the executed notebook."""
    out = os.path.join(tmp, f"{name}.ipynb")
    execute_notebook(NOTEBOOKS[problem], out, params)
    return nbformat.read(out, as_version=4)


def check_schema(result, *, problem, epochs, n_train, n_test):
    assert record_problems(result) == []
    assert DATASET_KEYS <= set(result["dataset"])
    assert PROVENANCE_KEYS <= set(result["provenance"])
    assert result["status"] == "complete" and result["reason"] is None
    assert result["problem"] == problem
    assert set(result["config"]) == {f for f in ExperimentConfig().to_dict()}
    assert (result["dataset"]["n_train"], result["dataset"]["n_test"]) == (n_train, n_test)
    assert result["dataset"]["synthetic"] is True
    assert [h["epoch"] for h in result["history"]] == list(range(1, epochs + 1))
    assert all(HISTORY_KEYS <= set(h) for h in result["history"])
    assert result["test_acc"] == result["history"][-1]["test_acc"]
    assert 0 <= result["test_acc"] <= 100


@pytest.fixture(scope="module")
def vit_runs(tmp_path_factory):
    """The same tiny ViT with 4x4 and with 8x8 patches, one results folder."""
    tmp = tmp_path_factory.mktemp("vit")
    results = str(tmp / "results")
    nbs = {p: run_nb(1, tmp, f"p{p}", **VIT, **TINY, patch_size=p, results_dir=results)
           for p in (4, 8)}
    files = {4: "p1-vit-1L-2H-32.json", 8: "p1-vit-1L-2H-32-p8.json"}
    return {p: read_result(os.path.join(results, f)) for p, f in files.items()}, nbs


def test_problem1_result_has_every_field(vit_runs):
    results, nbs = vit_runs
    r = results[4]
    check_schema(r, problem=1, epochs=1, n_train=64, n_test=32)
    assert r["model"] == "vit" and r["config"]["patch_size"] == 4
    assert (r["config"]["dim"], r["config"]["depth"], r["config"]["heads"]) == (32, 1, 2)
    # The notebook shows the counts it measured, and says where the result went.
    text = "".join(o.get("text", "") for c in nbs[4].cells for o in c.get("outputs", []))
    assert f"{r['params'] / 1e6:.3f} M total" in text
    assert f"{r['flops'] / 1e6:.1f} M per image" in text
    assert "p1-vit-1L-2H-32.json" in text
    assert any("image/png" in o.get("data", {}) for c in nbs[4].cells
               for o in c.get("outputs", [])), "no learning-curve plot"


def test_patch_size_changes_params_and_flops_as_derived(vit_runs):
    results, _ = vit_runs
    D, L, S = 32, 1, 32                      # dim, depth, image side
    # Only two parameter tensors depend on the patch side p:
    #   patch embedding, a p x p conv 3 -> D:  3 p^2 D weights + D biases
    #   position embedding, one per token:     ((S/p)^2 + 1) D
    def patch_dependent_params(p):
        return 3 * p * p * D + D + ((S // p) ** 2 + 1) * D
    assert results[8]["params"] - results[4]["params"] == \
        patch_dependent_params(8) - patch_dependent_params(4)

    # Exact FLOPs (2 per multiply-add). The patch embedding touches every pixel once per
    # output channel whatever p is (2 * 3 S^2 D), and the head sees one token; what
    # changes with p is the token count T = (S/p)^2 + 1 in each block:
    #   qkv 3 T D^2 + proj T D^2 + MLP 8 T D^2 = 12 T D^2, attention QK^T and AV 2 T^2 D.
    def block_flops(p):
        T = (S // p) ** 2 + 1
        return 2 * L * (12 * T * D * D + 2 * T * T * D)
    assert results[4]["flops"] - results[8]["flops"] == block_flops(4) - block_flops(8)
    assert results[8]["config"]["patch_size"] == 8 and results[8]["run_name"].endswith("-p8")


@pytest.mark.parametrize("problem, params, field, words", [
    (1, dict(VIT, heads=3), "heads", ["must divide dim=32"]),
    (1, dict(model="vgg"), "model", ["resnet18", "vit"]),
    (2, dict(variant="huge"), "variant", ["tiny", "small"]),
])
def test_invalid_parameter_fails_fast_and_writes_nothing(tmp_path, problem, params, field, words):
    results = tmp_path / "results"
    with pytest.raises(PapermillExecutionError) as info:
        run_nb(problem, tmp_path, "bad", **params, **TINY, results_dir=str(results))
    err = info.value
    assert err.ename == "ConfigError"
    assert f"{field}=" in err.evalue and all(w in err.evalue for w in words), err.evalue
    # It stopped in the config cell, before the data, the model or torch were touched.
    assert "_config(" in err.source and "Experiment" not in err.source
    assert not results.exists() or not any(results.iterdir())


def test_unknown_parameter_name_is_refused_before_a_kernel_starts(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown parameter\(s\) \['depht'\].*valid parameters"):
        execute_notebook(NOTEBOOKS[1], str(tmp_path / "x.ipynb"), dict(depht=4))
    assert not (tmp_path / "x.ipynb").exists()


def parameters_cell(problem):
    nb = nbformat.read(NOTEBOOKS[problem], as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1
    # name: type = default  # comment
    return re.findall(r"^(\w+): ([\w\[\]]+) = (.+?)  # (.+)$", cells[0].source, re.M)


@pytest.mark.parametrize("problem", [1, 2])
def test_help_notebook_documents_every_parameter(problem):
    declared = parameters_cell(problem)
    out = subprocess.run([sys.executable, "-m", "papermill", "--help-notebook",
                          NOTEBOOKS[problem]], capture_output=True, text=True, check=True).stdout
    assert "Unknown type" not in out
    for name, type_, _, comment in declared:
        assert f"{name}: {type_}" in out and comment in out, name
    # Every parameter is a config field, apart from the notebook's own two.
    names = {name for name, *_ in declared}
    own = {"overrides"} | ({"variant"} if problem == 2 else set())
    assert names - own <= set(ExperimentConfig().to_dict())
    # The standalone notebook's budget is the runner's.
    epochs = dict((n, d) for n, _, d, _ in declared)["epochs"]
    assert int(epochs) == grid.EPOCHS[problem]


def test_problem2_finetune_from_a_local_weights_file(tmp_path):
    """Swin-Tiny, frozen backbone, ImageNet-shaped weights from a file: only the new head
    trains. (Random weights: the file only has to fit the architecture.)"""
    import timm
    import torch
    weights = tmp_path / "swin_tiny.pth"
    torch.save(timm.create_model("swin_tiny_patch4_window7_224", pretrained=False).state_dict(),
               weights)
    results = tmp_path / "results"
    run_nb(2, tmp_path, "swin", variant="tiny", mode="finetune", weights=str(weights),
           results_dir=str(results), **dict(TINY, train_subset=8, test_subset=8, batch_size=8))
    r = read_result(results / "p2-swin_tiny-finetune.json")
    check_schema(r, problem=2, epochs=1, n_train=8, n_test=8)
    assert r["model"] == "swin_tiny" and r["config"]["img_size"] == 224
    assert r["config"]["mode"] == "finetune" and r["config"]["weights"] == str(weights)
    # Swin-T ends in 768 features: the 100-class head has 768 * 100 + 100 parameters.
    assert r["trainable_params"] == 768 * 100 + 100 < r["params"]


@pytest.mark.parametrize("problem", [1, 2])
def test_every_notebook_parameter_reaches_the_config(problem):
    """Each config field the parameters cell declares is passed on to the config (a field
    declared but not passed would silently keep its default)."""
    import json
    declared = set(parameter_defaults(NOTEBOOKS[problem])) - {"overrides", "variant"}
    with open(NOTEBOOKS[problem]) as f:
        cells = ["".join(c["source"]) for c in json.load(f)["cells"] if c["cell_type"] == "code"]
    [call] = [c for c in cells if f"problem{problem}_config(" in c]
    for name in declared & set(ExperimentConfig().to_dict()):
        assert f"{name}={name}" in call.replace(" ", ""), name

