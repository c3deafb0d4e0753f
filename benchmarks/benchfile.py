"""The benchmark's result file, benchmarks/results/<device-slug>.json: where it lives, how it
is written, merged with an earlier one and read back, and how each of its rows is judged.

A row is judged from what it holds (judge_row): its status, complete once the plain
(eager) variant is measured, and its speed-up over the typical loop. bench_run judges a row
after every measurement, and merge_run and read_bench_files judge it again, so both always
follow from the row's figures, whichever part measured them.
"""
from __future__ import annotations

import copy
import glob
import json
import os
import platform
import re

import torch

from helpers.atomic import write_text
from helpers.device import device_name
from helpers.grid import grid
from helpers.results import now_iso, provenance
from .settings import BENCH_DIR, PEAK_SOURCE, VARIANTS
from .timing import measured

PLAIN = VARIANTS[False]        # the plain path: eager


def judge_row(row: dict) -> dict:
    """Set the row's speed-up over the typical loop (its eager variant's images/s over the
    loop's) and its status: complete when the eager variant was measured. Returns the row."""
    eager = row.get("ours", {}).get(PLAIN)
    row["speedup"] = (eager["images_per_s"] / row["reference"]["images_per_s"]
                      if measured(eager) and measured(row.get("reference")) else None)
    if measured(eager):
        row["status"], row["reason"] = "complete", None
    else:
        row["status"] = "failed"
        row["reason"] = ((eager or {}).get("reason") or row.get("reason")
                         or "the plain (eager) variant was not measured")
    return row


# ----------------------------------------------------------------------------- the file
RESULTS_DIR = os.path.join(BENCH_DIR, "results")    # the committed result files


def device_slug(device: torch.device) -> str:
    """File-name form of a device, e.g. 'cpu-x86_64' or 'nvidia-h200'."""
    if device.type == "cpu":
        return "cpu-" + platform.machine().lower()
    return re.sub(r"[^a-z0-9]+", "-", device_name(device).lower()).strip("-")


def bench_file(device, folder: str = RESULTS_DIR) -> str:
    """The device's result file: <folder>/<device-slug>.json."""
    return os.path.join(folder, f"{device_slug(device)}.json")


def write_bench_file(resolved, runs: list, data_path, *, finished: bool, started: str) -> dict:
    """Write the result file as it stands to resolved.out_path (after every variant of
    every run, so a run cut or killed keeps what it measured), merged with
    resolved.previous under --merge; returns it. `resolved`: the benchmark's Resolved
    settings (benchmarks/benchmark.py). Schema 2: a variant or the typical loop that
    failed is a {"status": "failed", "reason"} record; files of schema 1 are read as they
    are (read_bench_files judges their rows afresh)."""
    s, device, name = resolved.settings, resolved.device, device_name(resolved.device)
    notes = (["CPU only: no GPU figure is in this file."] if device.type == "cpu" else [])
    result = dict(
        schema_version=2, kind="speed-benchmark", device=name, device_type=device.type,
        device_slug=device_slug(device), precision=resolved.precision.name,
        threads=torch.get_num_threads() if device.type == "cpu" else None,
        quick=s.quick, sizes=resolved.sizes, variants=[VARIANTS[c] for c in resolved.variants],
        peak=dict(tflops=resolved.peak, precision=resolved.precision.name,
                  source=PEAK_SOURCE if resolved.peak else None,
                  note=None if resolved.peak else f"no datasheet peak for {name!r}: MFU is null"),
        notes=notes + list(s.notes), runs=in_grid_order(runs), data_path=data_path,
        complete=finished,
        provenance=provenance(device=name, device_type=device.type,
                              precision=resolved.precision.name,
                              compile=all(resolved.variants), seed=0,
                              started=started, finished=now_iso()))
    if resolved.previous:
        merge_previous(result, resolved.previous)
    write_json(result, resolved.out_path)
    return result


def write_json(data: dict, path: str, *, allow_nan: bool = False) -> str:
    """Atomic write (temp file + rename), refusing NaN/inf unless allowed (the smoke part's
    figures may be NaN, which is what it reports); what JSON cannot hold is written as
    its str()."""
    write_text(path, json.dumps(data, indent=1, allow_nan=allow_nan, default=str) + "\n")
    return path


def load_for_merge(path: str, **conditions) -> dict | None:
    """The previous result file, if it was measured under the same conditions
    (device_slug, precision, quick): one table must not mix conditions. Checked before
    any measurement, so a mismatch fails in seconds."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        old = json.load(f)
    for key, value in conditions.items():
        if old.get(key) != value:
            raise SystemExit(f"--merge: {path} has {key}={old.get(key)!r} but this run has "
                             f"{value!r}; measure everything again without --merge")
    return old


def merge_run(old: dict, new: dict) -> dict:
    """One row measured again, or in another part: every variant either measured is kept
    (a variant measured both times takes the new figures; a new failure never replaces a
    measurement), and so is the typical-loop reference the new measurement did not take.
    Then the row is judged afresh (judge_row): its speed-up and status."""
    old, new = copy.deepcopy(old), copy.deepcopy(new)
    merged = {**old, **new}
    merged["ours"] = {**old.get("ours", {})}
    for name, timing in new.get("ours", {}).items():
        if measured(timing) or not measured(merged["ours"].get(name)):
            merged["ours"][name] = timing
    if not measured(new.get("reference")) and old.get("reference") is not None:
        merged["reference"] = old["reference"]
    return judge_row(merged)


def merge_previous(result: dict, old: dict) -> None:
    """Fill in what this invocation did not measure from the previous file: a row measured
    again is merged with its previous figures (merge_run); `kept_from_previous` lists the
    rows not measured this time."""
    before = {r["run_name"]: r for r in old.get("runs", [])}
    runs = [merge_run(before[r["run_name"]], r) if r["run_name"] in before else r
            for r in result["runs"]]
    measured_now = {r["run_name"] for r in result["runs"]}
    kept = {name: r for name, r in before.items() if name not in measured_now}
    result["runs"] = in_grid_order(runs + list(kept.values()))
    if result["data_path"] is None and old.get("data_path"):
        result["data_path"], kept["data_path"] = old["data_path"], None
    result["kept_from_previous"] = sorted(kept)


def in_grid_order(runs: list[dict]) -> list[dict]:
    """Rows in the grid's table order (rows of runs no longer in the grid last)."""
    order = [r["run_name"] for r in grid()]
    return sorted(runs, key=lambda r: (order.index(r["run_name"])
                                       if r["run_name"] in order else len(order)))


def read_bench_files(folder: str) -> list[dict]:
    """Every benchmark result file in `folder`, its rows judged by this version's rules."""
    out = []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as f:
            r = json.load(f)
        if r.get("kind") == "speed-benchmark":
            r["_file"] = os.path.basename(path)
            for run in r["runs"]:
                if "ours" in run:
                    judge_row(run)
            out.append(r)
    return out
