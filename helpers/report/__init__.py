"""The report, rendered from result files only: nothing here trains or measures.

Tables 1 and 2, the header, the written analysis, plausibility flags, seeds (mean ± sd),
the one noise rule (stats.py), Problem 3's verdicts and figures, and the PDF; the README's
layout section names the module of each.

    python -m helpers.report results/cifar100 --out report.md --figures figures
"""
from .build import (DEMO_BANNER, Report, build_report, header_md, locate_results, run_devices,
                    summarise, write_report)
from .flags import CEILINGS, Flag, ceiling, flags_md, plausibility_flags
from .pdf import build_pdf, missing_latex_tools
from .tables import load_runs, md_escape, result_is_synthetic, table1, table2

__all__ = ["CEILINGS", "DEMO_BANNER", "Flag", "Report", "build_report", "ceiling", "flags_md",
           "header_md", "load_runs", "locate_results", "md_escape", "plausibility_flags",
           "build_pdf", "missing_latex_tools", "result_is_synthetic", "run_devices", "summarise",
           "table1", "table2", "write_report"]
