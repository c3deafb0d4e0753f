"""`python -m helpers.run`: the report's experiment grid, one papermill execution of a
row's notebook (or, with --no-notebooks, the same engine call in this process) per (row,
seed), each settled by helpers.changes.decide: complete rows are skipped, interrupted ones
resume, changed ones train again, failures are recorded and the grid carries on. The
executed copies go to notebooks/runs/<results-dir name>/. Exits 1 if a run failed.

    python -m helpers.run                       # the CIFAR-100 grid (wants a GPU)
    python -m helpers.run --demo                # synthetic data, CPU-sized, + the report
    python -m helpers.run --only p1-resnet18 --epochs-p1 30 -p lr 0.1

The loop: the settings (settings.py) choose the rows; each is planned, decided and
executed (rows.py), one after another here or as submitit jobs (jobs.py); then the summary
table, the grid's time record and the report. The budgets' reasons: README, "Budgets".
"""
from __future__ import annotations

import shlex
import time

from .. import grid as grid_module
from ..notebooks import in_notebook, summary_parameter
from ..paths import at_home, shown
from ..gridrun import Outcome, report_paths, write_time_record
from ..results import now_iso
from ..textable import plain_table
from .jobs import left_if_held, run_jobs
from .rows import Run, execute, make_plan, short
from .settings import RunSettings, parse_settings


def main(argv=None, entries: list[dict] | None = None) -> int:
    """CLI entry point. `entries` replaces the grid (the tests run tiny grids through it)."""
    settings = parse_settings(argv)
    entries = select(settings) if entries is None else entries
    if settings.list_only:
        for e in entries:
            print(e["run_name"])
        return 0
    plan = make_plan(entries, settings)   # relative paths: from the repo root, as papermill
    where = (f"executed notebooks in {shown(settings.executed_dir)}" if settings.notebooks
             else "no notebooks (--no-notebooks)")
    print(f"{len(plan)} run(s): dataset {settings.dataset}, results in {settings.results_dir}, "
          f"{where}", flush=True)
    t0, started = time.perf_counter(), now_iso()
    outcomes: list[Outcome] = []
    try:
        if settings.executor:
            done = run_jobs(plan, settings)
            if done is None:                      # --no-wait: the jobs report later
                return 0
            outcomes = done
        else:
            run_rows(plan, settings, outcomes)
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are kept; run the same command again to resume."
              + (" Submitted jobs keep running." if settings.executor else ""))
        print(summary_table(outcomes))
        return 130
    finish(settings, outcomes, t0=t0, started=started)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


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


def run_rows(plan: list[Run], settings: RunSettings, outcomes: list[Outcome]) -> None:
    """Every row, one after another in this process, each outcome appended as it comes.
    These rows take no lock (only jobs share a results folder), but a row that a live job
    has locked is left to it."""
    from tqdm.auto import tqdm
    for run in tqdm(plan, desc="grid rows", disable=not in_notebook()):   # bar in grid.ipynb
        outcomes.append(left_if_held(run)
                        or execute(run, settings.notebook_dir(run.problem), settings.force))


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
    write_time_record(settings.results_dir, outcomes, rows_s=rows_s, total_s=None,
                      started=started, finished=now_iso(), settings=recorded)
    if settings.report:
        report_at_end(settings.results_dir)
    total_s = time.perf_counter() - t0
    path = write_time_record(settings.results_dir, outcomes, rows_s=rows_s, total_s=total_s,
                             started=started, finished=now_iso(), settings=recorded)
    print(f"time record: {shown(path)} ({total_s:.0f} s in all)", flush=True)


def summary_table(outcomes: list[Outcome]) -> str:
    def fmt(x, spec):
        return "-" if x is None else format(x, spec)
    header = ("run", "status", "test acc (%)", "epoch time (s)*", "wall (s)", "note")
    rows = [(o.run, o.status, fmt(o.test_acc, ".2f"), fmt(o.epoch_time_s, ".2f"),
             fmt(o.wall_s, ".0f"), o.note) for o in outcomes]
    lines = [plain_table(header, rows, align="llrrrl")]
    lines.append("* mean training time per epoch as the result file records it (evaluation "
                 "excluded); wall = this execution, kernel or job start included")
    reasons: dict[tuple, list[str]] = {}       # the same reason once, with all its runs
    for o in outcomes:
        if o.status != "complete" and o.reason:
            reasons.setdefault((o.status, o.reason), []).append(o.run)
    for (status, reason), names in reasons.items():
        lines.append(f"{', '.join(names)} ({status}): {short(reason, 400)}")
    logs = [(o.run, o.log) for o in outcomes if o.status == "failed" and o.log]
    if logs:
        lines.append("logs of the failed runs:")
        lines += [f"  {name}: {shown(path)}" for name, path in logs]
    return "\n".join(lines)


def report_at_end(results_dir: str) -> None:
    """report.md and figures from the results; where LaTeX is installed, the PDF, whose
    summary notebook writes them on the way."""
    # Imported here: the report needs pandas and matplotlib, which a --no-report run on a
    # bare GPU image or cluster node may not have.
    from ..report import build_pdf, has_complete_run, missing_latex_tools, write_report
    out = report_paths(results_dir)
    if not has_complete_run(at_home(results_dir)):
        print(f"\nno report: no run in {shown(results_dir)} is complete ({shown(out['md'])} "
              "is left as it was)", flush=True)
        return
    missing = missing_latex_tools()
    if missing:
        rep = write_report(at_home(results_dir), out["md"], out["figures"])
        print(f"\nwrote {shown(out['md'])} ({len(rep.runs)} result files, "
              f"{len(rep.flags)} flag(s)), figures in {shown(out['figures'])}/", flush=True)
        print(f"no PDF: {', '.join(missing)} not installed (see `python -m helpers.report pdf`)")
        return
    pdf = build_pdf(at_home(results_dir))
    print(f"\nwrote {shown(out['md'])}, figures in {shown(out['figures'])}/ and {shown(pdf)}")


# ----------------------------------------------------------------------------- grid.ipynb
def grid_args(*, problems=(1, 2), only=None, seeds=(0,), demo=False, epochs_p1=None,
              epochs_p2=None, dataset=None, device="auto", weights_tiny=None,
              weights_small=None, notebooks=False, report=True, extra_args=()) -> list[str]:
    """The command line of `python -m helpers.run` that notebooks/grid.ipynb's parameters
    stand for (the notebook runs it in its own kernel)."""
    def listed(v):                    # papermill's -p gives a scalar for a one-item list
        return shlex.split(v) if isinstance(v, str) else [v] if isinstance(v, int) else v
    problems, seeds, only, extra_args = map(listed, (problems, seeds, only, extra_args))
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
    interrupted ones resume). Ends with the summary notebook's parameter for the results;
    raises if a row failed, so that a papermill run of the notebook fails too."""
    argv = grid_args(**params)
    print("python -m helpers.run " + " ".join(argv), flush=True)
    settings = parse_settings(argv)             # a bad parameter stops here, before any row
    code = main(argv)
    print(summary_parameter(settings.results_dir))
    if code == 1:
        raise RuntimeError("a row failed (the table above says why; the rest are kept): run "
                           "this cell again to retry it")
    return code
