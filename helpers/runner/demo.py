"""The demo presets: the whole grid on synthetic data, sized so that every row learns.

`make demo` is the first thing a newcomer runs. Its report must show a pipeline that
works: every row that trains ends well above chance with its test loss falling, and the
analysis has real differences to talk about. So the task and each row's budget were
chosen by measuring what each row costs and learns (the runner's summary table prints
every row's wall time, and the demo's result files keep each row's curve):

- 25 synthetic classes (5 shapes x 5 colours, data/synthetic.py): chance is 4 %. Colour
  alone is easy to learn and worth 5x chance; shape separates the models that learn
  spatial structure quickly (ResNet-18) from those that need more data (ViTs).
- One budget (images, epochs) for every row of a problem, so that the comparisons within
  it are like for like; the costliest row of each problem sets what fits the CPU budget.
- Swin trains on 32-px inputs instead of 224: at 224 px a Swin image costs about
  (224/32)^2 = 49x more, which a 2-core CPU cannot pay for a learning curve. Its
  parameter count then differs slightly from the real one (smaller relative-position
  tables in the last stages).

Every deviation from the real configuration is recorded in each result's config; the
demo report's header gives the dataset and epochs. On a CUDA device the GPU preset is
used instead: more classes, more images, more epochs, Swin at its real size.
The results folder, results/demo, keeps the demo apart from the real grid.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..claims import ClaimsSizes
from ..config import RANDOM_INIT, models_of
from ..grid import problem1_runs, run_name_of


@dataclass(frozen=True)
class DemoPreset:
    name: str
    dataset: str
    rows: dict                          # run name -> (train images, test images, epochs)
    claims: ClaimsSizes                 # Problem 3's sizes
    in_process: tuple[int, ...] = ()    # problems trained in the runner's process, no kernel
    problem_params: dict = field(default_factory=dict)   # problem -> notebook parameters

    def budget(self, entry: dict) -> tuple[int, int, int]:
        """A grid row's (train, test, epochs); a fine-tune row trains like its variant's
        scratch row (offline it is skipped before training)."""
        if entry["run_name"] in self.rows:
            return self.rows[entry["run_name"]]
        return self.rows[run_name_of(model=entry["model"], mode="scratch")]


TEST_IMAGES = 100     # the same test set for every row: comparable accuracies

# One budget per problem, so the comparisons within a problem are like for like: the
# costliest row (ViT 8L-8H-512 in Problem 1, Swin-Small in Problem 2) sets how many
# images and epochs the problem can afford. The whole demo must take at most 5 minutes
# on a 2-core CPU, kernel starts, imports and the report included; the README's demo
# paragraph records how long the last run took (`make demo-readme`).
# Problem 2's budget is set by Swin-Small from scratch, the slowest row to learn: on 300
# images (an unset batch falls to 16, 18 steps an epoch) it stayed near chance even after 8
# epochs, while on 640 (batch 32, 20 steps an epoch) it passes 3x chance in 3 epochs.
P1_CPU, P2_CPU = (200, TEST_IMAGES, 3), (640, TEST_IMAGES, 3)
# Problem 3 on the CPU must take at most 3 minutes for its 16 runs. A kernel start per run
# would take most of that, so this preset trains Problem 3's rows in the runner's process
# (the same engine and result files; problem3.ipynb is what a user runs, and a test
# executes it). ResNet-18 is the costly model here: 200 images (8 per class; the 10 %
# share keeps one per class) seen twice at batch 20, the same 20 steps for every share.
# Swin-T at 32 and 64 px only (a 112- or 224-px image has 12-49x the pixels), 80 images.
# Offline there are no ImageNet weights: the fine-tunes start from a random init
# (RANDOM_INIT) unless --weights-tiny gives a file, and the report says which.
CLAIMS_CPU = ClaimsSizes(data_images=200, data_epochs=2, data_batch=20, res_images=80,
                         res_epochs=3, test_images=TEST_IMAGES, resolutions=(32, 64),
                         weights_default=RANDOM_INIT)
CPU = DemoPreset(
    name="cpu",
    dataset="synthetic-25",
    rows={**{e["run_name"]: P1_CPU for e in problem1_runs()},
          **{run_name_of(model=m, mode="scratch"): P2_CPU for m in models_of(2)}},
    claims=CLAIMS_CPU,
    in_process=(3,),
    # The train sample is scored after every epoch like the test set: at its default of
    # 1,000 images it would be every row's whole training set here, and evaluation on a
    # 2-core CPU is no longer cheap beside training. The demo scores as many as it tests.
    problem_params={1: dict(train_eval_images=TEST_IMAGES),
                    2: dict(img_size=32, train_eval_images=TEST_IMAGES)},
)

# On a GPU the demo can afford the full 100 synthetic classes, thousands of images and
# Swin's real 224-px input. Not yet timed on a GPU: the runner prints its wall time.
GPU = DemoPreset(
    name="gpu",
    dataset="synthetic",
    rows={**{e["run_name"]: (20_000, 2_000, 10) for e in problem1_runs()},
          **{run_name_of(model=m, mode="scratch"): (5_000, 2_000, 3) for m in models_of(2)}},
    claims=ClaimsSizes(data_images=5_000, data_epochs=10, data_batch=125, res_images=2_000,
                       res_epochs=5, test_images=2_000, weights_default=RANDOM_INIT),
)


RESULTS_DIR = "results/demo"


def preset_for(device: str) -> DemoPreset:
    """The GPU preset when the runs will train on CUDA, else the CPU one."""
    if device == "cpu" or device == "mps":
        return CPU
    if device.startswith("cuda"):
        return GPU
    import torch                        # "auto": what the runs' device will resolve to
    return GPU if torch.cuda.is_available() else CPU
