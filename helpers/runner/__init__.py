"""Running the grid: every row of both tables, one papermill execution each (or, with
--no-notebooks, the same engine call without a kernel).

settings.py the command line's flags resolved once into a frozen RunSettings
plan.py     each row's notebook parameters and config, and what it needs (helpers.changes.decide)
execute.py  one row through its notebook, a result file whatever happens, the summary table
jobs.py     scale-out through submitit: a Slurm job array or local jobs, requeue, logs
locks.py    the jobs' claims in the results folder: one worker per row, one local job per GPU
demo.py     the demo presets (CPU and GPU): synthetic task and each row's budget
demo_readme.py  the README's demo paragraph from the last demo's time record
cli.py      `python -m helpers.runner` (= `python -m helpers.run`): flags, the report at the end
"""
from . import demo
from .cli import main, parse_settings, run_grid, select
from .plan import Run, decision_for, make_plan, prepare_files
from .settings import RunSettings

__all__ = ["demo", "Run", "RunSettings", "decision_for", "main", "make_plan",
           "parse_settings", "prepare_files", "run_grid", "select"]
