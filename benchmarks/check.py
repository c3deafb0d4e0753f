"""`python -m benchmarks check`: everything a GPU session should measure, in one command.

Within a time budget (default 8 minutes), three parts, the most important first, each in
its own process and each written as it goes:
  1. smoke: the checks only a GPU can settle (benchmarks/smoke.py) -> smoke.json;
  2. grid: every grid row end to end through Experiment(cfg).run() for 2 epochs on
     synthetic CIFAR-shaped data (Problem 1 at 50k/10k images, Problem 2 at 10k/2k; the
     Swin fine-tunes load a randomly initialised weights file), and the grid at its default
     budget projected from them (gridrows.py) -> grid/;
  3. bench: the benchmark of every row (eager) with the typical loop and the data path;
     then torch.compile of the Problem 1 rows (whole model; ResNet-18 and ViT-8L first).
     All merged per row into one file, which is written after every variant
     -> <device-slug>.json.
Each part must end by its share of the budget (PART_ENDS): the part's process has that time
as its own soft limit (time_limit, a little before), and is killed, with whatever it
started, when it is reached, so a compile that the soft limit cannot interrupt (a backward
compile in autograd's thread) cannot hold up the next part. What a killed part wrote stays.
A part that ends early leaves its time to the next.
Everything goes into one folder, --out-dir (default results/gpu-check):
  smoke.json, <device-slug>.json (copy it to benchmarks/results/ to commit it),
  grid/ (grid/logs/grid_time.json, grid/logs/projection.json), and
  gpu_check.json: each part's status, seconds and note, written after every part.
`--dry-run` goes through every part on the CPU at tiny sizes, with torch.compile's
"eager" backend for the benchmark (dynamo traces, nothing is generated), to prove the
parts, the merge and the file layout before any GPU time is spent; it runs in CI.

Needs only torch, torchvision and timm (and numpy, tqdm, which they bring): no Jupyter,
papermill, thop, pandas or matplotlib. See benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import torch

from helpers import speed
from helpers.config import is_swin
from helpers.device import device_name, resolve_device
from helpers.results import now_iso
from .benchfile import bench_file, write_json
from .benchmark import run_benchmark
from .gridrows import FULL, QUICK, grid_rows, projection_path
from .settings import REPO_ROOT, VARIANTS, BenchSettings, bench_variants, select_runs
from .timing import measured

# The share of the budget by which each part must have ended, in the order they run. On the
# H100 (benchmarks/reference/h100-2026-11-26): the grid's rows took 111 s of wall time for
# 2 epochs (grid_rows.json), the eager benchmark ~200 s for every row with the typical loop
# at 3 timed passes (all.log; 2 here), a cold and a warm whole-model compile ~30 s
# together per Problem 1 row (bench_compile.json; only the cold one is measured now); and
# each part's process spends seconds importing torch and starting CUDA. Not everything
# fits in 8 minutes: the compiled rows get what the eager benchmark leaves. The smoke part
# has no GPU timing yet: its costliest checks are a Swin-S fp16 run through one evaluation
# and a cold inductor compile of one matmul.
PART_ENDS = {"smoke": 0.20, "grid": 0.50, "bench": 1.0}
# Within the bench part, the share of the budget by which each stage must have ended.
BENCH_STAGE_ENDS = {"eager": 0.85, "compile_p1": 1.0}
GRACE = 0.01            # a part's own soft limit falls this share of the budget before its kill
BENCH_REPEATS = 2       # timed passes per variant in the bench part
# Compiled first: the rows the H100 measured compiled (bench_compile.json), to compare.
COMPILE_FIRST = ("p1-resnet18", "p1-vit-8L-8H-512")
DRY_MODELS = "resnet18,vit-2L-2H-128,swin_tiny-scratch,swin_tiny-finetune"
DRY_COMPILE_BACKEND = "eager"     # dynamo traces, nothing is generated


@dataclasses.dataclass(frozen=True)
class CheckSettings:
    """The check's options, resolved: --dry-run means tiny sizes (the benchmark's quick
    ones), the CPU and DRY_MODELS. `part` and `started` are set in a part's own process
    only."""
    budget_s: float = 480.0
    device: str = "auto"
    models: str | None = None
    dry_run: bool = False
    out_dir: str = "results/gpu-check"
    part: str | None = None
    started: float | None = None      # time.time() when the check began

    def at(self, share: float) -> float:
        """When `share` of the budget is spent, as a time.monotonic() value (the budget runs
        from `started`, which each part's process is given too)."""
        return time.monotonic() - time.time() + self.started + share * self.budget_s

    def deadline(self, share: float) -> float:
        """The soft limit of what must end by `share` of the budget: GRACE before the
        part's process is killed."""
        return self.at(share - GRACE)


# ----------------------------------------------------------------------------- the parts
def smoke(check: CheckSettings, device, out_dir: str, entries: list, deadline: float) -> str:
    # Imported here: the other parts run whatever becomes of this one.
    from .smoke import smoke_part
    return smoke_part(device, os.path.join(out_dir, "smoke.json"), dry_run=check.dry_run,
                      deadline=deadline)


def grid(check: CheckSettings, device, out_dir: str, entries: list, deadline: float) -> str:
    _, p = grid_rows(entries, QUICK if check.dry_run else FULL, os.path.join(out_dir, "grid"),
                     device, deadline)
    return f"{p['rows_projected']} of {p['rows_in_grid']} rows projected"


def bench_stages(check: CheckSettings, device, out: str, entries: list) -> list[tuple]:
    """(name, BenchSettings, its rows) of each stage of the bench part, in order; all merge
    into the one benchmark file `out`."""
    base = BenchSettings(
        device=str(device), out=out, merge=True, readmes=(), quick=check.dry_run,
        img_size=QUICK["p2_img_size"] if check.dry_run else None, repeats=BENCH_REPEATS,
        compile_backend=DRY_COMPILE_BACKEND if check.dry_run else speed.COMPILE_BACKEND)
    names = [e["run_name"] for e in entries]
    p1 = sorted((n for e, n in zip(entries, names) if not is_swin(e["model"])),
                key=lambda n: n not in COMPILE_FIRST)            # stable: grid order kept
    return [
        ("eager", dataclasses.replace(base, models=",".join(names), compile="off"), names),
        ("compile_p1", dataclasses.replace(base, models=",".join(p1), compile="on",
                                           reference=False, data_path=False), p1),
    ]


def rows_measured(result: dict, names: list, settings: BenchSettings, device) -> int:
    """How many of the rows `names` hold every variant `settings` measures."""
    rows = {r["run_name"]: r for r in result["runs"]}
    return sum(all(measured(rows[n].get("ours", {}).get(VARIANTS[c]))
                   for c in bench_variants(settings, device))
               for n in names if n in rows)


def bench(check: CheckSettings, device, out_dir: str, entries: list, deadline: float) -> str:
    notes = []
    for name, settings, names in bench_stages(check, device, bench_file(device, out_dir),
                                              entries):
        stage_deadline = min(deadline, check.deadline(BENCH_STAGE_ENDS[name]))
        if not names or time.monotonic() >= stage_deadline:
            notes.append(f"{name}: {'no row selected' if not names else 'out of time'}")
            continue
        try:          # what a stage wrote stands; an error in it (the data path) skips no stage
            result = run_benchmark(settings, deadline=stage_deadline)
        except Exception as err:  # noqa: BLE001  (recorded in the note; the next stage runs)
            notes.append(f"{name}: failed ({type(err).__name__}: {str(err)[:200]})")
            continue
        notes.append(f"{name}: {rows_measured(result, names, settings, device)} of "
                     f"{len(names)} rows")
    return "; ".join(notes)


PARTS = {"smoke": smoke, "grid": grid, "bench": bench}


def run_part(check: CheckSettings) -> int:
    """In a part's own process: the part within its soft limit; its status and note go to
    stdout as the last line, for the parent."""
    deadline = check.deadline(PART_ENDS[check.part])
    device = resolve_device(check.device)
    out_dir = os.path.abspath(check.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    try:
        note = PARTS[check.part](check, device, out_dir, select_runs(check.models), deadline)
        status = "done" if time.monotonic() < deadline else "cut at its deadline"
    except Exception as err:  # noqa: BLE001  (recorded by the parent, which goes on)
        traceback.print_exc()
        note, status = f"{type(err).__name__}: {err}"[:500], "failed"
    print(json.dumps(dict(status=status, note=note)), flush=True)
    return 0 if status != "failed" else 1


# ----------------------------------------------------------------------------- the parent
class Summary:
    """gpu_check.json, written after every part: each part's status, seconds and note; and
    the parts run, each in a child process killed at the part's deadline."""

    def __init__(self, check: CheckSettings, device, ends: dict = PART_ENDS):
        self.t0 = check.at(0)
        self.check, self.ends = check, ends
        self.out_dir = os.path.abspath(check.out_dir)
        self.path = os.path.join(self.out_dir, "gpu_check.json")
        self.data = dict(kind="gpu-check", started=now_iso(), device=device_name(device),
                         torch=torch.__version__, budget_s=check.budget_s,
                         dry_run=check.dry_run, bench_file=bench_file(device, self.out_dir),
                         grid_dir=os.path.join(self.out_dir, "grid"), parts={})

    def deadline(self, part: str) -> float:
        """When the part's process is killed (a time.monotonic() value)."""
        return self.check.at(self.ends[part])

    def save(self) -> None:
        self.data["elapsed_s"] = time.monotonic() - self.t0
        write_json(self.data, self.path, allow_nan=True)

    def run_in_child(self, name: str, cmd: list[str]) -> None:
        """Run the part `name` as `cmd`, in its own process group, which is killed at the
        part's deadline; record its status, seconds and note (its last stdout line)."""
        s = time.monotonic()
        print(f"== {name} ({s - self.t0:.0f} s into the budget)", file=sys.stderr, flush=True)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")])))
        with tempfile.TemporaryFile("w+") as out:
            child = subprocess.Popen(cmd, stdout=out, env=env, start_new_session=True)
            try:
                rc = child.wait(timeout=max(0.0, self.deadline(name) - time.monotonic()))
            except subprocess.TimeoutExpired:
                rc = None
            finally:                  # the part and all it started, even if we are stopped
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            out.seek(0)
            lines = out.read().splitlines()
        record = _last_record(lines)
        for line in lines[:-1] if record else lines:     # what else the part printed
            print(line)
        if rc is None:
            status, note = "cut at its deadline", "killed at its deadline; what it wrote is kept"
        else:
            status, note = ((record["status"], record["note"]) if record
                            else ("failed", f"exit status {rc}"))
        self.data["parts"][name] = dict(status=status, seconds=time.monotonic() - s, note=note)
        self.save()


def stop_on_sigterm() -> None:
    """A SIGTERM (`timeout`, a scheduler) ends the check as Ctrl-C does, through
    run_in_child's cleanup: the running part and all it started are killed (in their own
    session, a signal to this process's group does not reach them)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _last_record(lines: list[str]) -> dict | None:
    """The part's own record: its last stdout line, when that is one."""
    try:
        record = json.loads(lines[-1]) if lines else None
    except ValueError:
        return None
    return record if isinstance(record, dict) and "status" in record else None


# ----------------------------------------------------------------------------- the CLI
def parse_args(argv=None) -> CheckSettings:
    p = argparse.ArgumentParser(prog="python -m benchmarks check",
                                description=__doc__.split("\n")[0])
    p.add_argument("--budget-s", type=float, default=CheckSettings.budget_s,
                   help=f"seconds in all (default {CheckSettings.budget_s:g})")
    p.add_argument("--device", default=CheckSettings.device)
    p.add_argument("--models", help="run names or globs, as `python -m benchmarks --models` "
                   "(default: the grid)")
    p.add_argument("--dry-run", action="store_true",
                   help="every part on the CPU at tiny sizes, compile with the "
                        f"{DRY_COMPILE_BACKEND!r} backend (models: {DRY_MODELS} unless --models)")
    p.add_argument("--out-dir", default=CheckSettings.out_dir,
                   help="the one folder everything is written to "
                        f"(default {CheckSettings.out_dir})")
    # Set by the check for each part's own process; not for users.
    p.add_argument("--part", choices=list(PARTS), help=argparse.SUPPRESS)
    p.add_argument("--started", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not args.budget_s > 0:
        p.error(f"--budget-s={args.budget_s}: must be a positive number of seconds")
    dry = args.dry_run
    return CheckSettings(budget_s=args.budget_s, device="cpu" if dry else args.device,
                         models=args.models or (DRY_MODELS if dry else None),
                         dry_run=dry, out_dir=args.out_dir, part=args.part,
                         started=args.started or time.time())


def main(argv=None):
    """Every part in order, each in its own process, within the budget; returns what
    gpu_check.json holds (in a part's own process: its exit status)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    check = parse_args(argv)
    if check.part:
        return run_part(check)
    device = resolve_device(check.device)
    select_runs(check.models)                          # a bad --models fails here, at once
    stop_on_sigterm()
    summary = Summary(check, device)
    summary.save()
    for name in PART_ENDS:
        summary.run_in_child(name, [sys.executable, "-m", "benchmarks", "check", *argv,
                                    "--part", name, "--started", repr(check.started)])
        if name == "grid" and os.path.exists(projection_path(summary.data["grid_dir"])):
            with open(projection_path(summary.data["grid_dir"])) as f:
                summary.data["projection"] = json.load(f)
    summary.data["finished"] = now_iso()
    summary.save()
    written = [f for f in ("gpu_check.json", "smoke.json", "grid",
                           os.path.basename(summary.data["bench_file"]))
               if os.path.exists(os.path.join(summary.out_dir, f))]
    print(f"wrote {summary.out_dir}/: {', '.join(written)} in "
          f"{time.monotonic() - summary.t0:.0f} s", file=sys.stderr)
    return summary.data


if __name__ == "__main__":
    status = main()
    raise SystemExit(status if isinstance(status, int) else 0)
