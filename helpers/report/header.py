"""The report's header: banner, title, where the numbers came from, and where the grid's
time went. Every value is read from the result files and the runner's time record."""
from __future__ import annotations

from .. import grid
from ..config import CIFAR100_CLASSES, CIFAR100_SIZES, native_img_size
from ..results import STATUSES, migrate
from ..textable import pdf_dashes, pipe_table
from .analysis import result_is_synthetic
from .flags import Flag
from .seeds import seed_rows
from .stats import RULE

DEMO_BANNER = "> **DEMO on synthetic data — these are not CIFAR-100 results.**"


def _agree(values: dict[str, object]) -> str:
    """One value when all runs agree, else each value with the runs that have it."""
    groups: dict[str, list[str]] = {}
    for name, v in values.items():
        groups.setdefault("unknown" if v is None else str(v), []).append(name)
    if len(groups) <= 1:
        return next(iter(groups), "unknown")
    ranked = sorted(groups.items(), key=lambda kv: -len(kv[1]))   # the majority first

    def who(names, i):
        return f"{len(names)} runs" if i == 0 and len(names) > 3 else f"`{'`, `'.join(names)}`"
    return "; ".join(f"{v} ({who(names, i)})" for i, (v, names) in enumerate(ranked))


def run_devices(r: dict) -> str | None:
    """The device a run trained on; 'A + B' when a resume moved its epochs to another."""
    devices = r.get("devices") or (r.get("provenance") or {}).get("devices")
    if devices:
        return " + ".join(devices)
    return (r.get("provenance") or {}).get("device")


def report_title(runs: dict) -> str:
    """Plain-text title; never claims CIFAR-100 unless every run used CIFAR-100."""
    names = {(r.get("dataset") or {}).get("name") for r in runs.values()}
    if not runs:
        return "HW6 report: no results yet"
    if any(result_is_synthetic(r) for r in runs.values()):
        return "Pipeline demo on synthetic data (not CIFAR-100): ResNet-18, ViT and Swin"
    if names == {"cifar100"}:
        return "CIFAR-100: ResNet-18 vs ViT from scratch, and Swin fine-tuned vs from scratch"
    return f"Results on {', '.join(sorted(map(str, names)))}: ResNet-18, ViT and Swin"


# ----------------------------------------------------------------------------- time
def time_record_line(record: dict | None, runs: dict) -> str | None:
    """The grid's wall time from the runner's record, split into training, evaluation and
    the rest, when the record covers the runs in this report."""
    if not record or record.get("rows_s") is None:
        return None
    rows = [r for r in record.get("rows") or [] if r.get("run") in runs]
    if not rows:
        return None
    executed = [r for r in rows if r.get("wall_s") is not None]
    train = sum(r.get("train_s") or 0 for r in executed)
    ev = sum(r.get("eval_s") or 0 for r in executed)
    rest = sum(r["wall_s"] for r in executed) - train - ev
    return (f"- **Grid wall time:** {record['rows_s']:.0f} s for the {len(executed)} row(s) "
            f"executed by the last `python -m helpers.run` ({str(record.get('finished'))[:10]}): "
            f"training {train:.0f} s, evaluation {ev:.0f} s, and {rest:.0f} s of kernel or "
            "job starts, data, model building and counting; report and PDF not included "
            "(runner's record: `logs/grid_time.json`)")


OUTSIDE_LABELS = {  # a row's time outside Experiment.run(): split for notebook rows
    "kernel_s": "Kernel start and papermill (wall time minus the notebook's cells)",
    "cells_outside_run_s": "Notebook cells around the run (imports, plots)",
    "outside_run_s": "Outside the run, not split (job or process start, imports, writes)"}
PHASE_LABELS = {**OUTSIDE_LABELS,
                "data_s": "Data (load or generate, check)",
                "build_measure_s": "Model build, parameter and FLOP count",
                "setup_s": "Setup (device placement, batches, optimiser, resume)",
                "compile_warmup_s": "Compile and warm-up (first step beyond a steady one)",
                "train_s": "Training", "eval_s": "Evaluation", "checkpoint_s": "Checkpoint writes",
                "other_s": "Other (inside the run, no clock)"}


def phase_seconds(row: dict, key: str) -> float:
    """One grid-record row's seconds in one PHASE_LABELS line; a row whose outside time is
    split counts it under the split keys only."""
    split = row.get("kernel_s") is not None
    if key == "outside_run_s":
        return 0.0 if split else row["outside_run_s"]
    if key in OUTSIDE_LABELS:
        return row[key] if split else 0.0
    return row["phases"].get(key) or 0.0


def time_split_md(record: dict | None, runs: dict) -> str | None:
    """Where the grid's time went: each phase summed over the rows the last runner
    executed, from its time record and their results' phase clocks."""
    if not record:
        return None
    rows = [r for r in record.get("rows") or [] if r.get("run") in runs and r.get("phases")
            and r.get("outside_run_s") is not None]
    if not rows:
        return None
    total = sum(r["wall_s"] for r in rows)
    sums = {k: sum(phase_seconds(r, k) for r in rows) for k in PHASE_LABELS}
    devices = sorted({r.get("device") or "unknown" for r in rows})
    table = []
    for key, label in PHASE_LABELS.items():
        if key in OUTSIDE_LABELS and not any(phase_seconds(r, key) for r in rows):
            continue                       # this grid has no row of that kind
        top = max(rows, key=lambda r: phase_seconds(r, key))
        share = sums[key] / total if total else 0.0
        table.append([label, f"{sums[key]:.1f}", f"{100 * share:.1f} %", f"`{top['run']}`"])
    table.append(["**Rows in all (runner's wall clock)**", f"**{total:.1f}**", "100 %", ""])
    head = ["Phase", "Seconds", "Share", "Most in"]
    lines = [f"### Where the time went ({len(rows)} row(s), {', '.join(devices)})", "",
             # Its first column is a description that wraps, not a row label.
             pipe_table(head, table, align="lrrl",
                        dashes=pdf_dashes(head, table, labels=())), "",
              "From the runner's record (`logs/grid_time.json`): each row's wall time, split "
              "by the clocks its result file carries (`phases`); the device is synchronised "
              "at each clock. The report and PDF come after and are not included."]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- header
def _dataset_text(r: dict) -> str:
    d = r.get("dataset") or {}
    return (f"{d.get('name', 'unknown')}, {d.get('num_classes', '?')} classes, "
            f"{d.get('n_train', '?')} train / {d.get('n_test', '?')} test images")


def _provenance_lines(runs: dict, rows: dict) -> list[str]:
    """Dataset, budget, seeds, devices, dates, commits and run counts, one line each."""
    prov = {n: r.get("provenance") or {} for n, r in runs.items()}
    # Problem 3's runs vary their data and epochs on purpose; its section tables them.
    claims = sum(1 for r in rows.values() if r.get("problem") == 3)
    rows = {n: r for n, r in rows.items() if r.get("problem") != 3} or rows
    # Dataset sizes and the device are measured by runs that trained; a run skipped or
    # failed before training has none, so it would only add "unknown" to these lines.
    trained = {n: r for n, r in rows.items() if r["status"] == "complete"} or rows
    dates = sorted({str(p.get(k))[:10] for p in prov.values() for k in ("started", "finished")
                    if p.get(k)})
    commits = {n: (p["git_commit"][:10] + (" (dirty)" if p.get("git_dirty") else ""))
               if p.get("git_commit") else None for n, p in prov.items()}
    grid_names = [e["run_name"] for e in grid.grid()]
    counts = {s: sum(1 for n in grid_names if n in rows and rows[n]["status"] == s)
              for s in STATUSES}
    missing = sum(1 for n in grid_names if n not in rows)
    extra = len(set(rows) - set(grid_names) - {n for n, r in rows.items()
                                               if r.get("problem") == 3})
    seeds = {n: r.get("n_seeds") for n, r in trained.items() if r["status"] == "complete"}
    return [
        f"- **Dataset:** {_agree({n: _dataset_text(r) for n, r in trained.items()})}",
        f"- **Budget (epochs per run):** "
        f"{_agree({n: (r.get('config') or {}).get('epochs') for n, r in rows.items()})}",
        f"- **Seeds per row:** {_agree(seeds) if seeds else 'none complete'}.",
        f"- **Noise rule** (every comparison in this report, Problems 1-3): {RULE}.",
        f"- **Device(s):** {_agree({n: run_devices(trained[n]) for n in trained})}",
        f"- **Date(s):** {', '.join(dates) or 'unknown'}",
        f"- **Git commit(s):** {_agree(commits)}",
        f"- **Recipe(s):** {_agree({n: migrate(r)['recipe'] for n, r in runs.items()})} "
        "(`recipe`: the training code's id, results.recipe_id)",
        f"- **Runs:** {len(grid_names)} in the grid: {counts['complete']} complete, "
        f"{counts['failed']} failed, {counts['skipped']} skipped, {missing} missing"
        + (f"; {extra} extra run(s) outside the grid" if extra else "")
        + (f"; {claims} Problem 3 row(s), in their own section" if claims else ""),
    ]


def _demo_settings_line() -> str:
    """What the real runs are, for a reader of a synthetic-data report."""
    real_train, real_test = CIFAR100_SIZES
    return (f"- **Demo settings:** the real runs train on CIFAR-100 ({CIFAR100_CLASSES} classes, "
            f"{real_train:,} train / {real_test:,} test images) for {grid.EPOCHS[1]} epochs "
            f"(Problem 1) and {grid.EPOCHS[2]} (Problem 2), Swin at "
            f"{native_img_size('swin_tiny')} px. Each demo "
            "row's own setting is in the note under its table, \"Demo setting\": synthetic "
            "classes, train/test images (img), and epochs (ep) and input size (px) where they "
            "differ from the real run")


def header_md(runs: dict, flags: list[Flag] | None = None, record: dict | None = None) -> str:
    """Banner (synthetic data), title, and where the numbers came from; `record` is the
    runner's time record of the grid (helpers/records.py), if there is one."""
    lines = []
    synthetic = [n for n, r in runs.items() if result_is_synthetic(r)]
    if synthetic:
        lines.append(DEMO_BANNER if len(synthetic) == len(runs) else
                     DEMO_BANNER + f" (runs on synthetic data: `{'`, `'.join(synthetic)}`)")
        lines.append("")
    lines += [f"# {report_title(runs)}", ""]
    rows = seed_rows(runs)                 # one per grid row, its seeds combined
    lines += _provenance_lines(runs, rows)
    timing = time_record_line(record, runs)
    if timing:
        lines.append(timing)
    if synthetic:
        lines.append(_demo_settings_line())
    weights = [n for n, r in rows.items() if r["status"] == "skipped"
               and str(r.get("reason") or "").startswith("WeightsUnavailableError")]
    if weights:
        lines.append(
            f"- **Fine-tune rows skipped ({len(weights)}):** no ImageNet weights on this "
            "machine. To fill them, run again with a network (the timm hub), or with local "
            "files: `--weights-tiny FILE --weights-small FILE`")
    if flags is not None:
        lines.append(f"- **Plausibility flags raised:** {len(flags)} (listed at the end)")
    return "\n".join(lines)
