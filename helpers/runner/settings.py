"""A grid run's settings: the command line's flags resolved once, per problem and per row,
into a frozen RunSettings that the plan, the execution and the jobs read.

Every default is filled here (the demo preset's where --demo), every flag checked here, so
a mistake is refused, naming its flag, before anything runs.
"""
from __future__ import annotations

import argparse
import ast
import os
from dataclasses import dataclass

from .. import claims as claims_module
from .. import grid as grid_module
from ..claims import ClaimsSizes
from ..config import ExperimentConfig, problem_of
from ..notebooks import default_results_dir
from ..paths import EXECUTED_DIR, REPO_ROOT
from . import demo as demo_presets
from .demo import DemoPreset
from .locks import logs_dir

# What makes a grid row that row (its run name says so): never changed with -p. Other
# shapes are one papermill call away: `papermill notebooks/problem1.ipynb ... -p dim 128`.
IDENTITY_PARAMS = ("run_name", "model", "variant", "mode", "patch_size", "dim", "depth", "heads",
                   "seed")
POSITIVE_FLAGS = ("parallel", "timeout_min", "gpus_per_run", "cpus_per_run", "mem_gb")


def parse_value(text: str):
    """A -p value as papermill would read it: None/True/False, a number, else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def repo_path(path: str | None) -> str | None:
    """A path given on the command line, relative to the repo root when it lies inside it
    (the notebooks work from the repo root, and result configs stay machine-independent)."""
    if path is None:
        return None
    full = os.path.abspath(path)
    rel = os.path.relpath(full, REPO_ROOT)
    return full if rel.startswith("..") else rel


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
    # scale-out (submitit)
    executor: str | None                        # None | local | slurm
    wait: bool
    parallel: int | None
    timeout_min: int | None
    max_requeues: int
    slurm_partition: str | None
    gpus_per_run: int
    cpus_per_run: int
    mem_gb: int | None
    slurm_params: dict[str, str]


def check_executor_flags(args: argparse.Namespace) -> None:
    """Scale-out options: only with an executor that uses them, and positive numbers."""
    for flag in POSITIVE_FLAGS:
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise SystemExit(f"error: --{flag.replace('_', '-')} {value}: must be at least 1")
    if args.max_requeues < 0:
        raise SystemExit(f"error: --max-requeues {args.max_requeues}: must be 0 or more")
    slurm_only = [f for f, v in (("--slurm-partition", args.slurm_partition),
                                 ("--mem-gb", args.mem_gb),
                                 ("--slurm-param", args.slurm_param)) if v]
    if slurm_only and args.executor != "slurm":
        raise SystemExit(f"error: {', '.join(slurm_only)}: Slurm options; add --executor slurm")
    if args.executor is None:
        given = [f for f, v in (("--wait", args.wait is not None), ("--parallel", args.parallel),
                                ("--timeout-min", args.timeout_min)) if v]
        if given:
            raise SystemExit(f"error: {', '.join(given)}: options of --executor local|slurm")
    if args.executor == "local" and args.device.startswith("cuda:"):
        raise SystemExit(f"error: --device {args.device} with --executor local: every job "
                         "gets its own GPU; choose the GPUs with CUDA_VISIBLE_DEVICES")


def seeds_of(args: argparse.Namespace) -> tuple[int, ...]:
    seeds = tuple(args.seeds or [0 if args.seed is None else args.seed])
    if min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise SystemExit(f"error: --seeds {' '.join(map(str, seeds))}: seeds must be "
                         "distinct non-negative integers")
    return seeds


def extra_params(pairs: list) -> dict:
    """The -p NAME VALUE pairs as config values; a row's identity is not one of them."""
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
        extra[name] = parse_value(value)
    return extra


def demo_budgets(demo: DemoPreset, args: argparse.Namespace) -> dict[str, dict]:
    """The demo's per-row budget; a subset or epoch count the user gives wins over it."""
    budgets = {}
    for e in grid_module.grid():
        p = problem_of(e["model"])
        train, test, epochs = demo.budget(e["run_name"], p)
        budgets[e["run_name"]] = dict(
            train_subset=args.train_subset or train, test_subset=args.test_subset or test,
            epochs=(args.epochs_p1 if p == 1 else args.epochs_p2) or epochs,
            **demo.problem_params.get(p, {}))
    return budgets


def claims_sizes(demo: DemoPreset | None, budget: float | None) -> ClaimsSizes:
    """Problem 3's sizes: the demo preset's, else the largest that fit --claims-budget
    seconds on one H100 by helpers.claims' cost model (default: its DEFAULT_BUDGET_S)."""
    if demo is not None and budget is None:
        return demo.claims
    try:
        return claims_module.sizes_for_budget(
            claims_module.DEFAULT_BUDGET_S if budget is None else budget)
    except ValueError as err:
        raise SystemExit(f"error: --claims-budget {budget}: {err}") from None


def weights_of(args: argparse.Namespace) -> dict[str, str | None]:
    weights = {"tiny": repo_path(args.weights_tiny), "small": repo_path(args.weights_small)}
    for variant, path in weights.items():
        if path is not None and not os.path.isfile(path):
            raise SystemExit(f"error: --weights-{variant} {path}: no such file")
    return weights


def resolve_settings(args: argparse.Namespace) -> RunSettings:
    """The settings the parsed flags ask for (SystemExit, naming the flag, on a mistake)."""
    check_executor_flags(args)
    seeds = seeds_of(args)
    demo = demo_presets.preset_for(args.device) if args.demo else None
    dataset = args.dataset or (demo.dataset if demo else "cifar100")
    if dataset.endswith(".npz"):
        dataset = repo_path(dataset)
    results_dir = repo_path(args.results_dir or (demo and demo_presets.RESULTS_DIR)
                            or default_results_dir(dataset))
    executed_dir = args.executed_dir
    if executed_dir is None and args.executor:
        executed_dir = logs_dir(results_dir)   # jobs keep their notebooks beside their logs
    executed_dir = os.path.abspath(executed_dir or os.path.join(
        EXECUTED_DIR, os.path.basename(os.path.normpath(results_dir))))
    return RunSettings(
        problems=tuple(args.problems), only=tuple(args.only) if args.only else None,
        list_only=args.list, seeds=seeds, dataset=dataset,
        epochs={1: args.epochs_p1 or grid_module.EPOCHS[1],
                2: args.epochs_p2 or grid_module.EPOCHS[2],
                3: grid_module.EPOCHS[2]},          # Problem 3's rows carry their own epochs
        train_subset=args.train_subset, test_subset=args.test_subset,
        batch_size=args.batch_size,
        run_budget=demo_budgets(demo, args) if demo else {},
        claims=claims_sizes(demo, args.claims_budget), weights=weights_of(args),
        extra=extra_params(args.param), device=args.device, precision=args.precision,
        demo=demo, results_dir=results_dir, executed_dir=executed_dir, force=args.force,
        keep_recipes=args.keep_recipes,
        notebooks=args.notebooks is not False,
        in_process=demo.in_process if demo and args.notebooks is None else (),
        report=args.report,
        executor=args.executor,
        wait=(args.executor == "local") if args.wait is None else args.wait,
        parallel=args.parallel, timeout_min=args.timeout_min, max_requeues=args.max_requeues,
        slurm_partition=args.slurm_partition, gpus_per_run=args.gpus_per_run,
        cpus_per_run=args.cpus_per_run, mem_gb=args.mem_gb,
        slurm_params=dict(args.slurm_param))
