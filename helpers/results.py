"""Result files: one JSON per run, with the metrics and where they came from.

Tables and prose in the report are rendered from these files only, so each file carries
its resolved config, dataset, library versions, device, git commit and status.
"""
from __future__ import annotations

import datetime as _dt
import glob
import json
import os
import platform
import socket
import subprocess

from .atomic import write_text

STATUSES = ("complete", "failed", "skipped")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _git(*args) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance(*, device: str | None = None, device_type: str | None = None,
               precision: str | None = None, compile: bool | None = None,
               seed: int | None = None, started: str | None = None,
               finished: str | None = None) -> dict:
    """Where a result came from: code version, libraries, machine, seed and times."""
    import torch
    versions = {}
    for lib in ("torchvision", "timm"):
        try:
            versions[lib] = __import__(lib).__version__
        except ImportError:
            versions[lib] = None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        **versions,
        "device": device,
        "device_type": device_type,
        "precision": precision,
        "compile": compile,
        "seed": seed,
        "started": started,
        "finished": finished,
        "hostname": socket.gethostname(),
    }


def epoch_time_summary(history: list[dict]) -> dict:
    """Mean training time per epoch. The first epoch carries one-off costs (cudnn
    autotuning, allocator warm-up, torch.compile), so it is left out when there is a
    second one to average instead; the choice is written into the result."""
    times = [h["epoch_time_s"] for h in history]
    if not times:
        return dict(epoch_time_s=None, epoch_time_note="no epoch finished",
                    first_epoch_time_s=None, total_train_time_s=0.0)
    if len(times) >= 2:
        mean = sum(times[1:]) / len(times[1:])
        which = "epoch 2 only" if len(times) == 2 else f"mean of epochs 2-{len(times)}"
        note = (f"{which}; epoch 1 (warm-up/compile) excluded; "
                "evaluation excluded; device synchronised")
    else:
        mean = times[0]
        note = ("epoch 1 only (includes warm-up/compile, so it overstates the steady state); "
                "evaluation excluded; device synchronised")
    return dict(epoch_time_s=mean, epoch_time_note=note, first_epoch_time_s=times[0],
                total_train_time_s=sum(times))


def write_result(result: dict, results_dir: str | None = None) -> str:
    """Write `<results_dir>/<run_name>.json` atomically and return its path."""
    if result.get("status") not in STATUSES:
        raise ValueError(f"result status must be one of {STATUSES}, got {result.get('status')!r}")
    if not result.get("run_name"):
        raise ValueError("result has no run_name")
    results_dir = results_dir or result["config"]["results_dir"]
    path = os.path.join(results_dir, f"{result['run_name']}.json")
    write_text(path, json.dumps(result, indent=1, allow_nan=False) + "\n")
    return path


def read_result(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def read_results(results_dir: str) -> list[dict]:
    """Every result JSON in a folder (not recursive), sorted by run name."""
    paths = sorted(glob.glob(os.path.join(results_dir, "*.json")))
    return [read_result(p) for p in paths]


def load_results(results_dir: str):
    """All results in a folder as a pandas DataFrame, one row per run.

    Top-level scalars become columns; `config`, `dataset` and `provenance` are flattened
    with a prefix (`config.lr`, `dataset.name`, ...); `history` stays a list column.
    """
    import pandas as pd
    rows = []
    for r in read_results(results_dir):
        row = {k: v for k, v in r.items() if not isinstance(v, dict)}
        for key in ("config", "dataset", "provenance"):
            for k, v in (r.get(key) or {}).items():
                row[f"{key}.{k}"] = v
        rows.append(row)
    return pd.DataFrame(rows)
