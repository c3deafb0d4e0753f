"""Running the grid: every row of both tables, one papermill execution each (or, with
--no-notebooks, the same engine call without a kernel).

settings.py the command line's flags resolved once into a frozen RunSettings
plan.py     each row's notebook parameters and config, and what it needs (skip, run, resume)
execute.py  one row through its notebook, a result file whatever happens, the summary table
locks.py    claims in the results folder: one worker per row, one local job per GPU
kernels.py  --warm-kernels: the next row's kernel started, with its imports, while a row runs
jobs.py     scale-out through submitit: a Slurm job array or local jobs, requeue, logs
demo.py     the demo presets (CPU and GPU): synthetic task and each row's budget
demo_readme.py  the README's demo paragraph from the last demo's time record
cli.py      `python -m helpers.runner` (= `python -m helpers.run`): flags, the report at the end
"""
from . import demo
from .cli import build_parser, grid_args, main, parse_settings, run_grid, select
from .execute import execute, summary_table
from .plan import Action, Run, make_plan, next_action, prepare_checkpoint
from .settings import RunSettings, resolve_settings

__all__ = ["demo", "Action", "Run", "RunSettings",
           "build_parser", "execute", "grid_args", "run_grid", "main", "make_plan",
           "next_action", "parse_settings",
           "prepare_checkpoint", "resolve_settings", "select", "summary_table"]
