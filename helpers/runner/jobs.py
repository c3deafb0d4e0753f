"""Beyond one process: the grid's runs as submitit jobs, on a Slurm cluster or on this
machine's GPUs.

Every (row, seed) run is one job that calls `execute`, exactly as the sequential runner
does, so a job skips a complete row, resumes an interrupted one and records a failure in
the same way. The results folder is the state they share:
- <results>/locks/<run>.lock   the claim of the worker training that row (locks.py);
- <results>/locks/slot-<k>.lock  local executor only: the job using the k-th visible GPU;
- <results>/logs/<run>.log       the job's stdout and stderr, named by row (appended to
                                 by a requeued job), and <run>.ipynb, its executed notebook;
- <results>/logs/submitit/       submitit's own files (pickles, per-job-id logs).

Slurm: one job array (`--array=0-<n-1>`), one task per run. When Slurm preempts a task or
its time limit comes, submitit signals it; RowJob is Checkpointable, so submitit requeues
the same call, and the requeued task takes over its own claim and resumes from the
checkpoint the engine writes after every epoch (at most one epoch is redone).

Local: one job per run, at most one per visible GPU at a time (one at a time on a CPU).
submitit's LocalExecutor does not pin GPUs, so each job first claims a slot and then sets
CUDA_VISIBLE_DEVICES to that slot's GPU before anything touches CUDA.
"""
from __future__ import annotations

import contextlib
import os
import socket
import sys
from dataclasses import dataclass
from unittest import mock

import submitit

from ..paths import REPO_ROOT, at_home, shown
from ..records import Outcome
from . import locks
from .execute import execute, write_failed_result
from .locks import LOCAL_TIMEOUT_MIN, SLURM_TIMEOUT_MIN, logs_dir
from .plan import Run, decision_for, short
from .settings import RunSettings


@dataclass
class JobSpec:
    """Everything one job needs, pickled by submitit."""
    run: Run
    executed_dir: str | None     # None: train in the job's process (--no-notebooks)
    force: bool
    log: str                     # <results>/logs/<run>.log
    slots: int = 0               # local: claim one of this many slots first (0: no slots)
    gpu_ids: tuple = ()          # local: slot k runs on CUDA device gpu_ids[k]


class RowJob(submitit.helpers.Checkpointable):
    """One run as a submitit job. Its `checkpoint` (inherited) resubmits the same call:
    the state to resume is the engine's own checkpoint file, not anything in memory."""

    def __call__(self, spec: JobSpec) -> Outcome:
        return work(spec)


def work(spec: JobSpec) -> Outcome:
    """Claim the row (another live worker's row is left to it) and, on the local executor,
    a slot; then execute the run. Output also goes to the row's log file."""
    name, results_dir = spec.run.name, at_home(spec.run.cfg.results_dir)
    with tee(spec.log):
        scheduler, job = locks.job_id()
        print(f"[{name}] {scheduler or 'plain'} job {job or os.getpid()} on "
              f"{socket.gethostname()}", flush=True)
        row = locks.claim_row(results_dir, name)
        if not isinstance(row, locks.Claim):
            return locks.left_to_holder(name, row)
        slot = None
        try:
            if spec.slots:
                k, slot = locks.claim_slot(results_dir, spec.slots, name)
                if spec.gpu_ids:
                    os.environ["CUDA_VISIBLE_DEVICES"] = str(spec.gpu_ids[k])
                    print(f"[{name}] slot {k}: CUDA_VISIBLE_DEVICES={spec.gpu_ids[k]}",
                          flush=True)
            return execute(spec.run, spec.executed_dir or "", spec.force,
                           notebooks=spec.executed_dir is not None, log=spec.log)
        finally:
            if slot is not None:
                slot.release()
            row.release()


class _Tee:
    def __init__(self, stream, file):
        self.stream, self.file = stream, file

    def write(self, text):
        self.file.write(text)
        self.file.flush()
        return self.stream.write(text)

    def flush(self):
        self.file.flush()
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextlib.contextmanager
def tee(path: str):
    """Within this block, what this process prints also goes to `path` (appended)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        old = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(old[0], f), _Tee(old[1], f)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = old


def visible_gpus(device: str) -> tuple:
    """The CUDA devices the local executor may hand out: those CUDA_VISIBLE_DEVICES names,
    else all of them; none when the runs are told to use the CPU or MPS."""
    if device in ("cpu", "mps"):
        return ()
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return tuple(x.strip() for x in env.split(",") if x.strip() and x.strip() != "-1")
    import torch
    return tuple(str(i) for i in range(torch.cuda.device_count()))


def make_executor(settings: RunSettings, folder: str):
    """The submitit executor the settings ask for."""
    if settings.executor == "slurm":
        ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=settings.max_requeues)
        params = dict(job_name="hw6-grid", time=settings.timeout_min or SLURM_TIMEOUT_MIN,
                      gpus_per_node=settings.gpus_per_run, cpus_per_task=settings.cpus_per_run,
                      ntasks_per_node=1, nodes=1)
        if settings.slurm_partition:
            params["partition"] = settings.slurm_partition
        if settings.mem_gb:
            params["mem"] = f"{settings.mem_gb}GB"
        if settings.parallel:
            params["array_parallelism"] = settings.parallel
        if settings.slurm_params:
            params["additional_parameters"] = dict(settings.slurm_params)
        ex.update_parameters(**params)
        return ex
    ex = submitit.LocalExecutor(folder=folder, max_num_timeout=settings.max_requeues)
    # gpus_per_node=0: the controller hides every GPU, and the job then shows itself the
    # one its slot names (work()).
    ex.update_parameters(timeout_min=settings.timeout_min or LOCAL_TIMEOUT_MIN, gpus_per_node=0)
    return ex


def local_slots(settings: RunSettings) -> tuple[int, tuple]:
    """How many rows run at once, and the GPUs their slots hand out."""
    gpus = visible_gpus(settings.device)
    if gpus and settings.parallel and settings.parallel > len(gpus):
        raise SystemExit(f"error: --parallel {settings.parallel}: only {len(gpus)} GPU(s) "
                         "visible, and the local executor runs at most one row per GPU")
    return (settings.parallel or len(gpus) or 1), gpus


def run_jobs(plan: list[Run], settings: RunSettings) -> list[Outcome] | None:
    """Submit every run that needs work, as one job each; with --wait, wait for them and
    return the outcomes of all runs (those settled without a job included), else None."""
    settled, jobs, specs = submit(plan, settings)
    if not settings.wait:
        if jobs:
            print(f"not waiting for them (--no-wait). When they have finished: "
                  f"make report RESULTS_DIR={shown(settings.results_dir)}", flush=True)
        return None
    for job in submitit.helpers.as_completed(jobs, poll_frequency=2) if jobs else []:
        spec = specs[jobs.index(job)]
        o = settled[spec.run.name] = job_outcome(job, spec)
        print(f"[{o.run}] job {job.job_id} ended: {o.status}", flush=True)
    return [settled[run.name] for run in plan]


def submit(plan: list[Run], settings: RunSettings) -> tuple[dict, list, list[JobSpec]]:
    """Settle what needs no job here (invalid configs are recorded, complete rows skipped,
    rows a live worker holds left to it), submit the rest: (settled outcomes by run name,
    jobs, their specs)."""
    settled, todo = {}, []
    for run in plan:
        if run.error:
            settled[run.name] = execute(run, "", settings.force)          # recorded: invalid
            continue
        holder = locks.row_holder(at_home(run.cfg.results_dir), run.name)
        if holder:
            settled[run.name] = locks.left_to_holder(run.name, holder)    # not submitted
        elif decision_for(run, settings.force).action == "skip":
            settled[run.name] = execute(run, "", settings.force)          # complete: skipped
        else:
            todo.append(run)
    if not todo:
        return settled, [], []
    logs = logs_dir(settings.results_dir)
    slots, gpus = local_slots(settings) if settings.executor == "local" else (0, ())
    executed = settings.executed_dir if settings.notebooks else None
    specs = [JobSpec(run, executed, settings.force, os.path.join(logs, f"{run.name}.log"),
                     slots, gpus) for run in todo]
    # The jobs import helpers from this checkout, wherever submitit starts them: they
    # inherit the environment they are submitted with.
    pythonpath = os.pathsep.join(
        [REPO_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    with mock.patch.dict(os.environ, {"PYTHONPATH": pythonpath}):
        executor = make_executor(settings, os.path.join(logs, "submitit"))
        jobs = executor.map_array(RowJob(), specs)
    where = (f"{slots} at a time" + (f" on GPU(s) {','.join(gpus)}" if gpus else " (CPU)")
             if settings.executor == "local" else "as one Slurm job array")
    print(f"submitted {len(jobs)} job(s) {where}; logs in {shown(logs)}/", flush=True)
    for job, spec in zip(jobs, specs):
        print(f"  {spec.run.name}: job {job.job_id}", flush=True)
    return settled, jobs, specs


def job_outcome(job, spec: JobSpec) -> Outcome:
    """The job's Outcome; a job that died without returning one (killed, out of memory,
    requeued too often) is recorded as failed, pointing to its log."""
    try:
        outcome = job.result()
        outcome.log = outcome.log or spec.log
        return outcome
    except Exception as err:  # noqa: BLE001  (whatever ended the job: record it, go on)
        reason = f"job {job.job_id} ended without a result: {type(err).__name__}: " \
                 f"{short(err, 300)}"
        run = spec.run
        if decision_for(run, force=False).action != "skip":       # no complete result
            from ..results import now_iso
            write_failed_result(run, "failed", reason, now_iso())
        return Outcome(run.name, "failed", "job died", reason=reason, log=spec.log)
