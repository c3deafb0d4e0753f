"""The report: result files loaded and checked, tables, header, and report.md.

Nothing here trains or measures. Every number in report.md is read from a
`<results_dir>/<run_name>.json` file. Rows come from `helpers.grid`, so a run that never
finished is a marked row, not a gap. The plausibility checks and the written analysis
live in helpers.analysis; their public names are re-exported here.

    python -m helpers.report results --out report.md --figures figures
"""
from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass, field

import pandas as pd

from . import grid
from .atomic import write_text
from .results import STATUSES
from .analysis import (  # noqa: F401  (re-exported: helpers.report is the public entry point)
    CEILINGS, CHANCE_MARGIN, DASH, MODE_LABELS, MODE_PROSE, SWIN_SCRATCH_EPOCHS, Flag, _fixed,
    analysis_problem1, analysis_problem2, ceiling, flags_md, is_synthetic, plausibility_flags,
    md_escape, table_rows)

REQUIRED_KEYS = ("run_name", "problem", "status")
TABLE1_COLUMNS = ["Model", "# Params (M)", "MACs (thop, M)", "FLOPs exact (M)",
                  "Train time/epoch (s)", "Test accuracy (%)"]
TABLE2_COLUMNS = ["Model", "Training mode", "Trainable params (M)", "Avg epoch time (s)",
                  "Test accuracy (%)"]
TEXT_COLUMNS = ("Model", "Training mode")
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


def table1(runs: dict) -> pd.DataFrame:
    """Problem 1 as display strings, indexed by run name, columns TABLE1_COLUMNS."""
    rows, names = [], []
    for name, label, _, r in table_rows(runs, 1):
        r_, status = r or {}, status_text(r)
        names.append(name)
        rows.append([label, _millions(r_.get("params"), 2), _millions(r_.get("macs_thop"), 1),
                     _millions(r_.get("flops"), 1),
                     DASH if status else _fixed(r_.get("epoch_time_s")),
                     status or _fixed(r_["test_acc"])])
    return pd.DataFrame(rows, columns=TABLE1_COLUMNS, index=pd.Index(names, name="run"))


def table2(runs: dict) -> pd.DataFrame:
    """Problem 2 as display strings, indexed by run name, columns TABLE2_COLUMNS."""
    rows, names = [], []
    for name, label, mode, r in table_rows(runs, 2):
        r_, status = r or {}, status_text(r)
        names.append(name)
        rows.append([label, MODE_LABELS.get(mode, mode),
                     _millions(r_.get("trainable_params"), 2),
                     DASH if status else _fixed(r_.get("epoch_time_s")),
                     status or _fixed(r_["test_acc"])])
    return pd.DataFrame(rows, columns=TABLE2_COLUMNS, index=pd.Index(names, name="run"))


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
        if h in TEXT_COLUMNS:
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
    for name, _, _, r in table_rows(runs, problem):
        if r and r["status"] == "complete" and r.get("epoch_time_note"):
            notes.setdefault(r["epoch_time_note"], []).append(name)
    text = ("*Time* is the mean wall-clock training time per epoch, in seconds. "
            "How each run averaged it, as recorded in its result file: ")
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


def header_md(runs: dict, flags: list[Flag] | None = None) -> str:
    """Banner (synthetic data), title, and where the numbers came from."""
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
    # Dataset sizes and the device are measured by runs that trained; a run skipped or
    # failed before training has none, so it would only add "unknown" to these lines.
    trained = {n: r for n, r in runs.items() if r["status"] == "complete"} or runs
    dates = sorted({str(p.get(k))[:10] for p in prov.values() for k in ("started", "finished")
                    if p.get(k)})
    commits = {n: (p["git_commit"][:10] + (" (dirty)" if p.get("git_dirty") else ""))
               if p.get("git_commit") else None for n, p in prov.items()}
    grid_names = [e["run_name"] for e in grid.grid()]
    counts = {s: sum(1 for n in grid_names if n in runs and runs[n]["status"] == s)
              for s in STATUSES}
    missing = sum(1 for n in grid_names if n not in runs)
    extra = len(set(runs) - set(grid_names))
    lines += [
        f"- **Dataset:** {_agree({n: ds(r) for n, r in trained.items()})}",
        f"- **Budget (epochs per run):** "
        f"{_agree({n: (r.get('config') or {}).get('epochs') for n, r in runs.items()})}",
        f"- **Device(s):** {_agree({n: run_devices(trained[n]) for n in trained})}",
        f"- **Date(s):** {', '.join(dates) or 'unknown'}",
        f"- **Git commit(s):** {_agree(commits)}",
        f"- **Runs:** {len(grid_names)} in the grid: {counts['complete']} complete, "
        f"{counts['failed']} failed, {counts['skipped']} skipped, {missing} missing"
        + (f"; {extra} extra run(s) outside the grid" if extra else ""),
    ]
    if flags is not None:
        lines.append(f"- **Plausibility flags raised:** {len(flags)} (listed at the end)")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- report
class Table:
    """A table that shows as a DataFrame (HTML) in Jupyter and as a pipe table in
    markdown, which nbconvert's LaTeX exporter turns into a real table in the PDF."""

    def __init__(self, df: pd.DataFrame):
        self.df = df

    def _repr_html_(self):
        return self.df.to_html()

    def _repr_markdown_(self):
        return to_markdown(self.df)

    def __repr__(self):
        return self.df.to_string()


@dataclass
class Report:
    results_dir: str
    runs: dict
    flags: list[Flag]
    figures: dict[str, str] = field(default_factory=dict)   # name -> PNG path

    @property
    def title(self) -> str:
        return report_title(self.runs)

    def sections(self, base_dir: str = ".") -> dict[str, str]:
        """The report's markdown, by section; figure links are relative to base_dir."""
        figs = "\n\n".join(f"![{FIGURE_CAPTIONS.get(k, k)}]({os.path.relpath(p, base_dir)})"
                           for k, p in self.figures.items()) or "*Figures not rendered.*"
        return {
            "header": header_md(self.runs, self.flags),
            "table1": "## Problem 1: ResNet-18 vs ViT (from scratch)\n\n"
                      + to_markdown(table1(self.runs)) + "\n\n" + time_note(self.runs, 1)
                      + " MACs are counted by thop (conv/linear layers); exact FLOPs by "
                        "PyTorch's FLOP counter (2 per multiply-add); both for one image.",
            "table2": "## Problem 2: Swin-Tiny and Swin-Small\n\n" + to_markdown(table2(self.runs))
                      + "\n\n" + time_note(self.runs, 2),
            "figures": "## Figures\n\n" + figs,
            "analysis": "## Analysis\n\n" + analysis_problem1(self.runs) + "\n\n"
                        + analysis_problem2(self.runs, self.flags),
            "flags": "## Plausibility checks\n\n" + flags_md(self.flags, self.runs),
        }

    def markdown(self, base_dir: str = ".") -> str:
        return "\n\n".join(self.sections(base_dir).values()) + "\n"

    def show(self, part: str) -> None:
        """Display one part in a notebook: header, tables, figures, analysis or flags."""
        from IPython.display import Image, Markdown, display
        s = self.sections()
        if part == "tables":
            for p, df in ((1, table1(self.runs)), (2, table2(self.runs))):
                text = s[f"table{p}"]
                display(Markdown(text.split("\n\n")[0]), Table(df),
                        Markdown(text.split("\n\n", 2)[2]))
        elif part == "figures":
            display(Markdown("## Figures"))
            for k, p in self.figures.items():
                display(Markdown(f"**{FIGURE_CAPTIONS.get(k, k)}**"), Image(filename=p))
        elif part in s:
            display(Markdown(s[part]))
        else:
            raise ValueError(f"part={part!r}; valid parts: header, tables, figures, "
                             "analysis, flags")


FIGURE_CAPTIONS = {
    "curves": "Test accuracy and test loss per epoch, every run",
    "p1_acc_vs_params": "Problem 1: test accuracy vs parameters (log scale)",
    "p1_acc_vs_flops": "Problem 1: test accuracy vs exact FLOPs per image (log scale)",
    "p2_time_vs_acc": "Problem 2: test accuracy vs training time per epoch",
}


def build_report(results_dir: str, figures_dir: str | None = "figures") -> Report:
    """Load results, run the checks and (unless figures_dir is None) draw the figures."""
    runs = load_runs(results_dir)
    figures = {}
    if figures_dir is not None:
        from .figures import make_figures
        figures = make_figures(runs, figures_dir)
    return Report(results_dir, runs, plausibility_flags(runs), figures)


def write_report(results_dir: str, out_md: str = "report.md",
                 figures_dir: str | None = "figures") -> Report:
    """Write report.md (atomically: a reader never sees half a report); returns the Report."""
    rep = build_report(results_dir, figures_dir)
    out_dir = os.path.dirname(os.path.abspath(out_md))
    write_text(out_md, rep.markdown(out_dir))
    return rep


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="Render report.md and figures from result JSONs.")
    ap.add_argument("results_dir", nargs="?", default="results/cifar100")
    ap.add_argument("--out", default="report.md")
    ap.add_argument("--figures", default="figures")
    args = ap.parse_args(argv)
    try:
        rep = write_report(args.results_dir, args.out, args.figures)
    except (FileNotFoundError, ValueError) as err:     # no folder, or a malformed result file
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({len(rep.runs)} result files, {len(rep.flags)} flag(s)) "
          f"and {len(rep.figures)} figures in {args.figures}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
