"""A grid run's settings: the command line's flags, checked and resolved once into a frozen
RunSettings that the loop (cli.py), the rows (rows.py) and the jobs (jobs.py) read.

Every default is filled here (the demo preset's where --demo), every flag checked here, so
a mistake is refused, naming its flag, before anything runs.
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import os
from dataclasses import dataclass

from .. import grid as grid_module
from ..claims import DEFAULT_SIZES, ClaimsSizes
from ..config import ConfigError, ExperimentConfig, problem_of
from ..notebooks import default_results_dir
from ..paths import EXECUTED_DIR, REPO_ROOT
from . import demo as demo_presets
from .demo import DemoPreset

# What makes a grid row that row (its run name says so): never changed with -p. Other
# shapes are one papermill call away: `papermill notebooks/problem1.ipynb ... -p dim 128`.
IDENTITY_PARAMS = ("run_name", "model", "variant", "mode", "patch_size", "dim", "depth", "heads",
                   "seed")
SLURM_TIMEOUT_MIN = 240          # per task; a task past it is requeued and resumes
SLURM_CPUS_PER_TASK = 8          # data lives on the GPU: the cores feed the kernels only
LOCAL_TIMEOUT_MIN = 7 * 24 * 60  # a local job's clock includes its wait for a free GPU
SBATCH_PREFIX = "sbatch:"        # --slurm-param sbatch:NAME: a raw sbatch option, unchecked
SLURM_FLAGS = {"time": "--timeout-min", "array_parallelism": "--parallel"}  # set by own flag
REPORT_NEEDS = ("pandas", "matplotlib")     # helpers.report's; a bare GPU image may lack them


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m helpers.run",
        description="Execute the report's experiment grid through notebooks/problem1.ipynb "
                    "and problem2.ipynb. Completed runs are skipped, interrupted ones resume.")
    ap.add_argument("--problems", type=int, nargs="+", choices=(1, 2, 3), default=[1, 2],
                    help="1: ResNet-18 vs ViT; 2: Swin; 3: the claims studies "
                         "(helpers/claims.py); default 1 2")
    ap.add_argument("--only", nargs="+", metavar="RUN_NAME",
                    help="run only these grid rows (see --list)")
    ap.add_argument("--list", action="store_true", help="print the grid rows and exit")
    ap.add_argument("--demo", action="store_true",
                    help="synthetic data, CPU-sized budgets, results/demo, then the report")
    add_training_args(ap)
    ap.add_argument("--force", action="store_true",
                    help="train complete runs again from scratch")
    ap.add_argument("--keep-recipes", action="store_true",
                    help="keep complete runs made by other training code (another recipe in "
                         "their result files); by default they are trained again")
    ap.add_argument("--notebooks", action=argparse.BooleanOptionalAction, default=None,
                    help="execute each row's notebook with papermill (default; the CPU demo "
                         "trains Problem 3's 16 small rows in this process unless given); "
                         "--no-notebooks trains each row through the same engine without a "
                         "Jupyter kernel: the same config and result file")
    add_scaleout_args(ap)
    ap.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                    help="at the end, write report.md, figures and (where LaTeX is installed) "
                         "report.pdf; the demo's go into its results folder")
    return ap


def add_training_args(ap: argparse.ArgumentParser) -> None:
    """What every row trains on, where it runs and where its files go."""
    ap.add_argument("--dataset", help="cifar100 (default) | synthetic | path/to/file.npz")
    for p in (1, 2):
        ap.add_argument(f"--epochs-p{p}", type=int,
                        help=f"Problem {p} epochs (default {grid_module.EPOCHS[p]})")
    ap.add_argument("--train-subset", type=int, help="training images per run (default all)")
    ap.add_argument("--test-subset", type=int, help="test images per run (default all)")
    ap.add_argument("--batch-size", type=int, help="training batch (default: per model)")
    ap.add_argument("--results-dir", help="result JSONs and checkpoints (default "
                                          "results/<dataset>, e.g. results/cifar100)")
    ap.add_argument("--executed-dir",
                    help="executed notebooks (default notebooks/runs/<results-dir name>)")
    ap.add_argument("--weights-tiny", help="local Swin-Tiny ImageNet weights (default: timm hub)")
    ap.add_argument("--weights-small", help="local Swin-Small ImageNet weights (default: hub)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    ap.add_argument("--precision", default="auto", help="auto | bf16 | fp16 | fp32")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="SEED",
                    help="train every row once per seed, e.g. --seeds 0 1 2; each (row, "
                         "seed) has its own result file (seed 0 keeps the row's name, "
                         "others add -seed<k>); the report shows mean ± sd (default: 0)")
    ap.add_argument("-p", "--param", nargs=2, action="append", default=[],
                    metavar=("NAME", "VALUE"),
                    help="any other config field for every run, e.g. -p lr 0.1 -p augment False")


def add_scaleout_args(ap: argparse.ArgumentParser) -> None:
    """--executor and the options of the jobs it submits (jobs.py)."""
    jobs = ap.add_argument_group(
        "scale-out (submitit)",
        "--executor local runs rows in parallel on this machine, one per visible GPU (one "
        "at a time on a CPU); --executor slurm submits them as one Slurm job array, one GPU "
        "per task. A job locks its row (<results>/locks/), and a job that is preempted or "
        "reaches its time limit is requeued and resumes from its checkpoint.")
    jobs.add_argument("--executor", choices=("local", "slurm"),
                      help="default: none, the rows run one after another in this process")
    jobs.add_argument("--wait", action=argparse.BooleanOptionalAction, default=None,
                      help="wait for the jobs, then print the summary and write the report "
                           "(default: wait with local, not with slurm)")
    jobs.add_argument("--parallel", type=int, metavar="N",
                      help="at most N rows at once (local default: one per visible GPU, 1 "
                           "on a CPU; slurm: the array's %%N limit)")
    jobs.add_argument("--timeout-min", type=int, metavar="T",
                      help="time limit per job in minutes; a job past it is requeued and "
                           f"resumes (default: slurm {SLURM_TIMEOUT_MIN}, local "
                           f"{LOCAL_TIMEOUT_MIN}: a local job's clock includes its wait "
                           "for a GPU)")
    jobs.add_argument("--max-requeues", type=int, default=3, metavar="K",
                      help="requeues after a time limit before a job gives up (default 3; "
                           "preemptions do not count)")
    jobs.add_argument("--slurm-param", nargs=2, action="append", default=[],
                      metavar=("NAME", "VALUE"),
                      help="a parameter of submitit's SlurmExecutor (an sbatch option, "
                           "with _ for -), e.g. --slurm-param partition gpu --slurm-param "
                           "mem 32GB --slurm-param account mylab; default cpus_per_task "
                           f"{SLURM_CPUS_PER_TASK}. An sbatch option submitit does not "
                           f"name goes in unchecked with {SBATCH_PREFIX}, e.g. "
                           f"--slurm-param {SBATCH_PREFIX}reservation myres")


@dataclass(frozen=True)
class RunSettings:
    """What the grid runs and how: every field resolved, nothing left to default."""
    # which rows
    problems: tuple[int, ...]
    only: tuple[str, ...] | None               # run names; None: every row of `problems`
    list_only: bool                             # --list: print the rows, run nothing
    seeds: tuple[int, ...]
    # what each row trains on, per problem (1, 2) or per run name
    dataset: str
    epochs: dict[int, int]
    train_subset: int | None                    # images per run; None: all
    test_subset: int | None
    batch_size: int | None                      # None: the model's default
    run_budget: dict[str, dict]                 # the demo's notebook parameters per row
    claims: ClaimsSizes                         # Problem 3's sizes (helpers/claims.py)
    weights: dict[str, str | None]              # Swin variant -> local weights (None: hub)
    extra: dict                                 # -p NAME VALUE, for every row
    device: str
    precision: str
    demo: DemoPreset | None
    # where
    results_dir: str
    executed_dir: str                           # absolute
    # how
    force: bool
    keep_recipes: bool                          # complete runs of another training recipe stand
    notebooks: bool
    in_process: tuple[int, ...]                 # problems whose rows train in this process
    report: bool
    # scale-out (submitit, jobs.py)
    executor: str | None                        # None | local | slurm
    wait: bool
    parallel: int | None
    timeout_min: int
    max_requeues: int
    slurm_params: dict[str, str]                # submitit SlurmExecutor parameters

    def notebook_dir(self, problem: int) -> str | None:
        """Where a row of this problem leaves its executed notebook; None: it trains in
        this process, without a notebook (--no-notebooks, or the CPU demo's Problem 3)."""
        return self.executed_dir if self.notebooks and problem not in self.in_process else None


def parse_settings(argv=None) -> RunSettings:
    """The command line's settings, resolved (SystemExit on a mistake, naming the flag)."""
    args = build_parser().parse_args(argv)
    check_executor_flags(args)
    demo = demo_presets.preset_for(args.device) if args.demo else None
    dataset = args.dataset or (demo.dataset if demo else "cifar100")
    if dataset.endswith(".npz"):
        dataset = repo_path(dataset)
    if not args.list:
        check_here(args, dataset)
    missing = [m for m in REPORT_NEEDS if importlib.util.find_spec(m) is None]
    if args.report and missing and not args.list:      # found out now, not after the grid
        raise SystemExit(f"error: --report (the default): {', '.join(missing)} not installed; "
                         "add --no-report, and run `python -m helpers.report RESULTS_DIR` "
                         "where they are")
    results_dir = repo_path(args.results_dir or (demo and demo_presets.RESULTS_DIR)
                            or default_results_dir(dataset))
    executed_dir = os.path.abspath(args.executed_dir or os.path.join(
        EXECUTED_DIR, os.path.basename(os.path.normpath(results_dir))))
    timeout = SLURM_TIMEOUT_MIN if args.executor == "slurm" else LOCAL_TIMEOUT_MIN
    return RunSettings(
        problems=tuple(args.problems), only=tuple(args.only) if args.only else None,
        list_only=args.list, seeds=seeds_of(args), dataset=dataset,
        epochs={1: given(args.epochs_p1, grid_module.EPOCHS[1]),
                2: given(args.epochs_p2, grid_module.EPOCHS[2]),
                3: grid_module.EPOCHS[2]},          # Problem 3's rows carry their own epochs
        train_subset=args.train_subset, test_subset=args.test_subset,
        batch_size=args.batch_size, run_budget=demo_budgets(demo, args) if demo else {},
        claims=demo.claims if demo else DEFAULT_SIZES, weights=weights_of(args),
        extra=extra_params(args.param), device=args.device, precision=args.precision,
        demo=demo, results_dir=results_dir, executed_dir=executed_dir, force=args.force,
        keep_recipes=args.keep_recipes, notebooks=args.notebooks is not False,
        in_process=demo.in_process if demo and args.notebooks is None else (),
        report=args.report, executor=args.executor,
        wait=(args.executor == "local") if args.wait is None else args.wait,
        parallel=args.parallel, timeout_min=args.timeout_min or timeout,
        max_requeues=args.max_requeues, slurm_params=dict(args.slurm_param))


def check_executor_flags(args: argparse.Namespace) -> None:
    """Scale-out options: only with an executor that uses them, and positive numbers."""
    for flag in ("parallel", "timeout_min"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise SystemExit(f"error: --{flag.replace('_', '-')} {value}: must be at least 1")
    if args.max_requeues < 0:
        raise SystemExit(f"error: --max-requeues {args.max_requeues}: must be 0 or more")
    if args.slurm_param and args.executor != "slurm":
        raise SystemExit("error: --slurm-param: a Slurm option; add --executor slurm")
    for name, _ in args.slurm_param:
        own = SLURM_FLAGS.get(name.removeprefix(SBATCH_PREFIX).replace("-", "_"))
        if own:
            raise SystemExit(f"error: --slurm-param {name}: set by {own}; use that flag")
    if args.executor is None:
        given = [f for f, v in (("--wait", args.wait is not None), ("--parallel", args.parallel),
                                ("--timeout-min", args.timeout_min)) if v]
        if given:
            raise SystemExit(f"error: {', '.join(given)}: options of --executor local|slurm")
    if args.executor == "local" and args.device.startswith("cuda:"):
        raise SystemExit(f"error: --device {args.device} with --executor local: every job "
                         "gets its own GPU; choose the GPUs with CUDA_VISIBLE_DEVICES")


def check_here(args: argparse.Namespace, dataset: str) -> None:
    """What the rows need from this machine, before any of them starts: a .npz dataset
    that loads, and the device asked for; Slurm runs the rows on its own nodes."""
    if args.executor == "slurm":
        return
    if dataset.endswith(".npz"):
        from ..data.arrays import DatasetFormatError, load_npz
        try:
            load_npz(os.path.join(REPO_ROOT, dataset))    # where the rows, run there, read it
        except DatasetFormatError as err:
            raise SystemExit(f"error: --dataset {dataset}: {err}") from None
    from ..device import resolve_device
    try:
        ExperimentConfig(device=args.device).resolved()     # a device name, say
        resolve_device(args.device)                           # and one this machine has
    except (ConfigError, RuntimeError) as err:
        raise SystemExit(f"error: --device {args.device}: {err}") from None


def seeds_of(args: argparse.Namespace) -> tuple[int, ...]:
    seeds = tuple(args.seeds)
    if min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise SystemExit(f"error: --seeds {' '.join(map(str, seeds))}: seeds must be "
                         "distinct non-negative integers")
    return seeds


def extra_params(pairs: list) -> dict:
    """The -p NAME VALUE pairs as config values, each read as papermill would (None, True,
    a number, else a string); a row's identity is not one of them."""
    settable = set(ExperimentConfig().to_dict()) - set(IDENTITY_PARAMS)
    extra = {}
    for name, value in pairs:
        if name in IDENTITY_PARAMS:
            raise SystemExit(f"error: -p {name}: part of what a grid row is; choose rows with "
                             "--only and seeds with --seeds, or run a notebook with papermill "
                             "for another shape")
        if name not in settable:
            raise SystemExit(f"error: -p {name}: unknown; valid names: "
                             f"{', '.join(sorted(settable))}")
        try:
            extra[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            extra[name] = value
    return extra


def demo_budgets(demo: DemoPreset, args: argparse.Namespace) -> dict[str, dict]:
    """The demo's per-row budget; a subset or epoch count the user gives wins over it."""
    budgets = {}
    for e in grid_module.grid():
        p = problem_of(e["model"])
        train, test, epochs = demo.budget(e)
        budgets[e["run_name"]] = dict(
            train_subset=given(args.train_subset, train), test_subset=given(args.test_subset, test),
            epochs=given(args.epochs_p1 if p == 1 else args.epochs_p2, epochs),
            **demo.problem_params.get(p, {}))
    return budgets


def given(flag, default):
    """A flag's value where the user gave one (a 0 too: the config refuses it), else the
    default."""
    return default if flag is None else flag


def weights_of(args: argparse.Namespace) -> dict[str, str | None]:
    weights = {"tiny": repo_path(args.weights_tiny), "small": repo_path(args.weights_small)}
    for variant, path in weights.items():
        if path is not None and not os.path.isfile(path):
            raise SystemExit(f"error: --weights-{variant} {path}: no such file")
    return weights


def repo_path(path: str | None) -> str | None:
    """A path given on the command line, relative to the repo root when it lies inside it
    (the notebooks work from the repo root, and result configs stay machine-independent)."""
    if path is None:
        return None
    full = os.path.abspath(path)
    rel = os.path.relpath(full, REPO_ROOT)
    return full if rel.startswith("..") else rel
