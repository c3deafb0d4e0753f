"""Executing one grid row: what it needs (skip, resume or start over: plan.decision_for),
then its notebook through papermill (or, with --no-notebooks, the same engine call in this
process), and a result file whatever happens (complete, failed with the reason, or skipped
when the machine cannot get the pretrained weights). A failure never stops the grid."""
from __future__ import annotations

import contextlib
import os
import time

from ..notebook_exec import cell_seconds, execute_notebook
from ..notebooks import default_results_dir
from ..paths import NOTEBOOKS, REPO_ROOT, at_home, shown
from ..records import Outcome
from ..textable import plain_table
from .plan import Run, decision_for, prepare_files, short


def write_failed_result(run: Run, status: str, reason: str, started: str) -> None:
    """Write the result of a run that died before the engine could write one. What was
    never measured (sizes, metrics, the device) is null rather than guessed."""
    from ..records import failed_result
    from ..results import write_result
    config = run.cfg.to_dict() if run.cfg else dict(run.params)
    result = failed_result(run_name=run.name, problem=run.problem, model=run.entry["model"],
                           label=run.entry.get("label"), config=config, status=status,
                           reason=reason, started=started)
    write_result(result, at_home(config.get("results_dir")
                                 or default_results_dir(config.get("dataset"))))


def outcome_from_file(run: Run, note: str, wall_s: float | None) -> Outcome:
    from ..results import read_result
    r = read_result(at_home(run.cfg.result_path))
    return Outcome(run.name, r["status"], note, r.get("test_acc"), r.get("epoch_time_s"),
                   wall_s, r.get("reason"))


def execute(run: Run, executed_dir: str, force: bool = False, notebooks: bool = True,
            log: str | None = None) -> Outcome:
    """Run one grid row (or skip it) and return what happened; never raises for a failed
    run. `notebooks=False` calls the engine in this process instead of executing the
    notebook (the same config, the same result file). `log` names the job's log file, if
    it has one, for the summary table."""
    from ..results import now_iso

    started = now_iso()
    if run.error:
        print(f"[{run.name}] invalid config: {run.error}", flush=True)
        write_failed_result(run, "failed", f"ConfigError: {run.error}", started)
        return Outcome(run.name, "failed", "invalid config", reason=run.error)
    decision = decision_for(run, force)
    if decision.action == "skip":
        print(f"[{run.name}] {decision.why}: skipped", flush=True)
        return outcome_from_file(run, decision.note, None)
    prepare_files(run, decision)
    missing = weights_missing(run)
    if missing:      # a property of this machine: no kernel, no data, no model for this row
        print(f"[{run.name}] skipped: {short(missing, 300)}", flush=True)
        write_failed_result(run, "skipped", f"WeightsUnavailableError: {missing}", started)
        return outcome_from_file(run, decision.note, None)
    output = os.path.join(executed_dir, f"{run.name}.ipynb") if notebooks else None
    how = f"executing {shown(NOTEBOOKS[run.problem])} -> {shown(output)}" if notebooks \
        else "training in this process (--no-notebooks)"
    print(f"[{run.name}] {decision.why}; {how}", flush=True)
    t0 = time.perf_counter()
    status, reason, ename = attempt(run, output, started)
    first = decision
    if ename in UNUSABLE_CHECKPOINT:
        # The engine refused the checkpoint (a foreign file, a torch that cannot read it):
        # resuming it again would fail again, so the row starts over, once.
        decision = decision_for(run, force, refused=short(reason, 300))
        prepare_files(run, decision)
        print(f"[{run.name}] {decision.why}", flush=True)
        status, reason, ename = attempt(run, output, started)
    wall = time.perf_counter() - t0
    out = outcome_from_file(run, decision.note, wall)
    out.log = log or output
    if output is not None and decision is first:      # one execution: its cells are the row's
        out.cells_s = cell_seconds(output)
    if status is not None:
        print(f"[{run.name}] {status}: {short(reason, 300)}", flush=True)
        out.reason = out.reason or reason
    else:
        acc = "-" if out.test_acc is None else f"{out.test_acc:.2f} %"
        print(f"[{run.name}] {out.status}: test accuracy {acc}", flush=True)
    return out


def weights_missing(run: Run) -> str | None:
    """Why a fine-tune row cannot get its ImageNet weights here (None: it can, or the row
    needs none). Checked before a kernel starts, as the notebook would fail the same way."""
    if not (run.cfg.is_swin and run.cfg.mode != "scratch"):
        return None
    from ..models import weights_problem
    return weights_problem(run.cfg.model, run.cfg.weights)


UNUSABLE_CHECKPOINT = ("CheckpointUnusableError", "CheckpointMismatchError")


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
    with _working_directory(REPO_ROOT):       # epoch bars where a notebook draws them
        return Experiment(run.cfg).run(progress=in_notebook())


@contextlib.contextmanager
def _working_directory(path: str):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


# ----------------------------------------------------------------------------- summary
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
