"""One command-line convention for every part: `python -m helpers.<part> [TOOL] [options]`
(and the same for the benchmark beside the package, `python -m benchmarks`).

A part's own command runs when the first argument is not one of its tools:

    python -m helpers.runner   (= helpers.run)   the grid;   tool: demo-readme
    python -m helpers.report                      the report; tool: pdf
    python -m benchmarks                          the speed benchmark; tool: check
    python -m helpers.colab                       point the notebooks at a fork

Each tool is also its own module: `python -m helpers.report.pdf`, `python -m benchmarks.check`.
"""
from __future__ import annotations

import importlib
import sys


def dispatch(package: str, tools: dict[str, str], default, argv=None) -> int:
    """Run `tools[argv[0]]`'s main(argv[1:]) (a module under `package`), else
    default(argv). A main that returns None or a dict counts as success."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in tools:
        main = importlib.import_module(f"{package}.{tools[argv[0]]}").main
        status = main(argv[1:])
    else:
        status = default(argv)
    return status if isinstance(status, int) else 0
