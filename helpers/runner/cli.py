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
from ..paths import at_home, home, shown
from ..records import Outcome, report_paths, write_grid_record
from ..results import now_iso
from . import demo as demo_presets
from .execute import execute, summary_table
from .locks import LOCAL_TIMEOUT_MIN, SLURM_TIMEOUT_MIN, left_to_holder, row_holder
from .plan import Run, make_plan, result_on_disk
from .settings import RunSettings, resolve_settings


# ----------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m helpers.run",
        description="Execute the report's experiment grid through notebooks/problem1.ipynb "
                    "and problem2.ipynb. Completed runs are skipped, interrupted ones resume.")
    ap.add_argument("--problems", type=int, nargs="+", choices=(1, 2, 3), default=[1, 2],
                    help="1: ResNet-18 vs ViT; 2: Swin; 3: the claims studies "
                         "(helpers/claims.py); default 1 2")
    ap.add_argument("--claims-budget", type=float, metavar="SECONDS",
                    help="Problem 3's sizes: the largest whose cost on one H100, by "
                         "helpers/claims.py's model of measured img/s, fits SECONDS "
                         "(default 300; --demo: the demo preset's sizes)")
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
                    help="execute each row's notebook with papermill (default; the CPU "
                         "demo trains Problem 3's 16 small rows in this process, where "
                         "kernel starts would take most of its time, unless --notebooks "
                         "is given); "
                         "--no-notebooks trains each row through the same engine in the "
                         "runner's (or job's) own process, without a Jupyter kernel: the "
                         "same config and result file, for clusters and machines without "
                         "the Jupyter stack")
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
    seeds = ap.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                       help="train every row once per seed, e.g. --seeds 0 1 2; each (row, "
                            "seed) has its own result file (seed 0 keeps the row's name, "
                            "others add -seed<k>); the report shows mean ± sd (default: 0)")
    seeds.add_argument("--seed", type=int, help="one seed (the same as --seeds SEED)")
    ap.add_argument("-p", "--param", nargs=2, action="append", default=[],
                    metavar=("NAME", "VALUE"),
                    help="any other config field for every run, e.g. -p lr 0.1 -p augment False")


def add_scaleout_args(ap: argparse.ArgumentParser) -> None:
    """--executor and the options of the jobs it submits (helpers/runner/jobs.py)."""
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
                           f"resumes (default: slurm {SLURM_TIMEOUT_MIN}, local "
                           f"{LOCAL_TIMEOUT_MIN}: a local job's clock includes its wait "
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


def parse_settings(argv=None) -> RunSettings:
    """The command line's settings, resolved (SystemExit on a mistake, naming the flag)."""
    return resolve_settings(build_parser().parse_args(argv))


def select(settings: RunSettings) -> list[dict]:
    """The grid rows the settings choose: --only's, else every row of --problems."""
    if not settings.only:
        return grid_module.grid(settings.problems, settings.claims)
    every = grid_module.grid((1, 2, 3), settings.claims)
    known = {e["run_name"] for e in every}
    unknown = [n for n in settings.only if n not in known]
    if unknown:
        raise SystemExit(f"error: --only {unknown}: not in the grid; valid run names: "
                         f"{', '.join(sorted(known))}")
    return [e for e in every if e["run_name"] in settings.only]


# ----------------------------------------------------------------------------- report
def top_level_report_free() -> bool:
    """True when the top-level report.md is absent or is itself a demo report."""
    from ..report import DEMO_BANNER
    path = os.path.join(home(), "report.md")
    if not os.path.exists(path):
        return True
    with open(path, encoding="utf-8") as f:
        return f.readline().startswith(DEMO_BANNER)


def report_at_end(results_dir: str) -> None:
    """report.md and figures from the results; the PDF too where LaTeX is installed."""
    # Imported here: the report needs pandas and matplotlib, which a --no-report run on a
    # bare GPU image or cluster node may not have.
    from ..report import build_pdf, missing_latex_tools, write_report
    out = report_paths(results_dir)
    rep = write_report(at_home(results_dir), out["md"], out["figures"])
    print(f"\nwrote {shown(out['md'])} ({len(rep.runs)} result files, "
          f"{len(rep.flags)} flag(s)), figures in {shown(out['figures'])}/", flush=True)
    demo_dir = os.path.abspath(at_home(demo_presets.RESULTS_DIR))
    if os.path.abspath(at_home(results_dir)) == demo_dir and top_level_report_free():
        # Until a real CIFAR-100 grid writes them, the top-level report.md and figures/
        # show the demo; a real report is never overwritten by a demo, and no other folder
        # (a test's, one's own) writes them.
        write_report(at_home(results_dir), os.path.join(home(), "report.md"),
                     os.path.join(home(), "figures"))
        print("also wrote report.md and figures/ at the top level (labelled as a demo; "
              "the CIFAR-100 grid replaces them)", flush=True)
    missing = missing_latex_tools()
    if missing:
        print(f"no PDF: {', '.join(missing)} not installed (see `make pdf`)")
        return
    pdf = build_pdf(at_home(results_dir), out["pdf"], report_path=out["md"],
                    figures_dir=out["figures"], executed_nb=out["executed"])
    print(f"wrote {shown(pdf)}")


# ----------------------------------------------------------------------------- notebook
def grid_args(*, problems=(1, 2), only=None, seeds=(0,), demo=False, epochs_p1=None,
              epochs_p2=None, dataset=None, device="auto", weights_tiny=None,
              weights_small=None, notebooks=False, report=True, extra_args=()) -> list[str]:
    """The command line of `python -m helpers.run` that notebooks/grid.ipynb's parameters
    stand for (the notebook runs it in its own kernel)."""
    argv = ["--problems", *map(str, problems), "--seeds", *map(str, seeds)]
    for flag, value in (("--only", only), ("--epochs-p1", epochs_p1),
                        ("--epochs-p2", epochs_p2), ("--dataset", dataset),
                        ("--weights-tiny", weights_tiny), ("--weights-small", weights_small)):
        if value is not None:
            argv += [flag, *map(str, value)] if isinstance(value, (list, tuple)) else [
                flag, str(value)]
    argv += ["--device", device, "--notebooks" if notebooks else "--no-notebooks",
             "--report" if report else "--no-report"]
    return argv + (["--demo"] if demo else []) + list(extra_args)


def run_grid(**params) -> int:
    """notebooks/grid.ipynb: the grid rows its parameters choose (grid_args), with a bar per
    row; run it again after a disconnect and it carries on (complete rows are skipped,
    interrupted ones resume). Ends with the summary notebook's parameter for the results."""
    from ..notebooks import summary_parameter
    argv = grid_args(**params)
    print("python -m helpers.run " + " ".join(argv), flush=True)
    settings = parse_settings(argv)             # a bad parameter stops here, before any row
    code = main(argv)
    print(summary_parameter(settings.results_dir))
    return code


# ----------------------------------------------------------------------------- main
def main(argv=None, entries: list[dict] | None = None) -> int:
    """CLI entry point. `entries` replaces the grid (the tests run tiny grids through it)."""
    settings = parse_settings(argv)
    entries = select(settings) if entries is None else entries
    if settings.list_only:
        for e in entries:
            print(e["run_name"])
        return 0
    plan = make_plan(entries, settings)   # relative paths: from the repo root, as papermill
    refuse_newer_results(plan)
    where = (f"executed notebooks in {shown(settings.executed_dir)}" if settings.notebooks
             else "no notebooks (--no-notebooks)")
    print(f"{len(plan)} run(s): dataset {settings.dataset}, results in {settings.results_dir}, "
          f"{where}", flush=True)
    t0, started = time.perf_counter(), now_iso()
    outcomes: list[Outcome] = []
    try:
        waited = run_rows(plan, settings, outcomes)
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are kept; run the same command again to resume."
              + (" Submitted jobs keep running." if settings.executor else ""))
        print(summary_table(outcomes))
        return 130
    if not waited:                                # --no-wait: the jobs report later
        return 0
    finish(settings, outcomes, t0=t0, started=started)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def refuse_newer_results(plan: list[Run]) -> None:
    """SystemExit, before any row runs, when a row's result file was written by a newer
    version of this code (results.ResultVersionError names the file): retrying the row
    would overwrite a finished run this code cannot read."""
    from ..results import ResultVersionError
    for run in plan:
        try:
            run.cfg and result_on_disk(run)
        except ResultVersionError as err:
            raise SystemExit(f"error: {err}; nothing was run") from None


def run_rows(plan: list[Run], settings: RunSettings, outcomes: list[Outcome]) -> bool:
    """Run every row (through jobs, or one after another here), appending each outcome to
    `outcomes` as it comes; False when the jobs were submitted without waiting for them.
    Rows run here take no claim: only jobs share a results folder. A row that a live job
    has claimed is still left to it."""
    if settings.executor:
        from .jobs import run_jobs
        done = run_jobs(plan, settings)
        outcomes.extend(done or [])
        return done is not None
    from tqdm.auto import tqdm
    from ..notebooks import in_notebook
    for run in tqdm(plan, desc="grid rows", disable=not in_notebook()):   # bar in grid.ipynb
        holder = None if run.error else row_holder(at_home(run.cfg.results_dir), run.name)
        if holder:
            outcomes.append(left_to_holder(run.name, holder))
            continue
        notebook = settings.notebooks and run.problem not in settings.in_process
        outcomes.append(execute(run, settings.executed_dir, settings.force, notebook))
    return True


def finish(settings: RunSettings, outcomes: list[Outcome], *, t0: float,
           started: str) -> None:
    """The summary table, the time record and the report. The record is written once
    before the report (so the report shows this grid's time), and again after it with the
    total, report and PDF included."""
    rows_s = time.perf_counter() - t0
    print(f"\n{summary_table(outcomes)}\ntotal wall time {rows_s:.0f} s")
    recorded = dict(demo=settings.demo.name if settings.demo else None,
                    executor=settings.executor, notebooks=settings.notebooks,
                    dataset=settings.dataset, seeds=list(settings.seeds),
                    device=settings.device)
    write_grid_record(settings.results_dir, outcomes, rows_s=rows_s, total_s=None,
                      started=started, finished=now_iso(), settings=recorded)
    if settings.report:
        report_at_end(settings.results_dir)
    total_s = time.perf_counter() - t0
    path = write_grid_record(settings.results_dir, outcomes, rows_s=rows_s, total_s=total_s,
                             started=started, finished=now_iso(), settings=recorded)
    print(f"time record: {shown(path)} ({total_s:.0f} s in all)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
