"""`python -m helpers.report [RESULTS_DIR] [--out report.md] [--figures figures]`: render
the report, as notebooks/summary.ipynb does (build.summarise: the same defaults).
`python -m helpers.report pdf [...]`: the PDF (pdf.py)."""
from __future__ import annotations

import sys

from .build import summarise


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m helpers.report",
                                 description="Render report.md and figures from result "
                                             "JSONs; `python -m helpers.report pdf --help` "
                                             "for the PDF.")
    ap.add_argument("results_dir", nargs="?", default=None,
                    help="default: results/cifar100 under HOME, or the one other results folder")
    ap.add_argument("--out", default=None, help="default: HOME/report.md for CIFAR-100 "
                                                "results, else report.md in the results folder")
    ap.add_argument("--figures", default=None, help="default: figures/ beside the report")
    args = ap.parse_args(argv)
    try:
        rep = summarise(args.results_dir, args.out, args.figures)
    except (FileNotFoundError, ValueError) as err:     # no folder, or a malformed result file
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{len(rep.flags)} flag(s), {len(rep.figures)} figures")
    return 0


if __name__ == "__main__":
    from ..commands import dispatch
    raise SystemExit(dispatch("helpers.report", {"pdf": "pdf"}, main))
