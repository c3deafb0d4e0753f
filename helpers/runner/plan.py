"""Planning the grid: each (row, seed) run's notebook parameters and resolved config, and
what it needs: helpers.changes.decide (skip, resume or start over) on what its files hold.
Nothing here executes a notebook; only `prepare_files` deletes or moves a file, as a
decision says."""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..changes import Decision, decide
from ..config import ConfigError, ExperimentConfig, swin_variant
from ..grid import ENTRY_ONLY_KEYS, entry_problem, seed_run_name
from ..notebook_exec import config_from_parameters, declared_parameters
from ..paths import NOTEBOOKS, at_home
from .settings import RunSettings


@dataclass
class Run:
    """One (grid row, seed) run: its notebook parameters and, if valid, the resolved config."""
    entry: dict
    params: dict
    cfg: ExperimentConfig | None = None
    error: str | None = None           # ConfigError message: the run cannot start
    keep_recipe: bool = False          # --keep-recipes: a complete run of another recipe stands

    @property
    def name(self) -> str:
        return self.entry["run_name"]

    @property
    def problem(self) -> int:
        return entry_problem(self.entry)


def notebook_params(entry: dict, settings: RunSettings, declared: frozenset,
                    seed: int = 0) -> dict:
    """The papermill parameters of one seed of a grid entry: common options, the demo's
    budget, the entry's own shape/mode, then the -p extras; a config field the notebook
    does not declare goes through its `overrides`. The run name says the seed
    (grid.seed_run_name)."""
    problem = entry_problem(entry)
    params = dict(run_name=seed_run_name(entry["run_name"], seed),
                  epochs=settings.epochs[problem], dataset=settings.dataset,
                  train_subset=settings.train_subset, test_subset=settings.test_subset,
                  results_dir=settings.results_dir, device=settings.device,
                  precision=settings.precision, seed=seed, batch_size=settings.batch_size)
    # The demo's budget for this row (runner/demo.py): sizes, epochs, Swin's input size.
    params.update(settings.run_budget.get(entry["run_name"], {}))
    shape = {k: v for k, v in entry.items() if k not in ENTRY_ONLY_KEYS}
    if problem == 2:                               # problem2.ipynb takes the variant
        params.update(variant=swin_variant(shape.pop("model")), **shape)
    else:
        params.update(shape)
    if shape.get("mode", "scratch") != "scratch":  # scratch has nothing to load
        variant = swin_variant(entry["model"])
        params["weights"] = settings.weights[variant] or (
            settings.claims.weights_default if problem == 3 else None)
    params.update(settings.extra)
    # What the notebook's parameters cell does not declare goes through its `overrides`.
    overrides = {k: params.pop(k) for k in list(params) if k not in declared}
    if overrides:
        params["overrides"] = overrides
    return params


def make_plan(entries: list[dict], settings: RunSettings) -> list[Run]:
    """Parameters and resolved config of every (row, seed) run, before anything executes:
    the rows in table order, each row's seeds together."""
    declared = {p: declared_parameters(NOTEBOOKS[p]) for p in NOTEBOOKS}
    plan = []
    for entry in entries:
        for seed in settings.seeds:
            params = notebook_params(entry, settings, declared[entry_problem(entry)], seed)
            run = Run(dict(entry, run_name=params["run_name"]), params,
                      keep_recipe=settings.keep_recipes)
            try:
                run.cfg = config_from_parameters(run.problem, run.params)
            except (ConfigError, TypeError, ValueError) as err:  # a bad row never stops the grid
                run.error = str(err)
            plan.append(run)
    return plan


# ----------------------------------------------------------------------------- what it needs
def result_on_disk(run: Run) -> dict | str | None:
    """The run's result record, why it cannot be read, or None when there is no file."""
    from ..results import read_result
    path = at_home(run.cfg.result_path)
    if not os.path.exists(path):
        return None
    try:
        return read_result(path)
    except (OSError, ValueError) as err:      # e.g. a file edited by hand into bad JSON
        return str(err)


def checkpoint_on_disk(run: Run) -> dict | str | None:
    """The config the run's checkpoint was saved with, why it cannot be read, or None when
    there is none. Memory-mapped: reads little of a large file."""
    path = at_home(run.cfg.checkpoint_path)
    if not os.path.exists(path):
        return None
    import torch
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)["config"]
    except Exception as err:  # noqa: BLE001  (truncated or foreign file: cannot resume it)
        return f"unreadable checkpoint ({type(err).__name__})"


def decision_for(run: Run, force: bool, refused: str | None = None) -> Decision:
    """What the run needs, by helpers.changes.decide on what its files hold now. `refused`:
    why the engine has just refused its checkpoint, which therefore cannot resume it."""
    return decide(run.cfg.to_dict(), result_on_disk(run), refused or checkpoint_on_disk(run),
                  force, run.keep_recipe)


def prepare_files(run: Run, decision: Decision) -> None:
    """Carry out the decision's file part: delete a checkpoint that must not resume, and on
    --force move the complete result aside (to <run>.json.replaced, which the report does
    not read), so the engine trains the run again instead of returning it."""
    checkpoint, result = at_home(run.cfg.checkpoint_path), at_home(run.cfg.result_path)
    if decision.discard_checkpoint and os.path.exists(checkpoint):
        os.remove(checkpoint)
    if decision.set_aside_result and os.path.exists(result):
        os.replace(result, result + ".replaced")


def short(text, n: int = 100) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[:n - 1] + "…"
