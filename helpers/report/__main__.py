"""`python -m helpers.report RESULTS_DIR --out report.md --figures figures`: render the report."""
from __future__ import annotations

import sys

from .build import write_report


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
