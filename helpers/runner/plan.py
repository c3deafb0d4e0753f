"""Planning the grid: each row's notebook parameters, its resolved config, and what it
needs (skip, run, resume, start over). Nothing here executes a notebook or deletes a file,
except `prepare_checkpoint`, which does what an Action says."""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..changes import config_changes
from ..config import ConfigError, ExperimentConfig, swin_variant
from ..grid import ENTRY_ONLY_KEYS, entry_problem, seed_run_name
from ..notebook_exec import config_from_parameters, declared_parameters
from ..paths import NOTEBOOKS
from ..paths import at_home
from .settings import RunSettings, repo_path


@dataclass
class Run:
    """One (grid row, seed) run: its notebook parameters and, if valid, the resolved config."""
    entry: dict
    params: dict
    cfg: ExperimentConfig | None = None
    error: str | None = None           # ConfigError message: the run cannot start

    @property
    def name(self) -> str:
        return self.entry["run_name"]

    @property
    def problem(self) -> int:
        return entry_problem(self.entry)


def shown(path: str) -> str:
    """A path for the log: relative to the repo root when inside it, else absolute."""
    return os.path.normpath(repo_path(path))


def notebook_params(entry: dict, settings: RunSettings, declared: frozenset,
                    seed: int = 0) -> dict:
    """The papermill parameters of one seed of a grid entry: common options, the demo's
    budget, the entry's own shape/mode, then the -p extras; a config field the notebook
    does not declare goes through its `overrides`. The run name says the seed
    (grid.seed_run_name)."""
    problem = entry_problem(entry)
    train_subset, test_subset = settings.subsets[problem]
    params = dict(run_name=seed_run_name(entry["run_name"], seed),
                  epochs=settings.epochs[problem], dataset=settings.dataset,
                  train_subset=train_subset, test_subset=test_subset,
                  results_dir=settings.results_dir, device=settings.device,
                  precision=settings.precision, seed=seed,
                  batch_size=settings.batch_size[problem])
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
            run = Run(dict(entry, run_name=params["run_name"]), params)
            try:
                run.cfg = config_from_parameters(run.problem, run.params)
            except (ConfigError, TypeError, ValueError) as err:  # a bad row never stops the grid
                run.error = str(err)
            plan.append(run)
    return plan


# ----------------------------------------------------------------------------- what to do
@dataclass(frozen=True)
class Action:
    """What a row needs: run it (why, for the log) and whether its checkpoint must go
    first, because it belongs to another config or is unreadable. Deciding deletes nothing:
    `prepare_checkpoint` acts on it."""
    note: str                           # short, for the summary table
    why: str                            # one sentence, for the log
    discard_checkpoint: bool = False
    set_aside_result: bool = False      # --force: the engine would return a complete result


def next_action(run: Run, force: bool) -> Action | None:
    """None if the row is already complete with this config; else what to do about it."""
    from ..results import read_result
    path = at_home(run.cfg.result_path)
    if not os.path.exists(path) or not is_complete(path):
        stale = stale_checkpoint(run)
        if stale:
            return Action("config changed", "its checkpoint was made with another config ("
                          + "; ".join(stale) + "): training from scratch", True)
    if not os.path.exists(path):
        if os.path.exists(at_home(run.cfg.checkpoint_path)):
            return Action("resumed", "interrupted before: resuming from its checkpoint")
        return Action("new", "not run yet")
    try:
        old = read_result(path)
    except (OSError, ValueError) as err:      # e.g. a file edited by hand into bad JSON
        return Action("retried", f"unreadable result file ({err})")
    if old.get("status") != "complete":
        return Action("retried", f"previous attempt {old.get('status')}: "
                                 f"{short(old.get('reason'))}")
    changes = config_changes(old.get("config") or {}, run.cfg.to_dict())
    if changes:
        # A kept checkpoint belongs to the finished run of the old config: it cannot resume
        # the new one (the engine would refuse it), so the new config starts from scratch.
        return Action("config changed", "complete, but with another config ("
                      + "; ".join(changes) + "): training again from scratch", True)
    if force:
        return Action("forced", "--force: training again from scratch (the previous result "
                                "is kept as <run>.json.replaced)", True, True)
    return None


def is_complete(path: str) -> bool:
    from ..results import read_result
    try:
        return read_result(path).get("status") == "complete"
    except (OSError, ValueError):
        return False


def stale_checkpoint(run: Run) -> list[str]:
    """How the config of this run's checkpoint differs from the run's ([] if no checkpoint
    or the same). An interrupted run whose config has changed since cannot be resumed:
    its optimiser and schedule state belong to the other config."""
    path = at_home(run.cfg.checkpoint_path)
    if not os.path.exists(path):
        return []
    from ..checkpoint import load_checkpoint
    try:
        saved = load_checkpoint(path)["config"]
    except Exception as err:  # noqa: BLE001  (truncated or foreign file: cannot resume it)
        return [f"unreadable checkpoint ({type(err).__name__})"]
    return config_changes(saved, run.cfg.to_dict())


def prepare_checkpoint(run: Run, action: Action) -> None:
    """Carry out the action's file part: delete a checkpoint that must not resume, and on
    --force move the complete result aside (to <run>.json.replaced, which the report does
    not read), so the engine trains the run again instead of returning it."""
    if action.discard_checkpoint:
        discard_checkpoint(run.cfg.checkpoint_path)
    result = at_home(run.cfg.result_path)
    if action.set_aside_result and os.path.exists(result):
        os.replace(result, result + ".replaced")


def discard_checkpoint(path: str) -> None:
    path = at_home(path)
    if os.path.exists(path):
        os.remove(path)


def short(text, n: int = 100) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[:n - 1] + "…"
