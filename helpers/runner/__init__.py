"""Running the grid: every row of both tables, one papermill execution each (or, with
--no-notebooks, the same engine call without a kernel); the README's layout section names
the module of each part."""
from . import demo
from .cli import main, run_grid, select
from .rows import Run, decision_for, make_plan, prepare_files
from .settings import RunSettings, parse_settings

__all__ = ["demo", "Run", "RunSettings", "decision_for", "main", "make_plan",
           "parse_settings", "prepare_files", "run_grid", "select"]
