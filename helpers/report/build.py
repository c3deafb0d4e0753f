"""The report as one object: its header, tables, figures, analysis, claims and flags, for
report.md and Jupyter; and where the summary finds results and writes the report. Every
value is read from the result files and the runner's time record."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from .. import grid
from ..atomic import write_text
from ..notebooks import in_notebook
from ..paths import REAL_DATASET, RESULTS, at_home, home, shown
from ..gridrun import read_time_record, report_paths
from ..results import STATUSES
from .analysis import analysis_problem1, analysis_problem2
from .claims import CLAIM_CAPTIONS, claims_md, claims_parts
from .flags import Flag, flags_md, plausibility_flags
from .seeds import seed_rows
from .stats import RULE
from .tables import (DEMO_TITLE, figure_md, is_demo, load_runs, result_files,
                     result_is_synthetic, section, table1, table2, time_note, to_markdown)

DEMO_BANNER = f"> **{DEMO_TITLE}.**"
MACS_NOTE = (" MACs are counted by thop (conv/linear layers); exact FLOPs by PyTorch's FLOP "
             "counter (2 per multiply-add); both for one image.")


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
    if r.get("devices"):
        return " + ".join(r["devices"])
    return (r.get("provenance") or {}).get("device")


def report_title(runs: dict) -> str:
    """Plain-text title; never claims CIFAR-100 unless every run used CIFAR-100."""
    names = {(r.get("dataset") or {}).get("name") for r in runs.values()}
    if not runs:
        return "HW6 report: no results yet"
    if is_demo(runs):
        return "Pipeline demo on synthetic data (not CIFAR-100): ResNet-18, ViT and Swin"
    if names == {"cifar100"}:
        return "CIFAR-100: ResNet-18 vs ViT from scratch, and Swin fine-tuned vs from scratch"
    return f"Results on {', '.join(sorted(map(str, names)))}: ResNet-18, ViT and Swin"


# ----------------------------------------------------------------------------- time
def time_record_line(time_record: dict | None, runs: dict) -> str | None:
    """The grid's wall time from the runner's time record, split into training, evaluation
    and the rest, when the record covers the runs in this report."""
    if not time_record or time_record.get("rows_s") is None:
        return None
    rows = [r for r in time_record.get("rows") or [] if r.get("run") in runs]
    if not rows:
        return None
    executed = [r for r in rows if r.get("wall_s") is not None]
    train = sum(r.get("train_s") or 0 for r in executed)
    ev = sum(r.get("eval_s") or 0 for r in executed)
    rest = sum(r["wall_s"] for r in executed) - train - ev
    return (f"- **Grid wall time:** {time_record['rows_s']:.0f} s for the {len(executed)} row(s) "
            f"executed by the last `python -m helpers.run` "
            f"({str(time_record.get('finished'))[:10]}): "
            f"training {train:.0f} s and evaluation {ev:.0f} s (warm-up and any compilation "
            f"included), and {rest:.0f} s of kernel or job starts, data, model building and "
            "counting; report and PDF not included "
            "(runner's record: `logs/grid_time.json`)")


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
        f"- **Recipe(s):** {_agree({n: r['recipe'] for n, r in runs.items()})} "
        "(`recipe`: the training code's id, results.recipe_id)",
        f"- **Runs:** {len(grid_names)} in the grid: {counts['complete']} complete, "
        f"{counts['failed']} failed, {counts['skipped']} skipped, {missing} missing"
        + (f"; {extra} extra run(s) outside the grid" if extra else "")
        + (f"; {claims} Problem 3 row(s), in their own section" if claims else ""),
    ]


def header_md(runs: dict, flags: list[Flag] | None = None,
              time_record: dict | None = None) -> str:
    """Banner (synthetic data), title, and where the numbers came from; `time_record` is
    the runner's time record of the grid (helpers/gridrun.py), if there is one."""
    lines = []
    synthetic = [n for n, r in runs.items() if result_is_synthetic(r)]
    if synthetic:
        lines.append(DEMO_BANNER if len(synthetic) == len(runs) else
                     DEMO_BANNER + f" (runs on synthetic data: `{'`, `'.join(synthetic)}`)")
        lines.append("")
    lines += [f"# {report_title(runs)}", ""]
    rows = seed_rows(runs)                 # one per grid row, its seeds combined
    lines += _provenance_lines(runs, rows)
    timing = time_record_line(time_record, runs)
    if timing:
        lines.append(timing)
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


# ----------------------------------------------------------------------------- report
@dataclass
class Report:
    results_dir: str
    runs: dict
    flags: list[Flag]
    figures: dict[str, str] = field(default_factory=dict)   # name -> PNG path
    claims_figures: dict[str, str] = field(default_factory=dict)   # Problem 3's

    def captions(self) -> dict[str, str]:
        if not self.figures:
            return {}
        from .figures import figure_captions   # matplotlib: only once figures were drawn
        return figure_captions(self.runs, self.figures)

    def sections(self, base_dir: str = ".") -> dict[str, str]:
        """The report's markdown, by section; figure links are relative to base_dir."""
        captions = self.captions()
        figs = "\n\n".join(figure_md(captions[k], p, base_dir)
                           for k, p in self.figures.items()) or "*Figures not rendered.*"
        return {
            "header": header_md(self.runs, self.flags, read_time_record(self.results_dir)),
            "table1": section("## Problem 1: ResNet-18 vs ViT (from scratch)",
                              to_markdown(table1(self.runs)), time_note(self.runs, 1) + MACS_NOTE),
            "table2": section("## Problem 2: Swin-Tiny and Swin-Small",
                              to_markdown(table2(self.runs)), time_note(self.runs, 2)),
            "figures": section("## Figures", figs),
            "analysis": section("## Analysis", analysis_problem1(self.runs),
                                analysis_problem2(self.runs)),
            "claims": claims_md(self.runs, self.claims_figures, base_dir),
            "flags": section("## Plausibility checks", flags_md(self.flags, self.runs)),
        }

    def markdown(self, base_dir: str = ".") -> str:
        return "\n\n".join(v for v in self.sections(base_dir).values() if v) + "\n"

    def show(self, part: str) -> None:
        """Display one part in a notebook: header, tables, figures, analysis or flags."""
        from IPython.display import Image, Markdown, display
        s = self.sections()
        if part == "tables":                           # pipe tables: real tables in the PDF
            display(Markdown(s["table1"]), Markdown(s["table2"]))
        elif part == "figures":
            display(Markdown("## Figures"))
            captions = self.captions()
            for k, p in self.figures.items():
                display(Markdown(f"**{captions[k]}**"), Image(filename=p))
        elif part == "claims":                         # figures inline, from their files
            for text, name in claims_parts(self.runs, self.claims_figures):
                display(Markdown(text))              # each figure beside its claim
                if name:
                    display(Markdown(f"**{CLAIM_CAPTIONS[name]}**"),
                            Image(filename=self.claims_figures[name]))
        elif part in s:
            display(Markdown(s[part]))
        else:
            raise ValueError(f"part={part!r}; valid parts: header, tables, figures, "
                             "analysis, claims, flags")


def build_report(results_dir: str, figures_dir: str | None = "figures") -> Report:
    """Load results, run the checks and (unless figures_dir is None) draw the figures."""
    runs = load_runs(results_dir)
    figures, claims = {}, {}
    if figures_dir is not None:
        from .figures import claims_figures, make_figures
        figures = make_figures(runs, figures_dir)
        claims = claims_figures(runs, figures_dir)
    return Report(results_dir, runs, plausibility_flags(runs), figures, claims)


def write_report(results_dir: str, out_md: str = "report.md",
                 figures_dir: str | None = "figures") -> Report:
    """Write report.md (atomically: a reader never sees half a report); returns the Report.
    A report that has results is never replaced, nor are its figures, by one without a
    complete run (a grid that failed offline, a wrong folder): that raises instead."""
    if report_has_results(out_md) and not has_complete_run(results_dir):
        raise FileNotFoundError(
            f"results_dir={results_dir!r} holds no complete run; {out_md} has results and "
            "is kept, with its figures. Run the experiments (the runner's summary says why "
            "they stopped), or point results_dir at the folder they wrote.")
    rep = build_report(results_dir, figures_dir)
    out_dir = os.path.dirname(os.path.abspath(out_md))
    write_text(out_md, rep.markdown(out_dir))
    return rep


def has_complete_run(results_dir: str) -> bool:
    return any(r.get("status") == "complete" for r in load_runs(results_dir).values())


def report_has_results(path: str) -> bool:
    """True when the markdown report at `path` exists and is not an empty report."""
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as f:
        head = f.read(2000)
    return report_title({}) not in head


def locate_results(results_dir: str | None = None) -> str:
    """The results folder the summary reads. Given: that folder, under HOME if relative.
    None: HOME/results/cifar100; when it holds no results but exactly one other folder
    under HOME/results does, that one (and it says so); when several do, ValueError
    listing them with the parameter that picks one."""
    if results_dir is not None:
        return at_home(results_dir)
    default = at_home(os.path.join(RESULTS, REAL_DATASET))
    if result_files(default):
        return default
    parent = at_home(RESULTS)
    others = sorted(os.path.join(parent, d) for d in
                    (os.listdir(parent) if os.path.isdir(parent) else [])
                    if result_files(os.path.join(parent, d)))
    if len(others) == 1:
        say(f"{shown(default)} holds no results; reading {shown(others[0])}, the one folder "
            f"under {shown(parent)} that does (set results_dir to choose another).")
        return others[0]
    if others:
        lines = "\n".join(f"    results_dir = {os.path.relpath(o, home())!r}" for o in others)
        raise ValueError(f"{default} holds no results, and several folders under {parent} "
                         f"do. Set one of these in the parameters cell:\n{lines}")
    return default


def summarise(results_dir: str | None = None, report_path: str | None = None,
              figures_dir: str | None = None) -> Report:
    """What notebooks/summary.ipynb does: find the results (locate_results), write the
    report and figures where report_paths puts them (unless given), return the Report."""
    folder = locate_results(results_dir)
    where = report_paths(folder)
    md = at_home(report_path) if report_path else where["md"]
    figs = at_home(figures_dir) if figures_dir else where["figures"]
    rep = write_report(folder, md, figs)
    say(f"{len(rep.runs)} result file(s) from {shown(folder)}; wrote {shown(md)} and "
        f"{shown(figs)}/")
    return rep


def say(message: str) -> None:
    """A note for the person running the summary, not for the report: in a notebook it is
    shown as HTML only, which the PDF export (LaTeX) skips, so the submission starts with
    the report; elsewhere it is printed."""
    if not in_notebook():
        print(message)
        return
    import html
    from IPython.display import display
    display({"text/html": f"<pre>{html.escape(message)}</pre>"}, raw=True)
