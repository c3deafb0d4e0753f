"""Claims in the results folder: which job trains which row, and which local GPU it uses.

Claims are for workers that share a results folder: submitit jobs on this machine, or a
Slurm job array on many nodes over a shared file system (jobs.py). A plain sequential run
takes none; it only leaves alone a row that a live job has claimed. A claim is a file in
<results>/locks/ made with an exclusive create (O_CREAT | O_EXCL), so of two workers that
try at once exactly one gets it. It holds who made it: host, PID, job id and start time.

A claim is stale, and is taken over with a message, when
- this same job made it (a Slurm requeue, or submitit's local restart after a time limit,
  runs the same job id again),
- it was made on this host by a process that no longer runs, or
- it names a Slurm job that is no longer in the queue (`squeue`).
A claim that is not stale is never touched: the row is left to its owner.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass

from ..paths import at_home
from ..records import Outcome
from ..results import now_iso

LOCKS = "locks"
LOGS = "logs"
SLURM_TIMEOUT_MIN = 240          # per task; a task past it is requeued and resumes
LOCAL_TIMEOUT_MIN = 7 * 24 * 60  # a local job's clock includes its wait for a free GPU


def logs_dir(results_dir: str) -> str:
    """<results>/logs: each job's log and executed notebook (runner/jobs.py)."""
    return os.path.join(at_home(results_dir), LOGS)


def locks_dir(results_dir: str) -> str:
    return os.path.join(results_dir, LOCKS)


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


def slurm_job_ended(job: str) -> bool | None:
    """True when Slurm no longer knows the job as pending or running, None if it cannot
    be asked (no squeue here)."""
    if shutil.which("squeue") is None:
        return None
    try:
        proc = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:          # "Invalid job id specified": long gone
        return "invalid job id" in proc.stderr.lower() or None
    return not proc.stdout.strip()


def stale_reason(holder: dict) -> str | None:
    """Why a claim's owner can no longer be working on it, or None if it may be."""
    scheduler, me = job_id()
    same_place = holder.get("scheduler") == "slurm" or holder.get("host") == socket.gethostname()
    mine_now = holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname()
    if me and holder.get("job_id") == me and holder.get("scheduler") == scheduler \
            and same_place and not mine_now:
        return f"it was made by an earlier run of this same job ({scheduler} job {me}, requeued)"
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int) \
            and not pid_running(holder["pid"]):
        return f"its process {holder['pid']} on {holder['host']} has ended"
    if holder.get("scheduler") == "slurm" and holder.get("job_id") \
            and slurm_job_ended(holder["job_id"]):
        return f"its Slurm job {holder['job_id']} has ended"
    return None


def describe(holder: dict) -> str:
    job = f", {holder['scheduler']} job {holder['job_id']}" if holder.get("job_id") else ""
    return f"{holder.get('host')} pid {holder.get('pid')}{job}, since {holder.get('started')}"


@dataclass
class Claim:
    path: str
    holder: dict

    def release(self) -> None:
        """Remove the claim file if it is still ours (a takeover may have replaced it)."""
        if _read(self.path).get("token") == self.holder["token"]:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass


def _read(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


# A claim file that is still empty or half written is being created right now; one that
# stays unreadable for this long was left by a writer killed mid-write.
UNREADABLE_GRACE_S = 60


def claim(path: str, what: str, log=print) -> Claim | dict:
    """Take the claim file `path`; returns the Claim, or the holder's record when someone
    else holds it and is not known to have stopped. A stale claim is taken over with a
    message naming its previous owner and why it is stale."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    scheduler, job = job_id()
    holder = dict(what=what, host=socket.gethostname(), pid=os.getpid(), scheduler=scheduler,
                  job_id=job, started=now_iso(), token=secrets.token_hex(8))
    for _ in range(3):                        # a takeover can race another one: try again
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            old = _read(path)
            if not old:
                try:
                    age = time.time() - os.stat(path).st_mtime
                except FileNotFoundError:
                    continue
                if age < UNREADABLE_GRACE_S:
                    return dict(host="?", pid="?", started="just now (being written)")
                why = f"it has been unreadable for {age:.0f} s"
            else:
                why = stale_reason(old)
                if why is None:
                    return old
            if _read(path).get("token") != old.get("token"):
                continue                      # replaced since we read it
            log(f"[{what}] taking over a stale claim ({describe(old) if old else path}): {why}")
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(holder, f)
            f.flush()
            os.fsync(f.fileno())
        return Claim(path, holder)
    return _read(path) or dict(host="?", pid="?", started="?")


def claim_row(results_dir: str, run_name: str, log=print) -> Claim | dict:
    return claim(os.path.join(locks_dir(results_dir), f"{run_name}.lock"), run_name, log)


def row_holder(results_dir: str, run_name: str) -> dict | None:
    """The live owner of a row's claim, or None when it is free or stale (looks only)."""
    holder = _read(os.path.join(locks_dir(results_dir), f"{run_name}.lock"))
    return holder if holder and stale_reason(holder) is None else None


def left_to_holder(run_name: str, holder: dict) -> Outcome:
    """What a worker reports for a row that another, live, worker holds: it leaves it."""
    print(f"[{run_name}] claimed by another worker ({describe(holder)}): left to it",
          flush=True)
    return Outcome(run_name, "busy", "claimed elsewhere", reason=describe(holder))


def claim_slot(results_dir: str, n_slots: int, what: str, poll_s: float = 1.0,
               log=print) -> tuple[int, Claim]:
    """Wait for one of n_slots slots (slot k = the k-th visible GPU) and claim it."""
    waited = False
    while True:
        for k in range(n_slots):
            got = claim(os.path.join(locks_dir(results_dir), f"slot-{k}.lock"), what, log)
            if isinstance(got, Claim):
                return k, got
        if not waited:
            log(f"[{what}] all {n_slots} slot(s) busy: waiting for one")
            waited = True
        time.sleep(poll_s)
