"""One benchmark row judged from the variants it holds: the variant the grid trains on the
row's device (helpers.speed.choose) against the plain path, what each compiled variant costs
and saves over the grid's budget (helpers.speed.compile_saving), the speed-up over the
typical loop, and the row's status.

bench_run calls compare_row after every variant it times, and the merge of two measurements
of one row (render.merge_run) and the README tables call it again on what the row holds, so
these figures always follow from the row's variants, whichever part measured them.
"""
from __future__ import annotations

import torch

from .. import speed
from ..config import CIFAR100_SIZES, ExperimentConfig, problem_of
from ..grid import ENTRY_ONLY_KEYS, EPOCHS, grid

PLAIN = "eager"        # the old path: eager, timm's attention


def measured(timing) -> bool:
    """A timing that holds figures: not missing, not a failed or unmeasured record."""
    return bool(timing) and timing.get("status") != "failed"


def failed(reason: str) -> dict:
    """The record of a variant (or reference, feature cache) that has no figures."""
    return dict(status="failed", reason=reason)


def grid_variant(run_name: str, device_type: str) -> str | None:
    """The variant the grid trains this row with on this kind of device, or None for a run
    that is not in the grid."""
    entry = next((e for e in grid() if e["run_name"] == run_name), None)
    if entry is None:
        return None
    cfg = ExperimentConfig.from_params(**{k: v for k, v in entry.items()
                                          if k not in ENTRY_ONLY_KEYS})
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
