"""The report as one object: tables, figures, analysis and flags, for report.md and Jupyter."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import pandas as pd

from ..atomic import write_text
from ..notebooks import in_notebook
from ..paths import REAL_DATASET, RESULTS, at_home, home, shown
from ..records import read_grid_record, report_paths
from .analysis import analysis_problem1, analysis_problem2
from .claims import CAPTIONS
from .claims_md import claims_md, claims_parts
from .flags import Flag, flags_md, plausibility_flags
from .header import header_md, report_title, time_split_md
from .tables import demo_note, load_runs, table1, table2, time_note, to_markdown


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
    claims_figures: dict[str, str] = field(default_factory=dict)   # Problem 3's

    @property
    def title(self) -> str:
        return report_title(self.runs)

    def record(self) -> dict | None:
        return read_grid_record(self.results_dir)

    def captions(self) -> dict[str, str]:
        if not self.figures:
            return {}
        from .figures import figure_captions   # matplotlib: only once figures were drawn
        return figure_captions(self.runs, self.figures)

    def sections(self, base_dir: str = ".") -> dict[str, str]:
        """The report's markdown, by section; figure links are relative to base_dir."""
        captions = self.captions()
        figs = "\n\n".join(f"![{captions[k]}]({os.path.relpath(p, base_dir)})"
                           for k, p in self.figures.items()) or "*Figures not rendered.*"
        notes = {p: "".join("\n\n" + n for n in [demo_note(self.runs, p)] if n) for p in (1, 2)}
        return {
            "header": header_md(self.runs, self.flags, self.record()),
            "table1": "## Problem 1: ResNet-18 vs ViT (from scratch)\n\n"
                      + to_markdown(table1(self.runs)) + "\n\n" + time_note(self.runs, 1)
                      + " MACs are counted by thop (conv/linear layers); exact FLOPs by "
                        "PyTorch's FLOP counter (2 per multiply-add); both for one image."
                      + notes[1],
            "table2": "## Problem 2: Swin-Tiny and Swin-Small\n\n" + to_markdown(table2(self.runs))
                      + "\n\n" + time_note(self.runs, 2) + notes[2],
            "time": time_split_md(self.record(), self.runs) or "",
            "figures": "## Figures\n\n" + figs,
            "analysis": "## Analysis\n\n" + analysis_problem1(self.runs) + "\n\n"
                        + analysis_problem2(self.runs, self.flags),
            "claims": claims_md(self.runs, self.claims_figures, base_dir),
            "flags": "## Plausibility checks\n\n" + flags_md(self.flags, self.runs),
        }

    def markdown(self, base_dir: str = ".") -> str:
        return "\n\n".join(v for v in self.sections(base_dir).values() if v) + "\n"

    def show(self, part: str) -> None:
        """Display one part in a notebook: header, tables, figures, analysis or flags."""
        from IPython.display import Image, Markdown, display
        s = self.sections()
        if part == "tables":
            for p, df in ((1, table1(self.runs)), (2, table2(self.runs))):
                text = s[f"table{p}"]
                display(Markdown(text.split("\n\n")[0]), Table(df),
                        Markdown(text.split("\n\n", 2)[2]))
            if s["time"]:                              # where the grid's time went
                display(Markdown(s["time"]))
        elif part == "figures":
            display(Markdown("## Figures"))
            captions = self.captions()
            for k, p in self.figures.items():
                display(Markdown(f"**{captions[k]}**"), Image(filename=p))
        elif part == "claims":                         # figures inline, from their files
            for text, name in claims_parts(self.runs, self.claims_figures):
                display(Markdown(text))              # each figure beside its claim
                if name:
                    display(Markdown(f"**{CAPTIONS[name]}**"),
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
        from .claims_figures import claims_figures
        from .figures import make_figures
        figures = make_figures(runs, figures_dir)
        claims = claims_figures(runs, figures_dir)
    return Report(results_dir, runs, plausibility_flags(runs), figures, claims)


def write_report(results_dir: str, out_md: str = "report.md",
                 figures_dir: str | None = "figures") -> Report:
    """Write report.md (atomically: a reader never sees half a report); returns the Report.
    A report that has results is never replaced by one without: that raises instead."""
    rep = build_report(results_dir, figures_dir)
    if not rep.runs and report_has_results(out_md):
        raise FileNotFoundError(
            f"results_dir={results_dir!r} holds no result files; {out_md} has results and "
            "is kept. Point results_dir at the folder the problem notebooks wrote.")
    out_dir = os.path.dirname(os.path.abspath(out_md))
    write_text(out_md, rep.markdown(out_dir))
    return rep


def report_has_results(path: str) -> bool:
    """True when the markdown report at `path` exists and is not an empty report."""
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8") as f:
        head = f.read(2000)
    return report_title({}) not in head


def result_files(folder: str) -> list[str]:
    """The result JSONs directly in `folder` (none when it is not a folder)."""
    if not os.path.isdir(folder):
        return []
    return sorted(n for n in os.listdir(folder) if n.endswith(".json")
                  and not n.startswith(".") and os.path.isfile(os.path.join(folder, n)))


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
