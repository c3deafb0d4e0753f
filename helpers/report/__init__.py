"""The report, rendered from result files only: nothing here trains or measures.

Tables 1 and 2, the header, the written analysis, plausibility flags, seeds (mean ± sd),
the one noise rule (stats.py), Problem 3's verdicts and figures, and the PDF; the README's
layout section names the module of each.

    python -m helpers.report results/cifar100 --out report.md --figures figures
"""
from .build import build_report, has_complete_run, run_devices, summarise, write_report
from .pdf import build_pdf, missing_latex_tools
from .tables import load_runs

__all__ = ["build_pdf", "build_report", "has_complete_run", "load_runs", "missing_latex_tools",
           "run_devices", "summarise", "write_report"]
