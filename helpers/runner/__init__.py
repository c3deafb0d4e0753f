"""Running the grid: every row of both tables, one papermill execution each (or, with
--no-notebooks, the same engine call without a kernel).

plan.py     each row's notebook parameters and config, and what it needs (skip, run, resume)
execute.py  one row through its notebook, a result file whatever happens, the summary table
locks.py    claims in the results folder: one worker per row, one local job per GPU
kernels.py  --warm-kernels: the next row's kernel started, with its imports, while a row runs
jobs.py     scale-out through submitit: a Slurm job array or local jobs, requeue, logs
demo.py     the demo presets (CPU and GPU): synthetic task and each row's budget
cli.py      `python -m helpers.run`: arguments, the report at the end
"""
from . import demo
from .cli import P1_EPOCHS, P2_EPOCHS, build_parser, main, resolve_args, select
from ..records import Outcome
from .execute import execute, summary_table
from .plan import Action, Run, make_plan, next_action, prepare_checkpoint

__all__ = ["demo", "P1_EPOCHS", "P2_EPOCHS", "Action", "Outcome", "Run", "build_parser",
           "execute", "main", "make_plan", "next_action", "prepare_checkpoint", "resolve_args",
           "select", "summary_table"]
