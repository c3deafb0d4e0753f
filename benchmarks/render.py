"""Benchmark result files -> the markdown tables in benchmarks/README.md and README.md.

Every number in the tables comes from a benchmarks/results/<device>.json written by
the benchmark (benchfile.py); nothing is typed by hand. Devices we have
targets for but no result file yet are listed as "not measured yet", so a missing GPU
measurement is never silent.
"""
from __future__ import annotations

from helpers.atomic import splice
from helpers.config import CIFAR100_SIZES, problem_of
from helpers.grid import EPOCHS
from helpers.textable import pipe_table
from .benchfile import PLAIN, read_bench_files
from .settings import VARIANTS
from .timing import measured

COMPILED = VARIANTS[True]

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


RUNS_HEADER = ["Model", "Run", "Input px", "Batch train / eval", "Ours train img/s",
               "50k-image epoch (s)", "Warm-up (s)", "Eval img/s", "CUDA memory (MiB)",
               "TFLOP/s", "MFU", "Typical loop img/s", "Speedup", "Others' CPU use"]


def _run_row(run: dict, cuda: bool) -> list[str]:
    if run.get("status") != "complete":
        return ([run["label"], f"`{run['run_name']}`"] + ["—"] * (len(RUNS_HEADER) - 3)
                + [f"failed: {run.get('reason')}"])
    o = run["ours"][PLAIN]
    ref = run.get("reference") or {}
    return [run["label"], f"`{run['run_name']}`", str(run["img_size"]),
            f"{run['batch_size']} / {run['eval_batch_size']}",
            fmt(o["images_per_s"]), fmt(o["epoch_50k_s"]), fmt(o["warmup_s"]),
            fmt(o["eval_images_per_s"]), fmt(o.get("peak_memory_mib") if cuda else None),
            fmt(o["achieved_tflops"]), _pct(o["mfu"]), fmt(ref.get("images_per_s")),
            _times(run.get("speedup")), _pct(run.get("other_cpu_share"))]


def runs_table(r: dict) -> list[str]:
    """One row per run with the eager path the grid trains, then the epoch sum (when every
    run completed) and what the memory and CPU-use columns mean."""
    cuda = r["device_type"] == "cuda"
    lines = pipe_table(RUNS_HEADER, [_run_row(run, cuda) for run in r["runs"]],
                       "llrl" + "r" * 10).splitlines()
    done = [run for run in r["runs"] if run.get("status") == "complete"]
    if len(done) == len(r["runs"]):
        total = sum(run["ours"][PLAIN]["epoch_50k_s"] for run in done)
        lines += ["", f"One 50k-image training epoch of every run above, summed (evaluation "
                      f"and warm-up excluded): {fmt(total)} s."]
    return lines + ["", "Ours: eager, as the grid trains by default. CUDA memory: "
                        "`torch.cuda.max_memory_allocated` over the warm-up and timed steps "
                        "(— on a CPU). Others' CPU use: the share of the machine's CPU time "
                        "that other processes took while the run was measured (/proc/stat); "
                        "well above 0 % means the timings were slowed by other jobs."]


def data_path_table(r: dict) -> list[str]:
    if not r.get("data_path"):
        return []
    lines = ["", "Data path only (batches, no model):", ""]
    return lines + pipe_table(["Input px", "Batch", "DeviceLoader img/s",
                               "DataLoader + PIL (2 workers) img/s", "Speedup",
                               "Others' CPU use"],
                              [[str(d["img_size"]), str(d["batch_size"]),
                                fmt(d["ours"]["images_per_s"]),
                                fmt(d["reference"]["images_per_s"]), _times(d["speedup"]),
                                _pct(d.get("other_cpu_share"))]
                               for d in r["data_path"]], "rrrrrr").splitlines()


def device_section(r: dict) -> list[str]:
    """The tables for one result file."""
    return device_header(r) + runs_table(r) + compile_table(r) + data_path_table(r)


def compile_saving(eager: dict, compiled: dict, *, epochs: int, train_images: int,
                   test_images: int) -> dict:
    """What compiling a run saves, from two timings of it (keys images_per_s,
    eval_images_per_s, warmup_s, eval_warmup_s): `epochs` epochs of `train_images`, each
    followed by an evaluation of `test_images`. The cost is the compiled variant's extra
    one-off warm-up, of its training graphs and of its evaluation graphs, with an empty
    compile cache. Returns saved_s, cost_s, net_s (saved - cost) and pays."""
    saved = epochs * (train_images / eager["images_per_s"]
                      - train_images / compiled["images_per_s"])
    if eager.get("eval_images_per_s") and compiled.get("eval_images_per_s"):
        saved += epochs * (test_images / eager["eval_images_per_s"]
                           - test_images / compiled["eval_images_per_s"])
    cost = (max(0.0, compiled["warmup_s"] - eager["warmup_s"])
            + max(0.0, compiled.get("eval_warmup_s", 0.0) - eager.get("eval_warmup_s", 0.0)))
    return dict(saved_s=saved, cost_s=cost, net_s=saved - cost, pays=saved > cost)


COMPILE_HEADER = ["Run", "Eager img/s", "Compiled img/s", "MFU (compiled)", "vs eager",
                  "Compile (s)", "Break-even (epochs)", "Over the grid's epochs"]


def _compile_row(x: dict) -> list[str]:
    eager, compiled = x["ours"][PLAIN], x["ours"][COMPILED]
    if not measured(compiled):
        return ([f"`{x['run_name']}`", fmt(eager["images_per_s"])]
                + ["—"] * (len(COMPILE_HEADER) - 3) + [f"failed: {compiled.get('reason')}"])
    epochs = EPOCHS[problem_of(x["model"])]
    s = compile_saving(eager, compiled, epochs=epochs, train_images=CIFAR100_SIZES[0],
                       test_images=CIFAR100_SIZES[1])
    per_epoch = s["saved_s"] / epochs
    net = f"saves {fmt(s['net_s'])} s" if s["pays"] else f"costs {fmt(-s['net_s'])} s"
    return [f"`{x['run_name']}`", fmt(eager["images_per_s"]), fmt(compiled["images_per_s"]),
            _pct(compiled.get("mfu")), _times(compiled["images_per_s"] / eager["images_per_s"]),
            fmt(s["cost_s"]), fmt(s["cost_s"] / per_epoch if per_epoch > 0 else None),
            f"{net} over {epochs}"]


def compile_table(r: dict) -> list[str]:
    """The runs also measured with `torch.compile` of the whole model: its speed against
    eager, its one-off cost with an empty compile cache, the break-even and the net over
    the grid's epochs (compile_saving). Variants under other names, which older files may
    hold, are left out."""
    rows = [x for x in r["runs"] if x.get("status") == "complete" and COMPILED in x["ours"]]
    if not rows:
        return []
    lines = ["", "`torch.compile` of the whole model (`compile=True`). Compile: its extra "
                 "warm-up (training and the first evaluation batch) over eager's, with an "
                 "empty compile cache. Break-even and net in 50k-image epochs, each followed "
                 "by an evaluation of 10k images (`benchmarks.render.compile_saving`):", ""]
    return lines + pipe_table(COMPILE_HEADER, [_compile_row(x) for x in rows],
                              "l" + "r" * 6 + "l").splitlines()


def render_markdown(results: list[dict]) -> str:
    lines = ["_Generated by `python -m benchmarks` from `benchmarks/results/*.json`; "
             "do not edit by hand._", ""]
    rows = [[r["device"], r["precision"], f"`benchmarks/results/{r['_file']}`",
             "measured" + (" (CPU only)" if r["device_type"] == "cpu" else "")] for r in results]
    for gpu, prec in EXPECTED_GPUS:
        if not any(r["device"] == gpu for r in results):
            rows.append([gpu, prec, "—", "not measured yet"])
    lines += pipe_table(["Device", "Precision", "Result file", "Status"], rows,
                        "llll").splitlines()
    for r in results:
        lines += [""] + device_section(r)
    return "\n".join(lines)


def render_readme(readme: str, results_dir: str) -> str:
    """Replace the README's bench block (atomic.splice: refused without its markers)."""
    return splice(readme, "bench", render_markdown(read_bench_files(results_dir)))
