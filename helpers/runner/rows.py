"""One grid row, from plan to outcome: its notebook parameters and config (make_plan), what
it needs (decision_for: helpers.changes.decide on what its files hold), its execution
through papermill or in this process (execute), and a result file whatever happens:
complete, failed with the reason, or skipped when the machine cannot get the pretrained
weights. A failure never stops the grid."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from ..changes import Decision, decide
from ..config import ConfigError, ExperimentConfig, row_overrides, seed_run_name, swin_variant
from ..grid import entry_problem
from ..notebook_exec import config_from_parameters, execute_notebook, parameter_defaults
from ..paths import NOTEBOOKS, REPO_ROOT, at_home, shown
from ..gridrun import Outcome
from ..results import ResultVersionError, failed_result, now_iso, read_result, write_result
from .settings import RunSettings


@dataclass
class Run:
    """One (grid row, seed) run: its notebook parameters and the resolved config."""
    entry: dict
    params: dict
    cfg: ExperimentConfig
    keep_recipe: bool = False          # --keep-recipes: a complete run of another recipe stands

    @property
    def name(self) -> str:
        return self.entry["run_name"]

    @property
    def problem(self) -> int:
        return entry_problem(self.entry)


# ----------------------------------------------------------------------------- the plan
def make_plan(entries: list[dict], settings: RunSettings) -> list[Run]:
    """Parameters and resolved config of every (row, seed) run, before anything executes:
    the rows in table order, each row's seeds together. What no attempt could get past
    stops everything here (SystemExit, naming the rows), before any row's files, a
    finished result included, are touched: a config the flags make invalid, or a result
    file from newer code (results.ResultVersionError), which a retry would overwrite."""
    defaults = {p: parameter_defaults(NOTEBOOKS[p]) for p in NOTEBOOKS}
    plan, refused = [], {}
    for entry in entries:
        for seed in settings.seeds:
            params = notebook_params(entry, settings, defaults[entry_problem(entry)], seed)
            try:
                run = Run(dict(entry, run_name=params["run_name"]), params,
                          config_from_parameters(entry_problem(entry), params,
                                                 defaults[entry_problem(entry)]),
                          settings.keep_recipes)
                result_on_disk(run)
            except (ConfigError, ResultVersionError, TypeError, ValueError) as err:
                refused.setdefault(str(err), []).append(params["run_name"])
                continue
            plan.append(run)
    if refused:
        every = len(entries) * len(settings.seeds)
        raise SystemExit("error: nothing was run:\n" + "\n".join(
            f"  {why} ({'every row' if len(names) == every else ', '.join(names)})"
            for why, names in refused.items()))
    return plan


def notebook_params(entry: dict, settings: RunSettings, defaults: dict,
                    seed: int = 0) -> dict:
    """The papermill parameters of one seed of a grid entry: common options, the demo's
    budget, the entry's own shape/mode, then the -p extras; a config field the notebook
    does not declare goes through its `overrides`. The run name says the seed
    (config.seed_run_name)."""
    problem = entry_problem(entry)
    params = dict(run_name=seed_run_name(entry["run_name"], seed),
                  epochs=settings.epochs[problem], dataset=settings.dataset,
                  train_subset=settings.train_subset, test_subset=settings.test_subset,
                  results_dir=settings.results_dir, device=settings.device,
                  precision=settings.precision, seed=seed, batch_size=settings.batch_size)
    # The demo's budget for this row (runner/demo.py): sizes, epochs, Swin's input size.
    params.update(settings.run_budget.get(entry["run_name"], {}))
    shape = row_overrides(entry)
    if problem == 2:                               # problem2.ipynb takes the variant
        params.update(variant=swin_variant(shape.pop("model")), **shape)
    else:
        params.update(shape)
    if shape.get("mode", "scratch") != "scratch":  # scratch has nothing to load
        variant = swin_variant(entry["model"])
        params["weights"] = settings.weights[variant] or (
            settings.claims.weights_default if problem == 3 else None)
    params.update(settings.extra)
    overrides = {k: params.pop(k) for k in list(params) if k not in defaults}
    if overrides:
        params["overrides"] = overrides
    return params


# ----------------------------------------------------------------------------- the decision
def result_on_disk(run: Run) -> dict | str | None:
    """The run's result record, why it cannot be read, or None when there is no file. A
    file from newer code raises results.ResultVersionError."""
    path = at_home(run.cfg.result_path)
    if not os.path.exists(path):
        return None
    try:
        return read_result(path)
    except (OSError, ValueError) as err:      # e.g. a file edited by hand into bad JSON
        return str(err)


def decision_for(run: Run, force: bool, refused: str | None = None) -> Decision:
    """What the run needs, by helpers.changes.decide on what its files hold now. `refused`:
    why the engine has just refused its checkpoint, which therefore cannot resume it."""
    from ..checkpoint import peek_checkpoint       # torch: not for --list or --help
    return decide(run.cfg.to_dict(), result_on_disk(run),
                  refused or peek_checkpoint(at_home(run.cfg.checkpoint_path)), force,
                  run.keep_recipe)


def prepare_files(run: Run, decision: Decision) -> None:
    """Carry out the decision's file part: delete a checkpoint that must not resume, and on
    --force move the complete result aside (to <run>.json.replaced, which the report does
    not read), so the engine trains the run again instead of returning it."""
    checkpoint, result = at_home(run.cfg.checkpoint_path), at_home(run.cfg.result_path)
    if decision.discard_checkpoint and os.path.exists(checkpoint):
        os.remove(checkpoint)
    if decision.set_aside_result and os.path.exists(result):
        os.replace(result, result + ".replaced")


# ----------------------------------------------------------------------------- execution
# The engine refused the checkpoint (a foreign file, a torch that cannot read it).
UNUSABLE_CHECKPOINT = ("CheckpointUnusableError", "CheckpointMismatchError")


def execute(run: Run, executed_dir: str | None, force: bool = False) -> Outcome:
    """Run one grid row (or skip it) and return what happened; never raises for a failed
    run. With `executed_dir` None the engine trains in this process instead of the
    notebook (the same config, the same result file)."""
    started = now_iso()
    decision = decision_for(run, force)
    if decision.action == "skip":
        print(f"[{run.name}] {decision.why}: skipped", flush=True)
        return outcome_from_file(run, decision.note, None)
    prepare_files(run, decision)
    from ..models import weights_problem            # torch: not for --list or --help
    missing = weights_problem(run.cfg.model, run.cfg.weights, run.cfg.mode)
    if missing:      # a property of this machine: no kernel, no data, no model for this row
        print(f"[{run.name}] skipped: {short(missing, 300)}", flush=True)
        write_failed_result(run, "skipped", f"WeightsUnavailableError: {missing}", started)
        return outcome_from_file(run, decision.note, None)
    output = executed_dir and os.path.join(executed_dir, f"{run.name}.ipynb")
    how = f"executing {shown(NOTEBOOKS[run.problem])} -> {shown(output)}" if output \
        else "training in this process (--no-notebooks)"
    print(f"[{run.name}] {decision.why}; {how}", flush=True)
    t0 = time.perf_counter()
    status, reason, ename = attempt(run, output, started)
    if ename in UNUSABLE_CHECKPOINT:      # resuming it again would fail again: start over, once
        decision = decision_for(run, force, refused=short(reason, 300))
        prepare_files(run, decision)
        print(f"[{run.name}] {decision.why}", flush=True)
        status, reason, ename = attempt(run, output, started)
    out = outcome_from_file(run, decision.note, time.perf_counter() - t0)
    out.log = output
    if status is not None:
        print(f"[{run.name}] {status}: {short(reason, 300)}", flush=True)
        out.reason = out.reason or reason
    else:
        acc = "-" if out.test_acc is None else f"{out.test_acc:.2f} %"
        print(f"[{run.name}] {out.status}: test accuracy {acc}", flush=True)
    return out


def attempt(run: Run, output: str | None,
            started: str) -> tuple[str | None, str | None, str | None]:
    """Execute the row once, through its notebook (to `output`) or, when `output` is None,
    in this process: (None, None, None) when it completed, else (status, reason, exception
    name); a result file is on disk either way. A WeightsUnavailableError (the machine
    cannot get pretrained weights) is a property of the machine, not a bug in the run,
    so that row is "skipped"."""
    path = at_home(run.cfg.result_path)
    before = os.stat(path).st_mtime_ns if os.path.exists(path) else None
    try:
        if output is None:
            run_in_process(run)              # no papermill, no Jupyter: nothing imported
        else:
            execute_notebook(NOTEBOOKS[run.problem], output, run.params)
        return None, None, None
    except Exception as err:  # noqa: BLE001  (a dead kernel, a broken notebook): record, go on
        # papermill's PapermillExecutionError carries the notebook's exception as ename.
        ename, evalue = getattr(err, "ename", type(err).__name__), getattr(err, "evalue", str(err))
    status = "skipped" if ename == "WeightsUnavailableError" else "failed"
    reason = f"{ename}: {evalue}"
    after = os.stat(path).st_mtime_ns if os.path.exists(path) else None
    if after is None or after == before:     # the engine wrote nothing for this attempt
        write_failed_result(run, status, reason, started)
    return status, reason, ename


def run_in_process(run: Run) -> dict:
    """What the row's notebook does, without a Jupyter kernel: the same resolved config
    (run.cfg is built from the notebook's parameters by the notebook's own function),
    Experiment(cfg).run(), from the repository root like the notebooks, so relative paths
    in the config mean the same."""
    from ..experiment import Experiment
    from ..notebooks import in_notebook
    old = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        return Experiment(run.cfg).run(progress=in_notebook())   # epoch bars in grid.ipynb
    finally:
        os.chdir(old)


def write_failed_result(run: Run, status: str, reason: str, started: str) -> None:
    """Write the result of a run that died before the engine could write one. What was
    never measured (sizes, metrics, the device) is null rather than guessed."""
    result = failed_result(run_name=run.name, problem=run.problem, model=run.entry["model"],
                           label=run.entry.get("label"), config=run.cfg.to_dict(),
                           status=status, reason=reason, started=started)
    write_result(result, at_home(run.cfg.results_dir))


def outcome_from_file(run: Run, note: str, wall_s: float | None) -> Outcome:
    r = read_result(at_home(run.cfg.result_path))
    return Outcome(run.name, r["status"], note, r.get("test_acc"), r.get("epoch_time_s"),
                   wall_s, r.get("reason"))


def short(text, n: int = 100) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[:n - 1] + "…"
