"""The benchmark's result file, benchmarks/results/<device-slug>.json: where it lives, how it
is written, merged with an earlier one and read back, and how each of its rows is judged.

A row is judged from the variants it holds (compare_row): the variant the grid trains on
the row's device (helpers.speed.choose) against the plain path, what each compiled variant
costs and saves over the grid's budget (helpers.speed.compile_saving), the speed-up over
the typical loop, and the row's status. bench_run judges a row after every variant it
times, and merge_run and read_bench_files judge it again on what it holds, so these
figures always follow from the row's variants, whichever part measured them.
"""
from __future__ import annotations

import copy
import glob
import json
import os
import platform
import re

import torch

from .. import speed
from ..atomic import write_text
from ..config import CIFAR100_SIZES, ExperimentConfig, problem_of, row_overrides
from ..device import device_name
from ..grid import EPOCHS, find_entry, grid
from ..paths import BENCH_DIR
from ..results import now_iso, provenance
from .settings import PEAK_SOURCE
from .timing import measured

PLAIN = "eager"        # the old path: eager, timm's attention


def grid_variant(run_name: str, device_type: str) -> str | None:
    """The variant the grid trains this row with on this kind of device, or None for a run
    that is not in the grid."""
    try:
        cfg = ExperimentConfig.from_params(**row_overrides(find_entry(run_name)))
    except KeyError:
        return None
    return speed.choose(cfg, device=torch.device(device_type)).variant


def compile_costs(eager: dict, compiled: dict, epochs: int) -> dict:
    """A compiled variant's one-off cost, break-even (in CIFAR-100 epochs) and saving over
    `epochs` epochs of 50,000 training and 10,000 test images, with an empty compile cache
    (cold) and with its kernels on disk (warm, where measured)."""
    out = dict(grid_epochs=epochs)
    warm = {**compiled, **compiled["warm"]} if compiled.get("warm") else None
    for kind, timing in (("cold", compiled), ("warm", warm)):
        s = None if timing is None else speed.compile_saving(
            eager, timing, epochs=epochs, train_images=CIFAR100_SIZES[0],
            test_images=CIFAR100_SIZES[1])
        per_epoch = s["saved_s"] / epochs if s else 0.0
        out[f"compile_{kind}_s"] = None if s is None else s["cost_s"]
        out[f"break_even_epochs_{kind}"] = s["cost_s"] / per_epoch if per_epoch > 0 else None
        out[f"saving_{kind}"] = s                 # saved_s, cost_s, net_s, pays
    return out


def compare_row(row: dict, device_type: str) -> dict:
    """Set the row's primary variant (the grid's, else the plain one), its comparison with
    the plain path (new_vs_old), each compiled variant's costs, the speed-up over the typical
    loop and the status: complete when the plain variant was measured. Returns the row."""
    ours = {name: t for name, t in row.get("ours", {}).items() if measured(t)}
    want = grid_variant(row["run_name"], device_type)
    primary = want if want in ours else PLAIN if PLAIN in ours else None
    row.update(grid_variant=want, primary=primary, new_vs_old=None, speedup=None)
    eager = ours.get(PLAIN)
    if eager:
        epochs = EPOCHS[problem_of(row["model"])]
        for t in ours.values():
            if t.get("compile"):
                t.update(compile_costs(eager, t, epochs))
        new = ours[primary]
        row["new_vs_old"] = dict(
            old=PLAIN, new=primary, grid_epochs=epochs, old_images_per_s=eager["images_per_s"],
            new_images_per_s=new["images_per_s"],
            speedup=new["images_per_s"] / eager["images_per_s"])
    if primary and measured(row.get("reference")):
        row["speedup"] = ours[primary]["images_per_s"] / row["reference"]["images_per_s"]
    if eager:
        row["status"], row["reason"] = "complete", None
    else:
        plain = row.get("ours", {}).get(PLAIN) or {}
        row["status"] = "failed"
        row["reason"] = (plain.get("reason") or row.get("reason")
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


def write_bench_file(resolved, runs: list, data_path, *, finished: bool, started: str,
                     load0) -> dict:
    """Write the result file as it stands to resolved.out_path (after every variant of
    every run, so a run cut or killed keeps what it measured), merged with
    resolved.previous under --merge; returns it. `resolved`: the benchmark's Resolved
    settings (helpers/bench/benchmark.py). Schema 2: a variant, the
    typical loop or the feature cache that failed is a {"status": "failed", "reason"}
    record; files of schema 1 are read as they are (read_bench_files judges their rows
    afresh)."""
    s, device, name = resolved.settings, resolved.device, device_name(resolved.device)
    notes = (["CPU only: no GPU figure is in this file."] if device.type == "cpu" else [])
    result = dict(
        schema_version=2, kind="speed-benchmark", device=name, device_type=device.type,
        device_slug=device_slug(device), precision=resolved.precision.name,
        threads=torch.get_num_threads() if device.type == "cpu" else None,
        quick=s.quick, sizes=resolved.sizes, variants=[speed.variant_name(*v)
                                                  for v in resolved.variants],
        peak=dict(tflops=resolved.peak, precision=resolved.precision.name,
                  source=PEAK_SOURCE if resolved.peak else None,
                  note=None if resolved.peak else f"no datasheet peak for {name!r}: MFU is null"),
        notes=notes + list(s.notes), load_average=dict(start=list(load0),
                                                       end=list(os.getloadavg())),
        runs=in_grid_order(runs), data_path=data_path, complete=finished,
        provenance=provenance(device=name, device_type=device.type,
                              precision=resolved.precision.name,
                              compile=all(v[1] for v in resolved.variants), seed=0,
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


def merge_run(old: dict, new: dict, device_type: str) -> dict:
    """One row measured again, or in another part: every variant either measured is kept
    (a variant measured both times takes the new figures; a new failure never replaces a
    measurement), and so are the typical-loop reference and the feature cache the new
    measurement did not take. Then the row is judged afresh from the merged variants
    (compare_row): its primary variant, comparison, speed-up and status."""
    old, new = copy.deepcopy(old), copy.deepcopy(new)
    merged = {**old, **new}
    merged["ours"] = {**old.get("ours", {})}
    for name, timing in new.get("ours", {}).items():
        if measured(timing) or not measured(merged["ours"].get(name)):
            merged["ours"][name] = timing
    for key in ("reference", "feature_cache"):
        if not measured(new.get(key)) and old.get(key) is not None:
            merged[key] = old[key]
    merged["measured_parts"] = sorted({*old.get("measured_parts", [old.get("measured")]),
                                       new.get("measured")} - {None})
    return compare_row(merged, device_type)


def merge_previous(result: dict, old: dict) -> None:
    """Fill in what this invocation did not measure from the previous file: a row measured
    again is merged with its previous figures (merge_run); `kept_from_previous` lists the
    rows not measured this time."""
    before = {r["run_name"]: r for r in old.get("runs", [])}
    runs = [merge_run(before[r["run_name"]], r, result["device_type"])
            if r["run_name"] in before else r for r in result["runs"]]
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
                    compare_row(run, r["device_type"])
            out.append(r)
    return out
