"""`python -m helpers.run`: the report's experiment grid through the notebooks.

Every row of Tables 1 and 2 is one papermill execution of notebooks/problem1.ipynb or
notebooks/problem2.ipynb, with the row's parameters from helpers.grid; the executed copy
is kept in notebooks/runs/<results-dir name>/<run_name>.ipynb. Run it again after a
crash, a Ctrl-C or a Colab disconnect and it carries on where it stopped:

- a run whose result file is complete and was made with the same config is skipped;
- an interrupted run is started again, and the engine resumes it from its checkpoint;
- a complete run whose config changed (say more epochs) is trained again from scratch,
  and the runner says which fields changed;
- a run that fails is recorded (status "failed" and the reason) and the grid carries on;
  fine-tuning without reachable pretrained weights is recorded as "skipped".
It prints a summary table and exits 1 if any run failed (skipped runs are fine), else 0.

    python -m helpers.run                       # the CIFAR-100 grid (wants a GPU)
    python -m helpers.run --demo                # synthetic data, CPU-sized, + the report
    python -m helpers.run --only p1-resnet18 --epochs-p1 30 -p lr 0.1

Budgets: Problem 2 keeps the homework's 5 epochs. Problem 1 gets 20, because its models
are small (see the FLOPs column of Table 1) and with the data resident on the GPU an epoch
takes seconds, so 20 epochs give ResNet-18's cosine schedule room to converge at a cost
of minutes. Both are flags (--epochs-p1/-p2); the result files say what was reached.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from .. import grid as grid_module
from ..config import ExperimentConfig, problem_of
from . import demo as demo_presets
from ..notebooks import default_results_dir
from ..paths import EXECUTED_DIR, at_home, home, report_paths
from .execute import execute, summary_table
from .kernels import KernelPool, want_warm_kernels
from .plan import make_plan, parse_value, repo_path, shown

P1_EPOCHS, P2_EPOCHS = grid_module.EPOCHS[1], grid_module.EPOCHS[2]
# What makes a grid row that row (its run name says so): never changed with -p. Other
# shapes are one papermill call away: `papermill notebooks/problem1.ipynb ... -p dim 128`.
IDENTITY_PARAMS = ("run_name", "model", "variant", "mode", "patch_size", "dim", "depth", "heads",
                   "seed")

# ----------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m helpers.run",
        description="Execute the report's experiment grid through notebooks/problem1.ipynb "
                    "and problem2.ipynb. Completed runs are skipped, interrupted ones resume.")
    ap.add_argument("--problems", type=int, nargs="+", choices=(1, 2), default=[1, 2])
    ap.add_argument("--only", nargs="+", metavar="RUN_NAME",
                    help="run only these grid rows (see --list)")
    ap.add_argument("--list", action="store_true", help="print the grid rows and exit")
    ap.add_argument("--demo", action="store_true",
                    help="synthetic data, CPU-sized budgets, results/demo, then the report")
    ap.add_argument("--dataset", help="cifar100 (default) | synthetic | path/to/file.npz")
    ap.add_argument("--epochs-p1", type=int, help=f"Problem 1 epochs (default {P1_EPOCHS})")
    ap.add_argument("--epochs-p2", type=int, help=f"Problem 2 epochs (default {P2_EPOCHS})")
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
    seeds = ap.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                       help="train every row once per seed, e.g. --seeds 0 1 2; each (row, "
                            "seed) has its own result file (seed 0 keeps the row's name, "
                            "others add -seed<k>); the report shows mean ± sd (default: 0)")
    seeds.add_argument("--seed", type=int, help="one seed (the same as --seeds SEED)")
    ap.add_argument("-p", "--param", nargs=2, action="append", default=[],
                    metavar=("NAME", "VALUE"),
                    help="any other config field for every run, e.g. -p lr 0.1 -p augment False")
    ap.add_argument("--force", action="store_true",
                    help="train complete runs again from scratch")
    ap.add_argument("--notebooks", action=argparse.BooleanOptionalAction, default=True,
                    help="execute each row's notebook with papermill (default); "
                         "--no-notebooks trains each row through the same engine in the "
                         "runner's (or job's) own process, without a Jupyter kernel: the "
                         "same config and result file, for clusters and machines without "
                         "the Jupyter stack")
    ap.add_argument("--warm-kernels", choices=("auto", "on", "off"), default="auto",
                    help="while a row runs, start the next row's kernel and its imports, so "
                         "it begins on a ready kernel (auto, the default: on when the rows "
                         "run on a GPU; off on a CPU, where that work would take cores from "
                         "the row being timed); rows one after another with notebooks only")
    jobs = ap.add_argument_group(
        "scale-out (submitit)",
        "--executor local runs rows in parallel on this machine, one per visible GPU (one "
        "at a time on a CPU); --executor slurm submits them as one Slurm job array. The "
        "results folder is the shared state: a row is claimed by one worker "
        "(<results>/locks/), each job's log is <results>/logs/<run>.log, and a job that "
        "is preempted or reaches its time limit is requeued and resumes from its checkpoint.")
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
                           f"resumes (default: slurm {jobs_defaults()[0]}, local "
                           f"{jobs_defaults()[1]}: a local job's clock includes its wait "
                           "for a GPU)")
    jobs.add_argument("--max-requeues", type=int, default=3, metavar="K",
                      help="requeues after a time limit before a job gives up (default 3; "
                           "preemptions do not count)")
    jobs.add_argument("--slurm-partition", metavar="P", help="Slurm partition")
    jobs.add_argument("--gpus-per-run", type=int, default=1, metavar="G",
                      help="Slurm: GPUs per job (default 1)")
    jobs.add_argument("--cpus-per-run", type=int, default=8, metavar="C",
                      help="Slurm: CPU cores per job (default 8)")
    jobs.add_argument("--mem-gb", type=int, metavar="M", help="Slurm: memory per job, GB")
    jobs.add_argument("--slurm-param", nargs=2, action="append", default=[],
                      metavar=("NAME", "VALUE"),
                      help="any other sbatch option, e.g. --slurm-param account mylab "
                           "--slurm-param qos normal")
    ap.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                    help="at the end, write report.md, figures and (where LaTeX is installed) "
                         "report.pdf; the demo's go into its results folder")
    return ap


def jobs_defaults() -> tuple[int, int]:
    from .locks import LOCAL_TIMEOUT_MIN, SLURM_TIMEOUT_MIN
    return SLURM_TIMEOUT_MIN, LOCAL_TIMEOUT_MIN


def check_executor_args(args) -> None:
    """Scale-out options: only with an executor that uses them, and positive numbers."""
    for flag in ("parallel", "timeout_min", "gpus_per_run", "cpus_per_run", "mem_gb"):
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
    args.wait = (args.executor == "local") if args.wait is None else args.wait
    if args.warm_kernels == "on" and (args.executor or not args.notebooks):
        raise SystemExit("error: --warm-kernels on: for rows run one after another through "
                         "their notebooks; not with --executor or --no-notebooks")


def resolve_args(args) -> None:
    """Fill defaults (the demo preset where --demo), per problem, in place."""
    check_executor_args(args)
    args.seeds = args.seeds or [0 if args.seed is None else args.seed]
    if min(args.seeds) < 0 or len(set(args.seeds)) != len(args.seeds):
        raise SystemExit(f"error: --seeds {' '.join(map(str, args.seeds))}: seeds must be "
                         "distinct non-negative integers")
    args.demo_preset = demo_presets.preset_for(args.device) if args.demo else None
    demo = args.demo_preset
    args.dataset = args.dataset or (demo.dataset if demo else "cifar100")
    if args.dataset.endswith(".npz"):
        args.dataset = repo_path(args.dataset)
    args.results_dir = repo_path(args.results_dir or (demo and demo_presets.RESULTS_DIR)
                                 or default_results_dir(args.dataset))
    args.epochs = {1: args.epochs_p1 or P1_EPOCHS, 2: args.epochs_p2 or P2_EPOCHS}
    args.subsets = {p: (args.train_subset, args.test_subset) for p in (1, 2)}
    args.batch_size = {p: args.batch_size for p in (1, 2)}
    # The demo's per-row budget; a subset or epoch count the user gives wins over it.
    args.run_budget = {}
    if demo:
        for e in grid_module.grid():
            p = problem_of(e["model"])
            train, test, epochs = demo.budget(e["run_name"], p)
            args.run_budget[e["run_name"]] = dict(
                train_subset=args.train_subset or train, test_subset=args.test_subset or test,
                epochs=(args.epochs_p1 if p == 1 else args.epochs_p2) or epochs,
                **demo.problem_params.get(p, {}))
    args.weights = {"tiny": repo_path(args.weights_tiny), "small": repo_path(args.weights_small)}
    for variant, path in args.weights.items():
        if path is not None and not os.path.isfile(path):
            raise SystemExit(f"error: --weights-{variant} {path}: no such file")
    if args.executed_dir is None and args.executor:
        # Jobs keep their executed notebooks beside their logs, named by row.
        from .locks import logs_dir
        args.executed_dir = logs_dir(args.results_dir)
    args.executed_dir = os.path.abspath(args.executed_dir or os.path.join(
        EXECUTED_DIR, os.path.basename(os.path.normpath(args.results_dir))))


def select(args) -> list[dict]:
    entries = grid_module.grid(tuple(args.problems))
    if args.only:
        known = {e["run_name"] for e in grid_module.grid()}
        unknown = [n for n in args.only if n not in known]
        if unknown:
            raise SystemExit(f"error: --only {unknown}: not in the grid; valid run names: "
                             f"{', '.join(sorted(known))}")
        entries = [e for e in grid_module.grid() if e["run_name"] in args.only]
    return entries


def top_level_report_free() -> bool:
    """True when the top-level report.md is absent or is itself a demo report."""
    from ..report import DEMO_BANNER
    path = os.path.join(home(), "report.md")
    if not os.path.exists(path):
        return True
    with open(path, encoding="utf-8") as f:
        return f.readline().startswith(DEMO_BANNER)


def write_report(results_dir: str) -> None:
    """report.md and figures from the results; the PDF too where LaTeX is installed."""
    from ..report import write_report as write_md
    from ..report import build_pdf, missing_latex_tools
    out = report_paths(results_dir)
    rep = write_md(at_home(results_dir), out["md"], out["figures"])
    print(f"\nwrote {shown(out['md'])} ({len(rep.runs)} result files, "
          f"{len(rep.flags)} flag(s)), figures in {shown(out['figures'])}/", flush=True)
    demo_dir = os.path.abspath(at_home(demo_presets.RESULTS_DIR))
    if os.path.abspath(at_home(results_dir)) == demo_dir and top_level_report_free():
        # The design card's top-level report.md / figures/ show the demo until a real
        # CIFAR-100 grid writes them; a real report is never overwritten by a demo, and
        # no other folder (a test's, one's own) writes them.
        write_md(at_home(results_dir), os.path.join(home(), "report.md"),
                 os.path.join(home(), "figures"))
        print("also wrote report.md and figures/ at the top level (labelled as a demo; "
              "the CIFAR-100 grid replaces them)", flush=True)
    missing = missing_latex_tools()
    if missing:
        print(f"no PDF: {', '.join(missing)} not installed (see `make pdf`)")
        return
    pdf = build_pdf(at_home(results_dir), out["pdf"], report_path=out["md"],
                    figures_dir=out["figures"],
                    executed_nb=out["executed"])
    print(f"wrote {shown(pdf)}")


def main(argv=None, entries: list[dict] | None = None) -> int:
    """CLI entry point. `entries` replaces the grid (the tests run tiny grids through it)."""
    args = build_parser().parse_args(argv)
    resolve_args(args)
    extra = {}
    settable = set(ExperimentConfig().to_dict()) - set(IDENTITY_PARAMS)
    for name, value in args.param:
        if name in IDENTITY_PARAMS:
            raise SystemExit(f"error: -p {name}: part of what a grid row is; choose rows with "
                             "--only and seeds with --seeds, or run a notebook with papermill "
                             "for another shape")
        if name not in settable:
            raise SystemExit(f"error: -p {name}: unknown; valid names: {', '.join(sorted(settable))}")
        extra[name] = parse_value(value)
    entries = select(args) if entries is None else entries
    if args.list:
        for e in entries:
            print(e["run_name"])
        return 0
    plan = make_plan(entries, args, extra)   # relative paths: from the repo root, as papermill

    where = (f"executed notebooks in {shown(args.executed_dir)}" if args.notebooks
             else "no notebooks (--no-notebooks)")
    print(f"{len(plan)} run(s): dataset {args.dataset}, results in {args.results_dir}, "
          f"{where}", flush=True)
    t0 = time.perf_counter()
    from ..results import now_iso
    started = now_iso()
    outcomes, kernels = [], None
    try:
        if args.executor:
            from .jobs import run_jobs
            outcomes = run_jobs(plan, args)
            if outcomes is None:                 # --no-wait: the jobs report later
                return 0
        else:
            kernels = (KernelPool() if args.notebooks and len(plan) > 1
                       and want_warm_kernels(args.warm_kernels, args.device) else None)
            for i, run in enumerate(plan):
                if kernels:
                    kernels.more = i + 1 < len(plan)
                outcomes.append(execute(run, args.executed_dir, args.force, args.notebooks,
                                        kernels=kernels))
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are kept; run the same command again to resume."
              + (" Submitted jobs keep running." if args.executor else ""))
        print(summary_table(outcomes))
        return 130
    finally:
        if kernels:
            kernels.close()
    rows_s = time.perf_counter() - t0
    print(f"\n{summary_table(outcomes)}\ntotal wall time {rows_s:.0f} s")
    # The time record: once before the report (so the report shows this grid's time),
    # and again after it with the total, report and PDF included.
    from ..records import write_grid_record
    settings = dict(demo=args.demo_preset.name if args.demo_preset else None,
                    executor=args.executor, notebooks=args.notebooks, dataset=args.dataset,
                    seeds=args.seeds, device=args.device, warm_kernels=kernels is not None)
    write_grid_record(args.results_dir, outcomes, rows_s=rows_s, total_s=None,
                      started=started, finished=now_iso(), settings=settings)
    if args.report:
        write_report(args.results_dir)
    total_s = time.perf_counter() - t0
    path = write_grid_record(args.results_dir, outcomes, rows_s=rows_s, total_s=total_s,
                             started=started, finished=now_iso(), settings=settings)
    print(f"time record: {shown(path)} ({total_s:.0f} s in all)", flush=True)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
