"""The grid's time record: how long a `python -m helpers.run` took, row by row and in
all, written to <results>/logs/grid_time.json (beside the jobs' logs, so the report's
loader, which reads the folder's *.json result files, never mistakes it for a result).

Each row's wall time is what the runner measured around it (kernel or job start, data,
model, measurement, training, evaluation, result writing); its training and evaluation
seconds come from its result file, and so does its split into phases (the result's
"phases": data, build and measure, setup, compile and warm-up, training, evaluation,
checkpoint writes). What the row's wall time holds beyond Experiment.run() is
`outside_run_s`: kernel start and imports, the notebook's other cells, writing the result
and the executed notebook. For a notebook row it is split in two from the executed
notebook's cell clocks: `kernel_s` (the row's wall time minus its code cells: kernel start,
or the wait for a kernel warmed ahead, and papermill's reading and writing) and
`cells_outside_run_s` (the cells around Experiment.run(): imports, plots); `warm_kernel`
says whether the row ran on a kernel started ahead (runner/kernels.py). `total_s` runs
from the runner's start to the end of the report (PDF included when one was built).
"""
from __future__ import annotations

import json
import os
import platform

from ..atomic import write_text
from ..paths import at_home

RECORD = os.path.join("logs", "grid_time.json")


def record_path(results_dir: str) -> str:
    return os.path.join(at_home(results_dir), RECORD)


def write_grid_record(results_dir: str, outcomes: list, *, rows_s: float, total_s: float,
                      started: str, finished: str, settings: dict) -> str:
    """Write the record (atomically) and return its path."""
    from ..results import _git, read_result
    rows = []
    for o in outcomes:
        path = os.path.join(at_home(results_dir), f"{o.run}.json")
        try:
            r = read_result(path)
        except (OSError, ValueError):
            r = {}
        phases = r.get("phases") if o.wall_s is not None else None   # only rows run now
        outside = (max(0.0, o.wall_s - phases["run_s"])
                   if phases and phases.get("run_s") is not None else None)
        cells = o.cells_s
        split = outside is not None and cells is not None
        rows.append(dict(run=o.run, status=o.status, note=o.note, wall_s=o.wall_s,
                         train_s=r.get("total_train_time_s"), eval_s=r.get("eval_time_s"),
                         device=(r.get("provenance") or {}).get("device"),
                         phases=phases, outside_run_s=outside,
                         kernel_s=max(0.0, o.wall_s - cells) if split else None,
                         cells_outside_run_s=max(0.0, cells - phases["run_s"]) if split else None,
                         warm_kernel=o.warm_kernel))
    record = dict(started=started, finished=finished, rows_s=rows_s, total_s=total_s,
                  executed=sum(1 for o in outcomes if o.wall_s is not None),
                  git_commit=_git("rev-parse", "HEAD"), python=platform.python_version(),
                  settings=settings, rows=rows)
    path = record_path(results_dir)
    write_text(path, json.dumps(record, indent=1) + "\n")
    return path


def read_grid_record(results_dir: str) -> dict | None:
    try:
        with open(record_path(results_dir), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


# ----------------------------------------------------------------------------- README
START, END = "<!-- demo:start -->", "<!-- demo:end -->"


def demo_summary(results_dir: str) -> str:
    """What the last recorded demo showed and how long it took, from its time record and
    result files only (README: `make demo-readme`)."""
    from ..report.tables import load_runs, run_devices
    record = read_grid_record(results_dir)
    if not record or record.get("total_s") is None:
        raise SystemExit(f"error: no complete time record in {record_path(results_dir)}; "
                         "run `make demo` first")
    runs = load_runs(at_home(results_dir))
    done = [r for r in runs.values() if r["status"] == "complete"]
    skipped = [r for r in runs.values() if r["status"] == "skipped"]
    failed = [r for r in runs.values() if r["status"] == "failed"]
    classes = {(r.get("dataset") or {}).get("num_classes") for r in done}
    devices = sorted({run_devices(r) or "unknown" for r in done})
    minutes, seconds = divmod(round(record["total_s"]), 60)
    lines = [f"The last recorded `make demo` (commit {str(record.get('git_commit'))[:7]}, "
             f"{str(record.get('finished'))[:10]}, {', '.join(devices)}) took "
             f"**{minutes} min {seconds:02d} s** from the runner's start to the end of the "
             "report (PDF included where LaTeX is installed; installation not included)."]
    if done and len(classes) == 1:
        (c,) = classes
        ratios = [r["test_acc"] * c / 100 for r in done]
        falling = sum(1 for r in done if len(r["history"]) >= 2
                      and r["history"][-1]["test_loss"] < r["history"][0]["test_loss"])
        accs = ", ".join(f"{r.get('label')}{' (scratch)' if r['problem'] == 2 else ''} "
                         f"{r['test_acc']:.1f} %" for r in sorted(done, key=lambda r: r["run_name"]))
        lines.append(f"It trained {len(done)} rows on {c} synthetic classes (chance "
                     f"{100 / c:.0f} %): {accs}; that is {min(ratios):.1f}x to "
                     f"{max(ratios):.1f}x chance, and in {falling} of the {len(done)} rows "
                     "the test loss fell from the first epoch to the last.")
    if skipped or failed:
        lines.append(f"{len(skipped)} row(s) were skipped (the fine-tunes, offline) and "
                     f"{len(failed)} failed.")
    return " ".join(lines)


def splice_readme(readme: str, results_dir: str) -> str:
    """Replace the README's demo block (between START and END) with demo_summary()."""
    block = f"{START}\n{demo_summary(results_dir)}\n{END}"
    with open(readme, encoding="utf-8") as f:
        text = f.read()
    if not (START in text and END in text and text.index(START) < text.index(END)):
        raise SystemExit(f"error: {readme} has no {START} ... {END} block")
    text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    write_text(readme, text)
    return block


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(prog="python -m helpers.runner.record",
                                 description="Write the README's demo paragraph from the "
                                             "last recorded demo run.")
    ap.add_argument("results_dir", nargs="?", default="results/demo")
    ap.add_argument("--readme", default="README.md")
    a = ap.parse_args()
    print(splice_readme(a.readme, a.results_dir))
