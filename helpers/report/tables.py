"""The report's rows and tables, read from the result files, and the markdown every part
of the report is written with.

Nothing here trains or measures. Every number is read from a
`<results_dir>/<run_name>.json` file. Rows come from `helpers.grid`, so a run that never
finished is a marked row, not a gap. A row is a grid row with its seeds combined
(seeds.py): `table_rows` lists a problem's rows in table order, and `done_rows` its
complete ones, which every comparison (the analysis, claim 6, the figures) is drawn from.
"""
from __future__ import annotations

import json
import os
import re

import pandas as pd

from .. import grid
from ..config import MODE_WORDS
from ..results import ResultVersionError, read_result, record_problems
from ..textable import pdf_dashes, pipe_table
from .seeds import seed_rows
from .stats import DASH, fmt_mean_sd

MODE_LABELS = {mode: table for mode, (table, _, _) in MODE_WORDS.items()}
MODE_PROSE = {mode: prose for mode, (_, prose, _) in MODE_WORDS.items()}
# How the report, and the PDF's title, say that its numbers are not CIFAR-100 results.
DEMO_TITLE = "DEMO on synthetic data — these are not CIFAR-100 results"
GAP_COLUMN = "Train − test gap (points)"
TABLE1_COLUMNS = ["Model", "# Params (M)", "MACs (thop, M)", "FLOPs exact (M)",
                  "Train time/epoch (s)", "Test accuracy (%)", GAP_COLUMN, "Seeds"]
TABLE2_COLUMNS = ["Model", "Training mode", "Trainable params (M)", "Avg epoch time (s)",
                  "Test accuracy (%)", GAP_COLUMN, "Seeds"]
TEXT_COLUMNS = ("Model", "Training mode", "Seeds")
MISSING = "missing — not run"
GAP_NOTE = (" The *train − test gap* is the accuracy on a fixed sample of training images, "
            "scored without augmentation as the test set is, minus the test accuracy: large "
            "when a model fits its training images far better than new ones.")


# ----------------------------------------------------------------------------- loading
def result_files(folder: str) -> list[str]:
    """The result JSONs directly in `folder` (none when it is not a folder); hidden files
    (the `.tmp-*.json` of an unfinished atomic write) are not results."""
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if n.endswith(".json")
                  and not n.startswith(".") and os.path.isfile(os.path.join(folder, n)))


def load_runs(results_dir: str) -> dict[str, dict]:
    """run_name -> result dict (results.read_result: migrated to the current schema) for
    every `*.json` directly in `results_dir`, each checked before the report reads it."""
    if not os.path.isdir(results_dir):
        raise FileNotFoundError(f"results_dir={results_dir!r} is not a folder; run the "
                                "experiments first or point results_dir at the folder "
                                "holding the <run_name>.json files")
    runs: dict[str, dict] = {}
    for name in result_files(results_dir):
        path = os.path.join(results_dir, name)
        try:
            r = read_result(path)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from err
        except ResultVersionError as err:          # written by newer code; names the file
            raise ValueError(str(err)) from err
        problems = record_problems(r)
        if problems:
            raise ValueError(f"{path}: not a result record (helpers.results.ResultRecord): "
                             + "; ".join(problems))
        if r["problem"] not in (1, 2, 3):
            raise ValueError(f"{path}: problem={r['problem']!r}; valid problems: 1, 2, 3")
        if r["status"] == "complete" and r.get("test_acc") is None:
            raise ValueError(f"{path}: status is 'complete' but test_acc is missing")
        if r["run_name"] in runs:
            raise ValueError(f"{path}: run_name {r['run_name']!r} also appears in another file")
        runs[r["run_name"]] = r
    return runs


# ----------------------------------------------------------------------------- rows
def result_is_synthetic(r: dict) -> bool:
    """True when a result's dataset is synthetic (the demo)."""
    ds = r.get("dataset") or {}
    return bool(ds.get("synthetic")) or ds.get("name") == "synthetic"


def is_demo(runs: dict) -> bool:
    """Whether a report is a demo: any of its results is on synthetic data. Its title,
    banner, PDF title and every verdict then say so."""
    return any(result_is_synthetic(r) for r in runs.values())


def table_rows(runs: dict, problem: int) -> list[tuple[str, str, str, dict | None]]:
    """(run_name, label, mode, result or None) in table order: the grid, then extra runs.

    Extra runs (in the folder, not in the grid, e.g. a ViT with patch 8) follow the grid
    rows in name order; their label gets the run name when it would repeat a grid label.
    """
    entries = grid.problem1_runs() if problem == 1 else grid.problem2_runs()
    rows = [(e["run_name"], e["label"], e.get("mode", "scratch"), runs.get(e["run_name"]))
            for e in entries]
    labels = {(label, mode) for _, label, mode, _ in rows}
    for name in sorted(set(runs) - {e["run_name"] for e in entries}):
        r = runs[name]
        if r["problem"] != problem:
            continue
        label = r.get("label") or name
        mode = (r.get("config") or {}).get("mode", "scratch")
        if (label, mode) in labels:
            label = f"{label} [{name}]"
        rows.append((name, label, mode, r))
    return rows


def done_rows(runs: dict, problem: int, grid_only: bool = False) -> list:
    """The complete rows of a problem's table (table_rows), each with its seeds combined."""
    names = {e["run_name"] for e in grid.grid()}
    return [row for row in table_rows(seed_rows(runs), problem) if row[3] and row[3]["status"]
            == "complete" and (row[0] in names or not grid_only)]


def missing_rows(runs: dict, problems=(1, 2)) -> list[dict]:
    """The grid entries of these problems with no complete run, in table order."""
    done = {row[0] for p in problems for row in done_rows(runs, p)}
    return [e for e in grid.grid(problems) if e["run_name"] not in done]


def shown_acc(r: dict) -> float:
    """Accuracy rounded as the tables show it, so every comparison matches the tables."""
    return round(float(r["test_acc"]), 2)


def epochs_of(r: dict) -> int:
    return (r.get("config") or {}).get("epochs") or len(r.get("history") or [])


# ----------------------------------------------------------------------------- markdown
def fmt_fixed(x, digits: int = 2) -> str:
    return DASH if x is None else f"{x:.{digits}f}"


def ratio(a, b) -> str:
    """'1.23×', how the report writes one quantity against another; 'n/a' without both."""
    return "n/a" if a is None or b is None or not b else f"{a / b:.2f}×"


def pct(share: float) -> str:
    """A share of the data as the report writes it: 0.1 -> '10 %'."""
    return f"{100 * share:.0f} %"


MD_SPECIALS = set("\\`*_<>|[]")


def md_escape(text: str) -> str:
    """Backslash-escape markdown syntax in free text (failure reasons): "weights=<file>"
    would otherwise read as an HTML tag and vanish from the PDF, "|" as a column break."""
    return "".join("\\" + ch if ch in MD_SPECIALS else ch for ch in text)


def md_table(head: list, rows: list[list], align: str, labels=(0,)) -> str:
    """Every table of the report: a pipe table whose dash counts are the PDF's column
    widths (textable.pdf_dashes; `labels`: the columns kept on one line). Cells are
    escaped (md_escape)."""
    def cell(v):
        return md_escape(" ".join(str(v).split()))
    head = [cell(c) for c in head]
    body = [[cell(v) for v in row] for row in rows]
    return pipe_table(head, body, align, pdf_dashes(head, body, labels=labels))


def to_markdown(df: pd.DataFrame) -> str:
    """A table of the report (the index is not shown): text columns left-aligned, numbers
    right."""
    align = "".join("l" if h in TEXT_COLUMNS else "r" for h in df.columns)
    return md_table(list(df.columns), [list(r) for r in df.itertuples(index=False)], align)


def section(heading: str, *parts: str | None) -> str:
    """A part of the report: its heading ('## ...' or '### ...'), then its parts that are
    not empty, a blank line between each."""
    return "\n\n".join([heading, *(p for p in parts if p)])


def figure_md(caption: str, path: str, base_dir: str) -> str:
    """A figure in report.md: its image, linked relative to the report's folder."""
    return f"![{caption}]({os.path.relpath(path, base_dir)})"


# ----------------------------------------------------------------------------- tables
def _millions(x, digits: int) -> str:
    return DASH if x is None else f"{x / 1e6:.{digits}f}"


# What a row that did not complete shows for its accuracy, by the error that stopped it:
# a few plain words that fit a PDF column; the full reason is under the plausibility
# checks, flag (c).
SHORT_REASONS = {"WeightsUnavailableError": "no weights", "DataUnavailableError": "no data",
                 "NonFiniteLossError": "loss not finite", "OutOfMemoryError": "out of memory",
                 "ConfigError": "bad config", "TimeoutError": "out of time",
                 "CheckpointUnusableError": "bad checkpoint",
                 "CheckpointMismatchError": "bad checkpoint"}


def status_text(r: dict | None) -> str | None:
    """What a non-complete row shows instead of its accuracy, e.g. 'skipped, no weights'
    or 'failed, see checks'; None for complete runs."""
    if r is None:
        return MISSING
    if r["status"] == "complete":
        return None
    reason = str(r.get("reason") or "")
    error = re.match(r"\s*(?:\w+\.)*(\w+(?:Error|Exception))\b", reason)
    short = SHORT_REASONS.get(error.group(1) if error else "", "see checks")
    if "out of memory" in reason.lower():
        short = "out of memory"
    return f"{r['status']}, {short}"


def _mean_sd_cell(r: dict, key: str) -> str:
    """'41.00' for one seed, '41.00 ± 1.00' (mean ± sample sd) for two or more."""
    return fmt_mean_sd(r.get(key), r.get(f"{key}_sd"))


def generalisation_gap(r: dict) -> float | None:
    """Accuracy on the run's fixed train sample minus test accuracy, in points (None when
    the run did not score a train sample)."""
    if r.get("train_eval_acc") is None or r.get("test_acc") is None:
        return None
    return r["train_eval_acc"] - r["test_acc"]


def _seeds(r: dict, status: str | None) -> str:
    """'1 seed', '3 seeds', or '2 of 3 seeds' when some of the row's seed runs did not
    complete or were left out (flags (c) and (d) say which)."""
    if status:
        return DASH
    n, files = r.get("n_seeds", 1), r.get("n_seed_files", 1)
    return (f"{n} of {files} seeds" if files > n else f"{n} seed" + ("s" if n != 1 else ""))


def _problem_table(runs: dict, problem: int, columns: list[str], row_cells) -> pd.DataFrame:
    """One table as display strings, one row per grid row (its seeds combined), indexed by
    run name: the label, the problem's own cells (`row_cells(mode, result)`), then time per
    epoch, test accuracy, the train - test gap and seeds, shared by both tables."""
    rows, names = [], []
    for name, label, mode, r in table_rows(seed_rows(runs), problem):
        r_, status = r or {}, status_text(r)
        names.append(name)
        rows.append([label, *row_cells(mode, r_),
                     DASH if status else _mean_sd_cell(r_, "epoch_time_s"),
                     status or _mean_sd_cell(r_, "test_acc"),
                     DASH if status else fmt_fixed(generalisation_gap(r_)),
                     _seeds(r_, status)])
    return pd.DataFrame(rows, columns=columns, index=pd.Index(names, name="run"))


def table1(runs: dict) -> pd.DataFrame:
    """Problem 1, columns TABLE1_COLUMNS: sizes and FLOPs of each model."""
    return _problem_table(runs, 1, TABLE1_COLUMNS, lambda mode, r: [
        _millions(r.get("params"), 2), _millions(r.get("macs_thop"), 1),
        _millions(r.get("flops"), 1)])


def table2(runs: dict) -> pd.DataFrame:
    """Problem 2, columns TABLE2_COLUMNS: training mode and what it trains."""
    return _problem_table(runs, 2, TABLE2_COLUMNS, lambda mode, r: [
        MODE_LABELS.get(mode, mode), _millions(r.get("trainable_params"), 2)])


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
        return text + "no complete run recorded a note." + GAP_NOTE
    if len(notes) == 1:
        return text + f"{next(iter(notes))}." + GAP_NOTE
    return (text + "; ".join(f"{n} (`{'`, `'.join(names)}`)" for n, names in notes.items())
            + "." + GAP_NOTE)
