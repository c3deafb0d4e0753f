"""`python -m benchmarks`: flags -> BenchSettings -> run_benchmark, plus a mode that
measures nothing: --render-only (refresh the README tables from the result files)."""
from __future__ import annotations

import argparse
import dataclasses
import os

from helpers.device import resolve_device
from .benchfile import bench_file
from .benchmark import run_benchmark
from .render import render_readme
from .settings import COMPILE_MODES, COUNT_MINIMUM, DEFAULT_READMES, PRECISIONS, BenchSettings, flag

COUNT_HELP = dict(
    img_size="input side of the Swin runs (default: the grid's); a smaller side makes a "
             "CPU dry run affordable",
    batch_size="training batch for every run", eval_batch_size="evaluation batch for every run",
    steps="timed training steps per pass", warmup_steps="untimed steps before the timed passes",
    eval_steps="timed evaluation batches", repeats="timed passes; images/s is their median",
    threads="torch CPU threads (torch.set_num_threads)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks",
                                description="Speed benchmark of the grid.")
    p.add_argument("--models", help="comma-separated run names or globs, e.g. "
                   "'resnet18,vit-2L-2H-128' or 'p2-swin_tiny-*' (default: the whole grid)")
    p.add_argument("--quick", action="store_true", help="small batches and few steps (CPU, tests)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--precision", default="auto", choices=PRECISIONS)
    p.add_argument("--compile", default="auto", choices=COMPILE_MODES,
                   help="torch.compile for our path; auto = both on CUDA, off elsewhere")
    for name in COUNT_MINIMUM:
        p.add_argument(flag(name), type=int, help=COUNT_HELP[name])
    p.add_argument("--no-reference", action="store_true", help="skip the typical loop")
    p.add_argument("--no-data-path", action="store_true", help="skip the data-path comparison")
    p.add_argument("--note", action="append", default=[], help="a note stored with the result")
    p.add_argument("--merge", action="store_true",
                   help="keep the runs (and data-path figures) of an existing --out file that "
                        "this invocation does not measure, e.g. to re-measure noisy runs")
    p.add_argument("--out", help="result JSON (default benchmarks/results/<device-slug>.json)")
    p.add_argument("--readme", nargs="*", default=list(DEFAULT_READMES),
                   help="READMEs whose generated table is refreshed from the JSONs next to "
                        "--out (default: benchmarks/README.md and README.md; none = leave them)")
    p.add_argument("--render-only", action="store_true",
                   help="only refresh the README table from the existing result files")
    return p


def parse_args(argv=None) -> tuple[BenchSettings, str]:
    """(the settings, what to do: "measure", or "render" the READMEs only); a bad value
    exits with the flag's name."""
    p = _parser()
    args = p.parse_args(argv)
    same = {f.name for f in dataclasses.fields(BenchSettings)} & set(vars(args))
    try:
        settings = BenchSettings(
            **{k: getattr(args, k) for k in same}, reference=not args.no_reference,
            data_path=not args.no_data_path,
            notes=tuple(args.note), readmes=tuple(args.readme))
    except ValueError as err:
        p.error(str(err))
    return settings, "render" if args.render_only else "measure"


def main(argv=None) -> int:
    """The CLI; returns the exit status."""
    settings, action = parse_args(argv)
    if action == "measure":
        run_benchmark(settings)
        return 0
    out_path = settings.out or bench_file(resolve_device(settings.device))
    for readme in filter(None, settings.readmes):
        render_readme(readme, os.path.dirname(os.path.abspath(out_path)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
