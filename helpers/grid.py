"""The experiment grid of the report: every row of Tables 1 and 2, and Problem 3's runs.

Each entry is the set of config overrides that defines one run. The runner executes
them, the report uses the same list to show missing rows as missing, and the
benchmark times the same models. Run names are stable: they are the result file
names, so changing one orphans old results.
"""

from .claims import ClaimsSizes, problem3_runs
from .config import SWIN_MODES, models_of, problem_of, row

# The budgets of the real grid, in epochs (why: the README's "Budgets"). Problem 2 keeps
# the homework's 5; Problem 1's models are small enough for 20.
EPOCHS = {1: 20, 2: 5}

# The four ViT sizes of Table 1 (depth-heads-dim in their names); all use 4x4 patches.
VIT_SHAPES = (dict(patch_size=4, depth=2, heads=2, dim=128),
              dict(patch_size=4, depth=4, heads=4, dim=256),
              dict(patch_size=4, depth=6, heads=8, dim=384),
              dict(patch_size=4, depth=8, heads=8, dim=512))

# The rows of Tables 1 and 2, in table order: each the config overrides of one run. A new
# model needs its entry in helpers.config.MODELS and in helpers.models, and a line here.
PROBLEM1 = [dict(model="resnet18"), *(dict(model="vit", **shape) for shape in VIT_SHAPES)]
PROBLEM2 = [dict(model=model, mode=mode) for model in models_of(2) for mode in SWIN_MODES]


def run_name_of(**overrides) -> str:
    """The run name of the row with these overrides: run_name_of(model="swin_tiny",
    mode="scratch") is Table 2's Swin-Tiny from scratch."""
    return row(overrides)["run_name"]


def problem1_runs():
    """ResNet-18 and the four ViT sizes, all trained from scratch."""
    return [row(o) for o in PROBLEM1]


def problem2_runs():
    """Swin-T and Swin-S, each fine-tuned (frozen / full) and from scratch."""
    return [row(o) for o in PROBLEM2]


def grid(problems=(1, 2), claims: ClaimsSizes | None = None):
    """All runs of the given problems, in table order; Problem 3's sized by `claims`
    (None: helpers.claims.DEFAULT_SIZES)."""
    out = []
    if 1 in problems:
        out += problem1_runs()
    if 2 in problems:
        out += problem2_runs()
    if 3 in problems:
        out += problem3_runs(claims)
    return out


def entry_problem(entry: dict) -> int:
    """The problem a grid entry belongs to (Problem 3's entries say so)."""
    return entry.get("problem") or problem_of(entry["model"])


__all__ = ["EPOCHS", "VIT_SHAPES", "PROBLEM1", "PROBLEM2", "run_name_of", "grid",
           "problem1_runs", "problem2_runs", "problem3_runs", "entry_problem"]
