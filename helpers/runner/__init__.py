"""Running the grid: every row of both tables, one papermill execution each (or, with
--no-notebooks, the same engine call without a kernel).

cli.py      `python -m helpers.runner` (= `python -m helpers.run`): the loop, its summary,
            the time record and the report at the end; notebooks/grid.ipynb's run_grid
settings.py the command line's flags resolved once into a frozen RunSettings
rows.py     one (row, seed) run: its parameters and config, what it needs
            (helpers.changes.decide), its execution, a result file whatever happens
jobs.py     scale-out through submitit (a Slurm job array or local jobs, one GPU each,
            requeue) and the lock files that keep two workers off one row
demo.py     the demo presets (CPU and GPU): synthetic task and each row's budget
demo_readme.py  the README's demo paragraph from the last demo's time record
"""
from . import demo
from .cli import main, run_grid, select
from .rows import Run, decision_for, make_plan, prepare_files
from .settings import RunSettings, parse_settings

__all__ = ["demo", "Run", "RunSettings", "decision_for", "main", "make_plan",
           "parse_settings", "prepare_files", "run_grid", "select"]
