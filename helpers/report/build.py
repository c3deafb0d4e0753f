"""The report as one object: tables, figures, analysis and flags, for report.md and Jupyter."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import pandas as pd

from ..atomic import write_text
from .analysis import analysis_problem1, analysis_problem2
from .flags import Flag, flags_md, plausibility_flags
from .tables import (header_md, load_runs, report_title, table1, table2, time_note,
                     time_split_md, to_markdown)


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

    def record(self) -> dict | None:
        from ..runner.record import read_grid_record
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
        return {
            "header": header_md(self.runs, self.flags, self.record()),
            "table1": "## Problem 1: ResNet-18 vs ViT (from scratch)\n\n"
                      + to_markdown(table1(self.runs)) + "\n\n" + time_note(self.runs, 1)
                      + " MACs are counted by thop (conv/linear layers); exact FLOPs by "
                        "PyTorch's FLOP counter (2 per multiply-add); both for one image.",
            "table2": "## Problem 2: Swin-Tiny and Swin-Small\n\n" + to_markdown(table2(self.runs))
                      + "\n\n" + time_note(self.runs, 2),
            "time": time_split_md(self.record(), self.runs) or "",
            "figures": "## Figures\n\n" + figs,
            "analysis": "## Analysis\n\n" + analysis_problem1(self.runs) + "\n\n"
                        + analysis_problem2(self.runs, self.flags),
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
        elif part in s:
            display(Markdown(s[part]))
        else:
            raise ValueError(f"part={part!r}; valid parts: header, tables, figures, "
                             "analysis, flags")


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
