"""A grid row is defined once: its config derives the run name, label, family and problem
(helpers.config), the grid is a list of config overrides (helpers.grid), and everything
else looks rows up. A new model family is three edits, in three files."""
import ast
import os
import re

import pytest
import torch
import torch.nn as nn

from helpers import config, grid, models, report
from helpers.experiment import run_experiment
from helpers.paths import REPO_ROOT
from helpers.report.tables import table1

PKG = os.path.join(REPO_ROOT, "helpers")


class Toy(nn.Module):
    """The smallest model with the registry's uniform API: one conv, pooled, one linear."""

    def __init__(self, num_classes: int, width: int = 8):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3, padding=1)
        self.head = nn.Linear(width, num_classes)

    def forward_features(self, x):
        return torch.relu(self.conv(x)).mean((2, 3))

    def forward_head(self, features):
        return self.head(features)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


def test_a_new_model_family_is_three_edits_in_three_files(tmp_path, monkeypatch):
    """Register a toy family (config.MODELS and its defaults; the models registry), add one
    grid line, train it briefly on synthetic data, and find its row in Table 1 under its
    label, with no other file changed."""
    edits = [  # (module, attribute, new value): everything a new family needs
        (config, "MODELS", dict(config.MODELS, toy=config.ModelSpec("Toy-CNN", 1, 16, "toy"))),
        (config, "TRAIN_DEFAULTS", dict(config.TRAIN_DEFAULTS, toy=dict(
            optimizer="adamw", lr=3e-3, weight_decay=0.0, batch_size=32))),
        (models, "MODELS", dict(models.MODELS, toy=Toy)),     # the class is the constructor
        (grid, "PROBLEM1", grid.PROBLEM1 + [dict(model="toy")]),
    ]
    files = {os.path.relpath(m.__file__, REPO_ROOT) for m, _, _ in edits}
    assert len(files) <= 3, files
    for module, name, value in edits:
        monkeypatch.setattr(module, name, value)

    entry = grid.problem1_runs()[-1]
    assert (entry["run_name"], entry["label"], entry["problem"]) == ("p1-toy", "Toy-CNN", 1)
    results = tmp_path / "results"
    cfg = config.ExperimentConfig(
        model="toy", dataset="synthetic-4", train_subset=256, test_subset=64, epochs=4,
        device="cpu", results_dir=str(results), train_eval_images=0).resolved()
    assert (cfg.run_name, cfg.img_size, cfg.optimizer) == ("p1-toy", 16, "adamw")
    r = run_experiment(cfg, progress=False)
    assert r["status"] == "complete" and r["label"] == "Toy-CNN"
    losses = [h["test_loss"] for h in r["history"]]
    assert losses[-1] < losses[0] and r["test_acc"] > 100 / 4   # it learns: above chance
    table = table1(report.load_runs(str(results)))
    assert table.loc["p1-toy", "Model"] == "Toy-CNN"
    assert table.loc["p1-toy", "Test accuracy (%)"] == f"{r['test_acc']:.2f}"


# What counts as spelling a row: a string literal (docstrings and comments aside) holding a
# run name's prefix or the seed suffix, or equal to a row label.
RUN_NAME = re.compile(r"(^|[^\w])p[123]-(resnet|vit|swin|data|res)|^-seed$")


def spelled(path) -> set[str]:
    tree = ast.parse(open(path, encoding="utf-8").read())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)}
    labels = {spec.label for spec in config.MODELS.values()} - {"ViT"}
    return {n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
            and (RUN_NAME.search(n.value) or n.value in labels or n.value.startswith("ViT ("))}


def test_run_names_and_labels_are_spelled_in_at_most_three_modules():
    found = {}
    for folder, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                if spelled(path):
                    found[os.path.relpath(path, REPO_ROOT)] = sorted(spelled(path))
    assert "helpers/config.py" in found                  # the rule itself
    assert len(found) <= 3, found


def test_the_spelling_scan_sees_a_planted_name(tmp_path):
    f = tmp_path / "m.py"
    f.write_text('"""p1-resnet18 in a docstring does not count."""\n'
                 'x = runs.get("p2-swin_tiny-scratch")\ny = f"{row}-seed{k}"\n')
    assert spelled(f) == {"p2-swin_tiny-scratch", "-seed"}


@pytest.mark.parametrize("overrides, name, label, family", [
    (dict(model="resnet18"), "p1-resnet18", "ResNet-18", "cnn_scratch"),
    (dict(model="vit", depth=2, heads=2, dim=64, patch_size=8), "p1-vit-2L-2H-64-p8",
     "ViT (2L-2H-64, patch 8)", "vit_scratch"),
    (dict(model="swin_small", mode="finetune"), "p2-swin_small-finetune", "Swin-Small",
     "swin_finetune"),
    (dict(model="resnet18", study="data_efficiency", train_fraction=0.25, seed=2),
     "p3-data-resnet18-f25-seed2", "ResNet-18", "cnn_scratch"),
])
def test_the_config_derives_each_rows_identity(overrides, name, label, family):
    cfg = config.ExperimentConfig(**overrides)
    assert (cfg.default_run_name(), cfg.label, cfg.family) == (name, label, family)
    assert config.row_name(name, overrides.get("seed", 0)) == config.row(
        {k: v for k, v in overrides.items() if k != "seed"})["run_name"]
