"""What a grid run leaves, shared by the runner, the report and the benchmark: each row's
Outcome, the grid's time record (<results>/logs/grid_time.json) and where a results
folder's report goes (`report_paths`). Neutral ground: this module imports only the core,
and the runner, the report and the benchmark import it.

The time record says how long a grid run took, row by row and in all. It is written to
<results>/logs/grid_time.json, beside the jobs' logs, so the report's loader, which reads
the folder's *.json result files, never mistakes it for a result.

Each row's wall time is what the runner measured around it (kernel or job start, data,
model, measurement, training, evaluation, result writing); its training and evaluation
seconds come from its result file. `total_s` runs from the runner's start to the end of
the report (PDF included when one was built).
"""
from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass

from .atomic import write_text
from .paths import EXECUTED_DIR, REAL_DATASET, at_home, home
from .results import git_output, read_result

TIME_RECORD = os.path.join("logs", "grid_time.json")


@dataclass
class Outcome:
    """What happened to one grid row this time."""
    run: str
    status: str                         # complete | failed | skipped | busy | not run
    note: str = ""
    test_acc: float | None = None
    epoch_time_s: float | None = None
    wall_s: float | None = None         # None: not executed this time
    reason: str | None = None
    log: str | None = None              # where to read what happened: notebook or log file


def report_paths(results_dir: str, executed_dir: str = EXECUTED_DIR) -> dict:
    """Where the report of a results folder goes. The CIFAR-100 results' report is HOME's
    (report.md, figures/, report.pdf); any other folder (a demo, a synthetic test) keeps
    its report inside itself, so it can never be mistaken for the real one."""
    base = os.path.basename(os.path.normpath(results_dir))
    where = home() if base == REAL_DATASET else at_home(results_dir)
    return dict(md=os.path.join(where, "report.md"), pdf=os.path.join(where, "report.pdf"),
                figures=os.path.join(where, "figures"),
                executed=os.path.join(executed_dir, base, "summary.ipynb"))


def time_record_path(results_dir: str) -> str:
    return os.path.join(at_home(results_dir), TIME_RECORD)


def write_time_record(results_dir: str, outcomes: list, *, rows_s: float, total_s: float,
                      started: str, finished: str, settings: dict) -> str:
    """Write the record (atomically) and return its path."""
    rows = []
    for o in outcomes:
        path = os.path.join(at_home(results_dir), f"{o.run}.json")
        try:
            r = read_result(path)
        except (OSError, ValueError):
            r = {}
        rows.append(dict(run=o.run, status=o.status, note=o.note, wall_s=o.wall_s,
                         train_s=r.get("total_train_time_s"), eval_s=r.get("eval_time_s")))
    record = dict(started=started, finished=finished, rows_s=rows_s, total_s=total_s,
                  executed=sum(1 for o in outcomes if o.wall_s is not None),
                  git_commit=git_output("rev-parse", "HEAD"), python=platform.python_version(),
                  settings=settings, rows=rows)
    path = time_record_path(results_dir)
    write_text(path, json.dumps(record, indent=1) + "\n")
    return path


def read_time_record(results_dir: str) -> dict | None:
    try:
        with open(time_record_path(results_dir), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
