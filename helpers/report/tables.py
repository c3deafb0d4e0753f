"""The report's tables and header, from the result files.

Nothing here trains or measures. Every number is read from a
`<results_dir>/<run_name>.json` file. Rows come from `helpers.grid`, so a run that never
finished is a marked row, not a gap.
"""
from __future__ import annotations

import json
import os
import re

import pandas as pd

from .. import grid
from ..config import CIFAR100_SIZES, NATIVE_IMG_SIZE, synthetic_classes
from ..results import STATUSES
from .analysis import DASH, MODE_LABELS, fmt_fixed, is_synthetic, md_escape, table_rows
from .flags import Flag
from .seeds import TEST_NAME, seed_rows

REQUIRED_KEYS = ("run_name", "problem", "status")
TABLE1_COLUMNS = ["Model", "# Params (M)", "MACs (thop, M)", "FLOPs exact (M)",
                  "Train time/epoch (s)", "Test accuracy (%)", "Seeds"]
TABLE2_COLUMNS = ["Model", "Training mode", "Trainable params (M)", "Avg epoch time (s)",
                  "Test accuracy (%)", "Seeds"]
DEMO_COLUMN = "Demo setting"
TEXT_COLUMNS = ("Model", "Training mode", "Seeds", DEMO_COLUMN)
MISSING = "missing — not run"
DEMO_BANNER = "> **DEMO on synthetic data — these are not CIFAR-100 results.**"


# ----------------------------------------------------------------------------- loading
def load_runs(results_dir: str) -> dict[str, dict]:
    """run_name -> result dict for every `*.json` directly in `results_dir`.

    Read here rather than through helpers.results.load_results: the report needs the
    nested dicts (config, dataset, provenance, history) as they are, and checks each file.
    Hidden files (the `.tmp-*.json` of an unfinished atomic write) are skipped.
    """
    if not os.path.isdir(results_dir):
        raise FileNotFoundError(f"results_dir={results_dir!r} is not a folder; run the "
                                "experiments first or point results_dir at the folder "
                                "holding the <run_name>.json files")
    runs: dict[str, dict] = {}
    for name in sorted(os.listdir(results_dir)):
        path = os.path.join(results_dir, name)
        if not name.endswith(".json") or name.startswith(".") or not os.path.isfile(path):
            continue
        try:
            with open(path) as f:
                r = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
        missing = [k for k in REQUIRED_KEYS if k not in r]
        if missing:
            raise ValueError(f"{path}: missing key(s) {missing}; "
                             f"every result needs {REQUIRED_KEYS}")
        if r["status"] not in STATUSES:
            raise ValueError(f"{path}: status={r['status']!r}; valid statuses: {STATUSES}")
        if r["problem"] not in (1, 2):
            raise ValueError(f"{path}: problem={r['problem']!r}; valid problems: 1, 2")
        if r["status"] == "complete" and r.get("test_acc") is None:
            raise ValueError(f"{path}: status is 'complete' but test_acc is missing")
        if r["run_name"] in runs:
            raise ValueError(f"{path}: run_name {r['run_name']!r} also appears in another file")
        runs[r["run_name"]] = r
    return runs


# ----------------------------------------------------------------------------- tables
def _millions(x, digits: int) -> str:
    return DASH if x is None else f"{x / 1e6:.{digits}f}"


def status_text(r: dict | None) -> str | None:
    """What a non-complete row shows instead of its accuracy; None for complete runs."""
    if r is None:
        return MISSING
    if r["status"] == "complete":
        return None
    # The table cell stays short (it must fit a PDF column); the full reason is listed
    # under the plausibility checks, flag (d).
    reason = " ".join(str(r.get("reason") or "no reason recorded").split())
    error = re.match(r"(\w+(Error|Exception))\b", reason)
    if error:
        short = error.group(1)
    elif len(reason) > 60:
        short = reason[:60].rsplit(" ", 1)[0] + " …"
    else:
        short = reason
    return f"{r['status']}: {short} (see checks)"


def _spread(r: dict, key: str) -> str:
    """'41.00' for one seed, '41.00 ± 1.00' (mean ± sample sd) for two or more."""
    sd = r.get(f"{key}_sd")
    return fmt_fixed(r.get(key)) + ("" if sd is None else f" ± {sd:.2f}")


def _seeds(r: dict, status: str | None) -> str:
    """'1 seed', '3 seeds', or '2 of 3 seeds' when some of the row's seed runs did not
    complete or were left out (flags (d) and (e) say which)."""
    if status:
        return DASH
    n, files = r.get("n_seeds", 1), r.get("n_seed_files", 1)
    return (f"{n} of {files} seeds" if files > n else f"{n} seed" + ("s" if n != 1 else ""))


def demo_setting(r: dict) -> str | None:
    """How a synthetic-data (demo) run is set up where it differs from the real CIFAR-100
    run of its row, compactly (the header gives the real values): classes, train/test
    images, and epochs and input size where they differ. None for a run on real data."""
    if not r or not is_synthetic(r):
        return None
    d, cfg = r.get("dataset") or {}, r.get("config") or {}
    try:                            # a run that never loaded its data: its config says
        classes = d.get("num_classes") or synthetic_classes(cfg.get("dataset") or "")
    except ValueError:
        classes = None
    parts = [f"{classes or '?'} classes"]
    n_train, n_test = d.get("n_train", cfg.get("train_subset")), d.get("n_test",
                                                                      cfg.get("test_subset"))
    if n_train is not None:
        parts.append(f"{n_train}/{n_test or '?'} img")
    if cfg.get("epochs") is not None and cfg["epochs"] != grid.EPOCHS.get(r.get("problem")):
        parts.append(f"{cfg['epochs']} ep")
    native = NATIVE_IMG_SIZE.get(r.get("model"))
    if cfg.get("img_size") is not None and native and cfg["img_size"] != native:
        parts.append(f"{cfg['img_size']} px")
    return ", ".join(parts)


def _table(runs: dict, problem: int, columns: list[str], row_cells) -> pd.DataFrame:
    """One table as display strings, one row per grid row (its seeds combined), indexed by
    run name: the label, the problem's own cells (`row_cells(mode, result)`), then time per
    epoch, test accuracy and seeds, shared by both tables. Where runs are on synthetic
    data, a last column says how each differs from the real run (demo_setting)."""
    rows, names, demo = [], [], []
    for name, label, mode, r in table_rows(seed_rows(runs), problem):
        r_, status = r or {}, status_text(r)
        names.append(name)
        demo.append(demo_setting(r_))
        rows.append([label, *row_cells(mode, r_),
                     DASH if status else _spread(r_, "epoch_time_s"),
                     status or _spread(r_, "test_acc"), _seeds(r_, status)])
    df = pd.DataFrame(rows, columns=columns, index=pd.Index(names, name="run"))
    if any(demo):
        df[DEMO_COLUMN] = [x or DASH for x in demo]
    return df


def table1(runs: dict) -> pd.DataFrame:
    """Problem 1, columns TABLE1_COLUMNS: sizes and FLOPs of each model."""
    return _table(runs, 1, TABLE1_COLUMNS, lambda mode, r: [
        _millions(r.get("params"), 2), _millions(r.get("macs_thop"), 1),
        _millions(r.get("flops"), 1)])


def table2(runs: dict) -> pd.DataFrame:
    """Problem 2, columns TABLE2_COLUMNS: training mode and what it trains."""
    return _table(runs, 2, TABLE2_COLUMNS, lambda mode, r: [
        MODE_LABELS.get(mode, mode), _millions(r.get("trainable_params"), 2)])


def to_markdown(df: pd.DataFrame) -> str:
    """A pipe table (the index is not shown). Dash counts follow the column widths, which
    pandoc uses as relative widths when the table is wider than a page (the PDF)."""
    def cell(v):
        # Backslash-escape markdown syntax: a reason like "pass weights=<file>" would
        # otherwise be read as an HTML tag (and vanish from the PDF), a "|" as a column break.
        return md_escape(" ".join(str(v).split()))
    head = [cell(c) for c in df.columns]
    body = [[cell(v) for v in row] for row in df.itertuples(index=False)]
    # Text columns left-aligned, number columns right-aligned. Pandoc sizes the PDF's
    # columns by dash count: a number column's header may wrap (its longest word counts),
    # and clamping keeps a long failure reason from squeezing the other columns.
    dashes = []
    for i, h in enumerate(head):
        cells = [len(row[i]) for row in body]
        if h == DEMO_COLUMN:                 # a note: it wraps rather than squeeze numbers
            dashes.append(min(max([len(h)] + cells), 18))
        elif h in TEXT_COLUMNS:
            dashes.append(min(max([len(h), 16] + cells), 30))
        else:
            dashes.append(min(max([len(w) for w in h.split()] + [10] + cells), 20))
    pads = [max(d, len(h)) for h, d in zip(head, dashes)]    # spaces after dashes don't count
    rule = [("-" * d if h in TEXT_COLUMNS else "-" * (d - 1) + ":").ljust(p)
            for h, d, p in zip(head, dashes, pads)]

    def line(row):
        return "| " + " | ".join(c.ljust(p) if h in TEXT_COLUMNS else c.rjust(p)
                                 for c, h, p in zip(row, head, pads)) + " |"
    return "\n".join([line(head), "| " + " | ".join(rule) + " |"] + [line(r) for r in body])


def time_note(runs: dict, problem: int) -> str:
    """How 'time per epoch' is defined, as recorded by the runs themselves."""
    notes: dict[str, list[str]] = {}
    rows = table_rows(seed_rows(runs), problem)
    for name, _, _, r in rows:
        if r and r["status"] == "complete" and r.get("epoch_time_note"):
            notes.setdefault(r["epoch_time_note"], []).append(name)
    spread = any(r and r.get("n_seeds", 1) >= 2 for *_, r in rows)
    text = ("*Time* is the mean wall-clock training time per epoch, in seconds. "
            + ("With 2 or more seeds, a cell is the mean ± the sample standard deviation "
               "over the seeds (n in the Seeds column). " if spread else "")
            + "How each run averaged it, as recorded in its result file: ")
    if not notes:
        return text + "no complete run recorded a note."
    if len(notes) == 1:
        return text + f"{next(iter(notes))}."
    return text + "; ".join(f"{n} (`{'`, `'.join(names)}`)" for n, names in notes.items()) + "."


# ----------------------------------------------------------------------------- header
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
    if any(is_synthetic(r) for r in runs.values()):
        return "Pipeline demo on synthetic data (not CIFAR-100): ResNet-18, ViT and Swin"
    if names == {"cifar100"}:
        return "CIFAR-100: ResNet-18 vs ViT from scratch, and Swin fine-tuned vs from scratch"
    return f"Results on {', '.join(sorted(map(str, names)))}: ResNet-18, ViT and Swin"


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
    warm = sum(1 for r in rows if r.get("warm_kernel"))
    lines = [f"### Where the time went ({len(rows)} row(s), {', '.join(devices)})", "",
             "| Phase | Seconds | Share | Most in |", "|---|---|---|---|"]
    for key, label in PHASE_LABELS.items():
        if key in OUTSIDE_LABELS and not any(phase_seconds(r, key) for r in rows):
            continue                       # this grid has no row of that kind
        top = max(rows, key=lambda r: phase_seconds(r, key))
        share = sums[key] / total if total else 0.0
        lines.append(f"| {label} | {sums[key]:.1f} | {100 * share:.1f} % | `{top['run']}` |")
    lines += [f"| **Rows in all (runner's wall clock)** | **{total:.1f}** | 100 % | |", "",
              "From the runner's record (`logs/grid_time.json`): each row's wall time, split "
              "by the clocks its result file carries (`phases`); the device is synchronised "
              "at each clock. The report and PDF come after and are not included."
              + (f" {warm} of the {len(rows)} rows ran on a kernel started while the row "
                 "before them ran (`--warm-kernels`); their kernel line is the wait left."
                 if warm else "")]
    return "\n".join(lines)


def header_md(runs: dict, flags: list[Flag] | None = None, record: dict | None = None) -> str:
    """Banner (synthetic data), title, and where the numbers came from; `record` is the
    runner's time record of the grid (runner/record.py), if there is one."""
    lines = []
    synthetic = [n for n, r in runs.items() if is_synthetic(r)]
    if synthetic:
        lines.append(DEMO_BANNER if len(synthetic) == len(runs) else
                     DEMO_BANNER + f" (runs on synthetic data: `{'`, `'.join(synthetic)}`)")
        lines.append("")
    lines += [f"# {report_title(runs)}", ""]

    def ds(r):
        d = r.get("dataset") or {}
        return (f"{d.get('name', 'unknown')}, {d.get('num_classes', '?')} classes, "
                f"{d.get('n_train', '?')} train / {d.get('n_test', '?')} test images")

    prov = {n: r.get("provenance") or {} for n, r in runs.items()}
    rows = seed_rows(runs)                 # one per grid row, its seeds combined
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
    extra = len(set(rows) - set(grid_names))
    seeds = {n: r.get("n_seeds") for n, r in trained.items() if r["status"] == "complete"}
    lines += [
        f"- **Dataset:** {_agree({n: ds(r) for n, r in trained.items()})}",
        f"- **Budget (epochs per run):** "
        f"{_agree({n: (r.get('config') or {}).get('epochs') for n, r in rows.items()})}",
        f"- **Seeds per row:** {_agree(seeds) if seeds else 'none complete'}; a difference "
        f"is called real only when {TEST_NAME} on the per-seed accuracies supports it (2 or "
        "more seeds on both sides); with a single seed, a gap within two standard errors of "
        "the test set's sampling is called noise, and a larger gap is called beyond that "
        "noise but marked \"single seed, so not tested across seeds\"",
        f"- **Device(s):** {_agree({n: run_devices(trained[n]) for n in trained})}",
        f"- **Date(s):** {', '.join(dates) or 'unknown'}",
        f"- **Git commit(s):** {_agree(commits)}",
        f"- **Runs:** {len(grid_names)} in the grid: {counts['complete']} complete, "
        f"{counts['failed']} failed, {counts['skipped']} skipped, {missing} missing"
        + (f"; {extra} extra run(s) outside the grid" if extra else ""),
    ]
    timing = time_record_line(record, runs)
    if timing:
        lines.append(timing)
    if synthetic:
        real_train, real_test = CIFAR100_SIZES
        swin = NATIVE_IMG_SIZE["swin_tiny"]
        lines.append(
            f"- **Demo settings:** the real runs train on CIFAR-100 (100 classes, "
            f"{real_train:,} train / {real_test:,} test images) for {grid.EPOCHS[1]} epochs "
            f"(Problem 1) and {grid.EPOCHS[2]} (Problem 2), Swin at {swin} px. Each demo "
            "row's own setting is in the tables' last column, \"Demo setting\": synthetic "
            "classes, train/test images (img), and epochs (ep) and input size (px) where they "
            "differ from the real run")
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
