"""The README's demo paragraph, from the last demo's time record and result files
(`make demo-readme` = `python -m helpers.runner demo-readme`). The record itself is
defined in helpers/gridrun.py."""
from __future__ import annotations

from ..atomic import splice
from ..paths import at_home
from ..gridrun import read_time_record, time_record_path


def demo_summary(results_dir: str) -> str:
    """What the last recorded demo showed and how long it took, from its time record and
    the result files of the rows it executed (README: `make demo-readme`)."""
    from ..report import load_runs, run_devices
    record = read_time_record(results_dir)
    if not record or record.get("total_s") is None:
        raise SystemExit(f"error: no complete time record in {time_record_path(results_dir)}; "
                         "run `make demo` first")
    executed = {row.get("run") for row in record.get("rows") or []}
    runs = {n: r for n, r in load_runs(at_home(results_dir)).items() if n in executed}
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
        losses = [[h["test_loss"] for h in r["history"] if h.get("test_loss") is not None]
                  for r in done]
        falling = sum(1 for v in losses if len(v) >= 2 and v[-1] < v[0])
        accs = ", ".join(f"{r.get('label')}{' (scratch)' if r['problem'] == 2 else ''} "
                         f"{r['test_acc']:.1f} %"
                         for r in sorted(done, key=lambda r: r["run_name"]))
        lines.append(f"It trained {len(done)} rows on {c} synthetic classes (chance "
                     f"{100 / c:.0f} %): {accs}; that is {min(ratios):.1f}x to "
                     f"{max(ratios):.1f}x chance, and in {falling} of the {len(done)} rows "
                     "the test loss fell from the first epoch to the last.")
    if skipped or failed:
        lines.append(f"{len(skipped)} row(s) were skipped (the fine-tunes, offline) and "
                     f"{len(failed)} failed.")
    return " ".join(lines)


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m helpers.runner demo-readme",
                                 description="Write the README's demo paragraph from the "
                                             "last recorded demo run.")
    ap.add_argument("results_dir", nargs="?", default="results/demo")
    ap.add_argument("--readme", default="README.md")
    a = ap.parse_args(argv)
    print(splice(a.readme, "demo", demo_summary(a.results_dir)))    # the README's demo block
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
