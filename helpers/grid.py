"""The experiment grid of the report: every row of Tables 1 and 2, and Problem 3's runs.

Each entry is the set of config overrides that defines one run. The runner executes
them, the report uses the same list to show missing rows as missing, and the
benchmark times the same models. Run names are stable: they are the result file
names, so changing one orphans old results.
"""

from .claims import ClaimsSizes, problem3_runs
from .config import SWIN_MODES, SWIN_VARIANTS, problem_of

# The budgets of the real grid, in epochs (why: helpers/runner/cli.py). Problem 2 keeps
# the homework's 5; Problem 1's models are small enough for 20.
EPOCHS = {1: 20, 2: 5}

# The four ViT sizes of Table 1, named depth-heads-dim; all use 4x4 patches.
VIT_PRESETS = {
    "2L-2H-128": dict(patch_size=4, depth=2, heads=2, dim=128),
    "4L-4H-256": dict(patch_size=4, depth=4, heads=4, dim=256),
    "6L-8H-384": dict(patch_size=4, depth=6, heads=8, dim=384),
    "8L-8H-512": dict(patch_size=4, depth=8, heads=8, dim=512),
}



def problem1_runs():
    """ResNet-18 and the four ViT presets, all trained from scratch."""
    runs = [dict(run_name="p1-resnet18", model="resnet18", label="ResNet-18")]
    for name, shape in VIT_PRESETS.items():
        runs.append(dict(run_name=f"p1-vit-{name}", model="vit", label=f"ViT ({name})", **shape))
    return runs


def problem2_runs():
    """Swin-T and Swin-S, each fine-tuned (frozen / full) and from scratch."""
    runs = []
    for variant in SWIN_VARIANTS:
        for mode in SWIN_MODES:
            runs.append(dict(run_name=f"p2-swin_{variant}-{mode}", model=f"swin_{variant}",
                             mode=mode, label=f"Swin-{variant.capitalize()}"))
    return runs


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


# Keys of a grid entry that describe it rather than set a notebook parameter.
ENTRY_ONLY_KEYS = ("run_name", "label", "problem", "speed_key")


def entry_problem(entry: dict) -> int:
    """The problem a grid entry belongs to (Problem 3's entries say so)."""
    return entry.get("problem") or problem_of(entry["model"])


# Seeds: each (row, seed) is one run with its own result file and checkpoint. Seed 0 keeps
# the row's own name, so a single-seed grid is what it always was, and adding seeds 1 and 2
# later reuses the seed-0 results.
def seed_run_name(row: str, seed: int) -> str:
    """The run name of one seed of a grid row: 'p1-resnet18', 'p1-resnet18-seed2'."""
    return row if seed == 0 else f"{row}-seed{seed}"


def row_name(run_name: str, seed: int | None) -> str:
    """The grid row a result belongs to: seed_run_name undone (given the run's seed)."""
    suffix = f"-seed{seed}"
    return run_name[:-len(suffix)] if seed and run_name.endswith(suffix) else run_name
