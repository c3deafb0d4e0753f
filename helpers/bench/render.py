"""Benchmark result files -> the markdown tables in benchmarks/README.md and README.md.

Every number in the tables comes from a benchmarks/results/<device>.json written by
helpers.bench (helpers/bench/benchfile.py); nothing is typed by hand. Devices we have
targets for but no result file yet are listed as "not measured yet", so a missing GPU
measurement is never silent.
"""
from __future__ import annotations

from ..atomic import splice
from ..textable import pipe_table
from .benchfile import PLAIN, read_bench_files
from .timing import measured

START, END = "<!-- bench:start -->", "<!-- bench:end -->"     # atomic.splice's "bench" block
# The GPU the targets in benchmarks/README.md are set for; listed as "not measured yet"
# until a result file from it exists.
EXPECTED_GPUS = (("NVIDIA H200", "bf16"),)


def fmt(v, digits: int = 3) -> str:
    """3 significant digits, thousands separated; missing values as a dash."""
    if v is None:
        return "—"
    if abs(v) >= 10 ** digits:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def _pct(v) -> str:
    return "—" if v is None else f"{100 * v:.1f} %"


def table_lines(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    """A markdown table as lines (helpers.textable.pipe_table)."""
    return pipe_table(header, rows, align).splitlines()


def _when(r: dict) -> str:
    times = sorted(x["measured"] for x in r["runs"] + (r.get("data_path") or [])
                   if x.get("measured"))
    if len(times) > 1 and times[0] != times[-1]:
        return f"measured {times[0]} to {times[-1]}"
    return f"measured {(r.get('provenance') or {}).get('finished')}"


def _times(v) -> str:
    """A speed-up: '3.2×', or a dash."""
    return fmt(v) + ("×" if v else "")


def device_header(r: dict) -> list[str]:
    """Title, conditions, notes and the MFU peak of one result file."""
    prov = r.get("provenance") or {}
    commit = ((prov.get("git_commit") or "unknown")[:10]
              + (" (dirty)" if prov.get("git_dirty") else ""))
    threads = f", {r['threads']} CPU threads" if r.get("threads") else ""
    lines = [f"### {r['device']} — `{r['_file']}`", "",
             f"Precision **{r['precision']}**{threads}; {'quick' if r.get('quick') else 'full'} "
             f"sizes; torch {prov.get('torch')}; {_when(r)}; git {commit}.", ""]
    lines += [f"- {n}" for n in r.get("notes", [])]
    peak = r.get("peak") or {}
    lines += [f"- MFU peak: {fmt(peak['tflops'])} TFLOP/s ({peak['source']})" if peak.get("tflops")
              else f"- MFU: {peak.get('note') or 'no peak known'}", ""]
    return lines


RUNS_HEADER = ["Model", "Run", "Input px", "Batch train / eval", "Variant", "Ours train img/s",
               "50k-image epoch (s)", "Warm-up (s)", "Eval img/s", "Memory (MiB)", "TFLOP/s",
               "MFU", "Typical loop img/s", "Speedup", "Others' CPU use"]


def _shown_variant(run: dict) -> str:
    """The variant a row's figures are of: the grid's, or the plain one where the grid's
    was not measured."""
    grid_variant = run.get("grid_variant")
    if grid_variant in (None, run["primary"]):
        return run["primary"]
    return f"{run['primary']} ({grid_variant} not measured)"


def _run_row(run: dict) -> list[str]:
    if run.get("status") != "complete":
        return ([run["label"], f"`{run['run_name']}`"] + ["—"] * (len(RUNS_HEADER) - 3)
                + [f"failed: {run.get('reason')}"])
    o = run["ours"][run["primary"]]
    ref = run.get("reference") or {}
    return [run["label"], f"`{run['run_name']}`", str(run["img_size"]),
            f"{run['batch_size']} / {run['eval_batch_size']}", _shown_variant(run),
            fmt(o["images_per_s"]), fmt(o["epoch_50k_s"]), fmt(o["warmup_s"]),
            fmt(o["eval_images_per_s"]), fmt(o["peak_memory_mib"]), fmt(o["achieved_tflops"]),
            _pct(o["mfu"]), fmt(ref.get("images_per_s")), _times(run.get("speedup")),
            _pct(run.get("other_cpu_share"))]


def runs_table(r: dict) -> list[str]:
    """One row per run with the variant the grid trains (its primary variant), then the
    epoch sum (when every run completed) and what the CPU-use and memory columns mean."""
    lines = table_lines(RUNS_HEADER, [_run_row(run) for run in r["runs"]], "llrll" + "r" * 10)
    done = [run for run in r["runs"] if run.get("status") == "complete"]
    if len(done) == len(r["runs"]):
        total = sum(run["ours"][run["primary"]]["epoch_50k_s"] for run in done)
        lines += ["", f"One 50k-image training epoch of every run above, summed (evaluation "
                      f"and warm-up excluded): {fmt(total)} s."]
    lines += ["", "Variant: the one the grid trains on this kind of device "
                  "(`helpers.speed.choose`). Others' CPU use: the share of the machine's CPU "
                  "time that other processes took while the run was measured (/proc/stat); "
                  "well above 0 % means the timings were slowed by other jobs."]
    mem_kinds = {run["ours"][run["primary"]]["memory_kind"] for run in done}
    return lines + (["", "Memory column: " + "; ".join(sorted(mem_kinds)) + "."]
                    if mem_kinds else [])


def feature_cache_table(r: dict) -> list[str]:
    cached = [x for x in r["runs"] if measured(x.get("feature_cache"))]
    if not cached:
        return []
    lines = ["", "Frozen-backbone option `cache_features=True` (needs `augment=False`; "
                 "an option, not the default method):", ""]
    return lines + table_lines(["Run", "Uncached (eager) img/s", "Cached img/s (head only)",
                           "One-off feature pass img/s", "Speedup"],
                          [[f"`{x['run_name']}`", fmt(x["ours"][PLAIN]["images_per_s"]),
                            fmt(x["feature_cache"]["train"]["images_per_s"]),
                            fmt(x["feature_cache"]["feature_images_per_s"]),
                            _times(x["feature_cache"]["speedup_vs_uncached"])] for x in cached],
                          "lrrrr")


def data_path_table(r: dict) -> list[str]:
    if not r.get("data_path"):
        return []
    lines = ["", "Data path only (batches, no model):", ""]
    return lines + table_lines(["Input px", "Batch", "DeviceLoader img/s",
                           "DataLoader + PIL (2 workers) img/s", "Speedup", "Others' CPU use"],
                          [[str(d["img_size"]), str(d["batch_size"]),
                            fmt(d["ours"]["images_per_s"]), fmt(d["reference"]["images_per_s"]),
                            _times(d["speedup"]), _pct(d.get("other_cpu_share"))]
                           for d in r["data_path"]], "rrrrrr")


def device_section(r: dict) -> list[str]:
    """The tables for one result file."""
    return (device_header(r) + runs_table(r) + variants_table(r) + feature_cache_table(r)
            + data_path_table(r))


VARIANTS_HEADER = ["Run", "Variant", "Train img/s", "MFU", "vs eager", "Cold compile (s)",
                   "Warm compile (s)", "Break-even cold", "Break-even warm",
                   "Pays over the grid's epochs (cold)"]


def _pays(t: dict) -> str:
    """'yes (saves 12 s)' / 'no (costs 3 s)': a compiled variant's net over the grid's
    epochs with an empty compile cache."""
    s = t.get("saving_cold")
    if not s:
        return "—"
    return f"yes (saves {fmt(s['net_s'])} s)" if s["pays"] else f"no (costs {fmt(-s['net_s'])} s)"


def _variant_row(x: dict, name: str, t: dict) -> list[str]:
    if not measured(t):
        return ([f"`{x['run_name']}`", name] + ["—"] * (len(VARIANTS_HEADER) - 3)
                + [f"failed: {t.get('reason')}"])
    base = x["ours"].get(PLAIN)
    vs = t["images_per_s"] / base["images_per_s"] if measured(base) else None
    compiled = [fmt(t.get(k)) for k in ("compile_cold_s", "compile_warm_s",
                                        "break_even_epochs_cold", "break_even_epochs_warm")]
    return ([f"`{x['run_name']}`", name, fmt(t["images_per_s"]), _pct(t.get("mfu")), _times(vs)]
            + (compiled + [_pays(t)] if t.get("compile") else ["—"] * 5))


def variants_table(r: dict) -> list[str]:
    """Every variant of our path against the plain one (timm's attention, eager), with each
    compiled variant's cold and warm compile cost, break-even and net over the grid's
    epochs; then, per run, the variant the grid trains against the plain one. Runs with one
    variant are left out."""
    multi = [x for x in r["runs"] if x.get("status") == "complete" and len(x["ours"]) > 1]
    if not multi:
        return []
    rows = [_variant_row(x, name, t) for x in multi for name, t in x["ours"].items()]
    lines = ["", "Variants of our path (`compiled`: `torch.compile` of the whole model; "
                 "`-blocks`: each repeated block compiled on its own; `fused-`: Swin window "
                 "attention in SDPA). Compile cost = extra warm-up (training + first "
                 "evaluation batch) over the eager path's; cold = empty cache, warm = kernels "
                 "already in the on-disk cache. Break-even in 50k-image epochs (training and "
                 "evaluation time saved, `helpers.speed.compile_saving`):", ""]
    lines += table_lines(VARIANTS_HEADER, rows, "ll" + "r" * 7 + "l")
    lines += ["", "What the grid trains on this kind of device (`helpers.speed.choose`), "
                  "against the plain path (eager, timm's attention):", ""]
    return lines + table_lines(["Run", "Grid epochs", "Grid's variant", "Eager img/s",
                           "Grid's variant img/s", "Speedup"],
                          [[f"`{x['run_name']}`", str(x["new_vs_old"]["grid_epochs"]),
                            _shown_variant(x), fmt(x["new_vs_old"]["old_images_per_s"]),
                            fmt(x["new_vs_old"]["new_images_per_s"]),
                            _times(x["new_vs_old"]["speedup"])] for x in multi], "lrlrrr")


def render_markdown(results: list[dict]) -> str:
    lines = ["_Generated by `python -m helpers.bench` from `benchmarks/results/*.json`; "
             "do not edit by hand._", ""]
    rows = [[r["device"], r["precision"], f"`benchmarks/results/{r['_file']}`",
             "measured" + (" (CPU only)" if r["device_type"] == "cpu" else "")] for r in results]
    for gpu, prec in EXPECTED_GPUS:
        if not any(r["device"] == gpu for r in results):
            rows.append([gpu, prec, "—", "not measured yet"])
    lines += table_lines(["Device", "Precision", "Result file", "Status"], rows, "llll")
    for r in results:
        lines += [""] + device_section(r)
    return "\n".join(lines)


def render_readme(readme: str, results_dir: str) -> str:
    """Replace the README's bench block (atomic.splice: refused without its markers)."""
    return splice(readme, "bench", render_markdown(read_bench_files(results_dir)))
