"""Beyond one process: the grid's runs as submitit jobs, on a Slurm cluster (one job array,
one task and one GPU per run) or on this machine's GPUs, and the lock files that keep two
workers off one row (README: "On a cluster, or on several GPUs").

Every (row, seed) run is one job that calls rows.execute, as the sequential loop does. The
results folder is the state they share:
- locks/<run>.lock      the job training that row;
- locks/slot-<k>.lock   local only: the job on the k-th visible GPU (submitit's local
                        executor does not pin GPUs, so a job locks a slot, then sets
                        CUDA_VISIBLE_DEVICES before anything touches CUDA);
- logs/submitit/        each job's stdout, stderr and pickles.
A preempted or timed-out job is requeued with the same call (RowJob.checkpoint) and resumes
from the engine's checkpoint. A lock is an exclusive create (O_CREAT | O_EXCL) that holds
who made it; one whose owner has stopped (stale_reason) is taken over with a message. A
plain sequential run takes no lock, but leaves alone a row that a live job holds.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from unittest import mock

from ..paths import REPO_ROOT, at_home, shown
from ..gridrun import Outcome
from ..results import now_iso
from .rows import Run, decision_for, execute, short, write_failed_result
from .settings import SBATCH_PREFIX, SLURM_CPUS_PER_TASK, RunSettings


# ----------------------------------------------------------------------------- one job
@dataclass
class JobSpec:
    """Everything one job needs, pickled by submitit."""
    run: Run
    executed_dir: str | None     # None: train in the job's process (--no-notebooks)
    force: bool
    slots: int = 0               # local: lock one of this many slots first (0: no slots)
    gpu_ids: tuple = ()          # local: slot k runs on CUDA device gpu_ids[k]


class RowJob:
    """One run as a submitit job."""

    def __call__(self, spec: JobSpec) -> Outcome:
        return work(spec)

    def checkpoint(self, spec: JobSpec):
        """What submitit requeues on preemption or a time limit: the same call, since the
        state to resume is the engine's own checkpoint file, not anything in memory."""
        from submitit.helpers import DelayedSubmission
        return DelayedSubmission(self, spec)


def work(spec: JobSpec) -> Outcome:
    """Lock the row (another live worker's row is left to it) and, on the local executor,
    a slot; then execute the run."""
    name, results_dir = spec.run.name, spec.run.cfg.results_dir
    scheduler, job = job_id()
    print(f"[{name}] {scheduler or 'plain'} job {job or os.getpid()} on {socket.gethostname()}",
          flush=True)
    row = take_lock(lock_path(results_dir, name), name)
    if not isinstance(row, Lock):
        return left_to_holder(name, row)
    slot = None
    try:
        if spec.slots:
            k, slot = take_slot(results_dir, spec.slots, name)
            if spec.gpu_ids:
                os.environ["CUDA_VISIBLE_DEVICES"] = str(spec.gpu_ids[k])
                print(f"[{name}] slot {k}: CUDA_VISIBLE_DEVICES={spec.gpu_ids[k]}", flush=True)
        return execute(spec.run, spec.executed_dir, spec.force)
    finally:
        if slot is not None:
            slot.release()
        row.release()


# ----------------------------------------------------------------------------- submitting
def run_jobs(plan: list[Run], settings: RunSettings) -> list[Outcome] | None:
    """Submit every run that needs work, as one job each; with --wait, wait for them and
    return the outcomes of all runs (those settled without a job included), else None."""
    import submitit
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
    """Settle what needs no job here (complete rows skipped, rows a live worker holds
    left to it), submit the rest: (settled outcomes by run name, jobs, their specs)."""
    settled, todo = {}, []
    for run in plan:
        busy = left_if_held(run)
        if busy:
            settled[run.name] = busy                                      # not submitted
        elif decision_for(run, settings.force).action == "skip":
            settled[run.name] = execute(run, None, settings.force)        # skipped
        else:
            todo.append(run)
    if not todo:
        return settled, [], []
    slots, gpus = local_slots(settings) if settings.executor == "local" else (0, ())
    specs = [JobSpec(run, settings.notebook_dir(run.problem), settings.force, slots, gpus)
             for run in todo]
    folder = os.path.join(at_home(settings.results_dir), "logs", "submitit")
    # The jobs import helpers from this checkout, wherever submitit starts them: they
    # inherit the environment they are submitted with.
    pythonpath = os.pathsep.join(
        [REPO_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    with mock.patch.dict(os.environ, {"PYTHONPATH": pythonpath}):
        jobs = make_executor(settings, folder).map_array(RowJob(), specs)
    where = (f"{slots} at a time" + (f" on GPU(s) {','.join(gpus)}" if gpus else " (CPU)")
             if settings.executor == "local" else "as one Slurm job array")
    print(f"submitted {len(jobs)} job(s) {where}; their output in {shown(folder)}/",
          flush=True)
    for job, spec in zip(jobs, specs):
        print(f"  {spec.run.name}: job {job.job_id}", flush=True)
    return settled, jobs, specs


def make_executor(settings: RunSettings, folder: str):
    """The submitit executor the settings ask for."""
    import submitit
    if settings.executor == "local":
        ex = submitit.LocalExecutor(folder=folder, max_num_timeout=settings.max_requeues)
        # gpus_per_node=0: the controller hides every GPU, and the job then shows itself the
        # one its slot names (work()).
        ex.update_parameters(timeout_min=settings.timeout_min, gpus_per_node=0)
        return ex
    try:
        ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=settings.max_requeues)
    except RuntimeError as err:                # no srun: this is not a Slurm cluster
        raise SystemExit(f"error: --executor slurm: {err}") from None
    params = dict(job_name="hw6-grid", time=settings.timeout_min, nodes=1, ntasks_per_node=1,
                  cpus_per_task=SLURM_CPUS_PER_TASK)
    if settings.device not in ("cpu", "mps"):  # one GPU per task; none for the CPU demo
        params["gpus_per_node"] = 1
    if settings.parallel:
        params["array_parallelism"] = settings.parallel
    raw = {k.removeprefix(SBATCH_PREFIX): v for k, v in settings.slurm_params.items()
           if k.startswith(SBATCH_PREFIX)}
    checked = {k: v for k, v in settings.slurm_params.items() if not k.startswith(SBATCH_PREFIX)}
    if raw:
        params["additional_parameters"] = raw
    try:                                       # submitit names the valid parameters
        ex.update_parameters(**{**params, **checked})
    except ValueError as err:
        raise SystemExit(f"error: --slurm-param: {err} (an sbatch option submitit does not "
                         f"name: --slurm-param {SBATCH_PREFIX}NAME VALUE)") from None
    return ex


def local_slots(settings: RunSettings) -> tuple[int, tuple]:
    """How many rows run at once, and the GPUs their slots hand out: those
    CUDA_VISIBLE_DEVICES names, else all; none when the runs are told to use the CPU."""
    if settings.device in ("cpu", "mps"):
        gpus = ()
    elif os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        gpus = tuple(x.strip() for x in os.environ["CUDA_VISIBLE_DEVICES"].split(",")
                     if x.strip() and x.strip() != "-1")
    else:
        import torch
        gpus = tuple(str(i) for i in range(torch.cuda.device_count()))
    if gpus and settings.parallel and settings.parallel > len(gpus):
        raise SystemExit(f"error: --parallel {settings.parallel}: only {len(gpus)} GPU(s) "
                         "visible, and the local executor runs at most one row per GPU")
    return (settings.parallel or len(gpus) or 1), gpus


def job_outcome(job, spec: JobSpec) -> Outcome:
    """The job's Outcome; a job that died without returning one (killed, out of memory,
    requeued too often) is recorded as failed, pointing to its stderr."""
    log = str(job.paths.stderr)
    try:
        outcome = job.result()
        outcome.log = outcome.log or log
        return outcome
    except Exception as err:  # noqa: BLE001  (whatever ended the job: record it, go on)
        reason = f"job {job.job_id} ended without a result: {type(err).__name__}: " \
                 f"{short(err, 300)}"
        if decision_for(spec.run, force=False).action != "skip":   # no complete result
            write_failed_result(spec.run, "failed", reason, now_iso())
        return Outcome(spec.run.name, "failed", "job died", reason=reason, log=log)


# ----------------------------------------------------------------------------- locks
@dataclass
class Lock:
    path: str
    holder: dict

    def release(self) -> None:
        """Remove the lock file if it is still ours (a takeover may have replaced it)."""
        if read_lock(self.path).get("token") == self.holder["token"]:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path)


def take_lock(path: str, what: str) -> Lock | dict:
    """Take the lock file `path`; returns the Lock, or the holder's record when someone
    else holds it and is not known to have stopped. A stale lock is taken over with a
    message naming its previous owner and why it is stale."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    scheduler, job = job_id()
    holder = dict(what=what, host=socket.gethostname(), pid=os.getpid(), scheduler=scheduler,
                  job_id=job, started=now_iso(), token=secrets.token_hex(8))
    for _ in range(3):                        # a takeover can race another one: try again
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            old = read_lock(path)
            why = stale_reason(old) if old else None
            if why is None:   # live, or being written this instant (an unreadable lock)
                return old or dict(host="?", pid="?", started=f"? (unreadable {path})")
            if read_lock(path).get("token") != old.get("token"):
                continue                      # replaced since we read it
            print(f"[{what}] taking over a stale lock ({describe(old)}): {why}", flush=True)
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(holder, f)
        return Lock(path, holder)
    return read_lock(path) or dict(host="?", pid="?", started="?")


def take_slot(results_dir: str, n_slots: int, what: str) -> tuple[int, Lock]:
    """Wait for one of n_slots slots (slot k = the k-th visible GPU) and lock it."""
    waited = False
    while True:
        for k in range(n_slots):
            got = take_lock(lock_path(results_dir, f"slot-{k}"), what)
            if isinstance(got, Lock):
                return k, got
        if not waited:
            print(f"[{what}] all {n_slots} slot(s) busy: waiting for one", flush=True)
            waited = True
        time.sleep(1)


def lock_path(results_dir: str, name: str) -> str:
    return os.path.join(at_home(results_dir), "locks", f"{name}.lock")


def read_lock(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def left_if_held(run: Run) -> Outcome | None:
    """A row a live worker has locked is left to it: its Outcome; None: free or stale."""
    holder = read_lock(lock_path(run.cfg.results_dir, run.name))
    return left_to_holder(run.name, holder) if holder and stale_reason(holder) is None else None


def left_to_holder(run_name: str, holder: dict) -> Outcome:
    """What a worker reports for a row that another, live, worker holds: it leaves it."""
    print(f"[{run_name}] locked by another worker ({describe(holder)}): left to it",
          flush=True)
    return Outcome(run_name, "busy", "locked elsewhere", reason=describe(holder))


def describe(holder: dict) -> str:
    job = f", {holder['scheduler']} job {holder['job_id']}" if holder.get("job_id") else ""
    return f"{holder.get('host')} pid {holder.get('pid')}{job}, since {holder.get('started')}"


def stale_reason(holder: dict) -> str | None:
    """Why a lock's owner can no longer be working on it, or None if it may be."""
    here = holder.get("host") == socket.gethostname()
    scheduler, me = job_id()
    if scheduler == holder.get("scheduler") == "slurm" and holder.get("job_id") == me \
            and not (here and holder.get("pid") == os.getpid()):
        return f"it was made by an earlier run of this same job (slurm job {me}, requeued)"
    if here and isinstance(holder.get("pid"), int) and not pid_running(holder["pid"]):
        return f"its process {holder['pid']} on {holder['host']} has ended"
    if holder.get("scheduler") == "slurm" and holder.get("job_id") \
            and slurm_job_ended(holder["job_id"]):
        return f"its Slurm job {holder['job_id']} has ended"
    return None


def job_id() -> tuple[str | None, str | None]:
    """(scheduler, job id) of the job this process runs in: Slurm (array task ids as
    "<array>_<task>", as squeue and submitit name them), submitit's local executor, or
    (None, None) for a plain process."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return "slurm", f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    if env.get("SLURM_JOB_ID"):
        return "slurm", env["SLURM_JOB_ID"]
    if env.get("SUBMITIT_LOCAL_JOB_ID"):
        return "local", env["SUBMITIT_LOCAL_JOB_ID"]
    return None, None


def pid_running(pid: int) -> bool:
    """Whether a process with this PID runs on this host (a zombie does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # someone else's live process
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):    # no /proc (macOS): kill(0) is the answer
        return True


def slurm_job_ended(job: str) -> bool:
    """Whether Slurm's queue no longer lists the job (False when squeue cannot answer)."""
    try:
        done = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):          # no squeue here
        return False
    if done.returncode != 0:                               # "Invalid job id": long gone
        return "invalid job id" in done.stderr.lower()
    return not done.stdout.strip()
