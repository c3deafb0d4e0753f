"""Speed benchmark of the grid: run_benchmark(BenchSettings(...)), or the CLI
`python -m helpers.bench [--quick] [--models ...]` (helpers/bench/cli.py).

For every run of helpers.grid.grid() it times OUR path (DeviceLoader batches through
the engine's own train_epoch / make_optimizer / make_scheduler / precision) and the
"typical homework loop" (helpers.bench.reference) on synthetic CIFAR-shaped images
(speed does not depend on pixel values), and writes benchmarks/results/<device>.json
plus the table in benchmarks/README.md. Timing rules (METHOD: honest timing):
- the device is synchronised before every clock read (train_epoch does this itself);
- warm-up steps run first, in their own train_epoch call, and are reported separately
  (with torch.compile on, they include the compilation); the steady-state window holds
  only the timed steps, which the scheduler's step counter confirms;
- evaluation has its own warm-up and clock.
Weights are random: fine-tune runs need no download, and the frozen fine-tune is the
same backbone wrapped frozen, exactly as helpers.models wraps the pretrained one.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import os
import platform
import re
import sys
import time

import torch

from ..config import ExperimentConfig, is_swin
from ..data import make_synthetic
from ..device import (Precision, device_name, resolve_device,
                      resolve_precision, setup_backends)
from ..grid import grid
from ..paths import BENCH_DIR
from ..results import now_iso, provenance
from ..speed import variant_name
from . import reference as ref
from .render import (PEAK_SOURCE, in_grid_order, load_for_merge, merge_previous, peak_tflops,
                     render_readme, write_json)
from .compare import measured
from .row import NUM_CLASSES, bench_run, release_memory, run_config
from .settings import DATA_PATH_SIZES, BenchSettings, bench_variants, family_sizes
from .timing import cpu_snapshot, other_cpu_share


def device_slug(device: torch.device) -> str:
    """File-name form of a device, e.g. 'cpu-x86_64' or 'nvidia-h200': the name of its
    benchmark result, benchmarks/results/<slug>.json."""
    if device.type == "cpu":
        return "cpu-" + platform.machine().lower()
    return re.sub(r"[^a-z0-9]+", "-", device_name(device).lower()).strip("-")


def select_runs(patterns: str | None) -> list[dict]:
    """Grid entries whose run name (with or without its 'p1-'/'p2-') matches a pattern, in
    the order the patterns name them (a glob's matches in grid order): the order they are
    measured in, so a caller short of time names the rows that matter most first. Result
    files keep the grid's order whatever it is."""
    runs = grid()
    if not patterns:
        return runs
    chosen = []
    for pat in [p.strip() for p in patterns.split(",") if p.strip()]:
        hits = [r for r in runs if fnmatch.fnmatch(r["run_name"], pat)
                or fnmatch.fnmatch(r["run_name"][3:], pat)]
        if not hits:
            raise SystemExit(f"--models: {pat!r} matches no run; valid run names: "
                             f"{', '.join(r['run_name'] for r in runs)} (globs allowed)")
        chosen += [r for r in hits if r not in chosen]
    return chosen


# ----------------------------------------------------------------------------- a whole run
@dataclasses.dataclass(frozen=True)
class Plan:
    """BenchSettings resolved on their device: what run_benchmark settles before it
    measures anything (a bad --models or --merge fails here, in seconds)."""
    settings: BenchSettings
    device: torch.device
    precision: Precision
    runs: list
    sizes: dict             # per family, 'p1' and 'swin'
    variants: list
    peak: float | None
    out_path: str
    previous: dict | None   # the --out file's result, with --merge

    def family(self, entry: dict) -> dict:
        return self.sizes["swin" if is_swin(entry["model"]) else "p1"]


def result_path(settings: BenchSettings, device) -> str:
    """settings.out, else benchmarks/results/<device-slug>.json."""
    return settings.out or os.path.join(BENCH_DIR, "results", f"{device_slug(device)}.json")


def make_plan(settings: BenchSettings) -> Plan:
    device = resolve_device(settings.device)
    runs = select_runs(settings.models)
    precision = resolve_precision(settings.precision, device)
    out_path = result_path(settings, device)
    previous = load_for_merge(out_path, device_slug=device_slug(device),
                              precision=precision.name,
                              quick=settings.quick) if settings.merge else None
    peak = peak_tflops(device_name(device), precision.name) if device.type == "cuda" else None
    return Plan(settings, device, precision, runs, family_sizes(settings),
                bench_variants(settings, device), peak, out_path, previous)


def _synthetic_for(plan: Plan):
    """One synthetic set, large enough for every run (each takes its first images)."""
    need = [(plan.family(r), run_config(r, plan.family(r), plan.device, plan.precision))
            for r in plan.runs]
    n_train = max((s["warmup_steps"] + s["steps"] * s["repeats"]) * c.batch_size
                  for s, c in need)
    n_test = max(s["eval_steps"] * c.eval_batch_size for s, c in need)
    return make_synthetic(n_train, n_test, num_classes=NUM_CLASSES, seed=0)


def write_result(plan: Plan, runs: list, data_path, *, finished: bool, started: str,
                 load0) -> dict:
    """The result file as it stands (written after every variant of every run, so a run
    cut or killed keeps what it measured). Schema 2: a variant, the typical loop or the
    feature cache that failed is a {"status": "failed", "reason"} record; files of schema 1
    are read as they are (render.read_bench_results judges their rows afresh)."""
    s, device, name = plan.settings, plan.device, device_name(plan.device)
    notes = (["CPU only: no GPU figure is in this file."] if device.type == "cpu" else [])
    result = dict(
        schema_version=2, kind="speed-benchmark", device=name, device_type=device.type,
        device_slug=device_slug(device), precision=plan.precision.name,
        threads=torch.get_num_threads() if device.type == "cpu" else None,
        quick=s.quick, sizes=plan.sizes, variants=[variant_name(*v) for v in plan.variants],
        peak=dict(tflops=plan.peak, precision=plan.precision.name,
                  source=PEAK_SOURCE if plan.peak else None,
                  note=None if plan.peak else f"no datasheet peak for {name!r}: MFU is null"),
        notes=notes + list(s.notes), load_average=dict(start=list(load0),
                                                       end=list(os.getloadavg())),
        runs=in_grid_order(runs), data_path=data_path, complete=finished,
        provenance=provenance(device=name, device_type=device.type,
                              precision=plan.precision.name,
                              compile=all(v[1] for v in plan.variants), seed=0,
                              started=started, finished=now_iso()))
    if plan.previous:
        merge_previous(result, plan.previous)
    write_json(result, plan.out_path)
    return result


def measure_row(plan: Plan, entry: dict, data, deadline: float | None,
                on_progress=None) -> dict:
    """bench_run of one grid entry (each variant on its own: see row.attempt), or a failed
    record when the row cannot even be built (out of time, out of memory)."""
    t0, s = time.perf_counter(), plan.settings
    bare = dict(run_name=entry["run_name"], label=entry["label"], status="failed")
    if deadline is not None and time.monotonic() >= deadline:
        r = dict(bare, reason="not measured: the time budget was spent")
    else:
        try:
            r = bench_run(entry, plan.family(entry), data, device=plan.device,
                          precision=plan.precision, variants=plan.variants,
                          reference=s.reference, cache=s.feature_cache, peak=plan.peak,
                          compile_backend=s.compile_backend, deadline=deadline,
                          on_progress=on_progress)
        except (RuntimeError, ValueError) as e:   # e.g. CUDA out of memory building it
            release_memory(plan.device)
            r = dict(bare, reason=f"{type(e).__name__}: {e}")
    ours = ", ".join(f"{name} {t['images_per_s']:.1f} img/s" if measured(t) else f"{name} failed"
                     for name, t in r.get("ours", {}).items()) or r.get("reason")
    speedup = f"; {r['speedup']:.2f}x the typical loop" if r.get("speedup") else ""
    print(f"{entry['run_name']:<28} {ours}{speedup}  ({time.perf_counter() - t0:.0f} s)",
          file=sys.stderr)
    return r


def measure_data_path(plan: Plan) -> list[dict]:
    """DeviceLoader against DataLoader + PIL, batches only, at each DATA_PATH_SIZES side."""
    out = []
    for side, batch, nb in DATA_PATH_SIZES[plan.settings.mode]:
        model = "swin_tiny" if side > 32 else "resnet18"
        cfg = ExperimentConfig(model=model, img_size=side, device=str(plan.device)).resolved()
        dp_data = make_synthetic((nb + 2) * batch, 1, num_classes=NUM_CLASSES, seed=1)
        snap = cpu_snapshot()
        out.append(ref.data_path_comparison(dp_data, cfg=cfg, batch_size=batch, batches=nb,
                                            device=plan.device))
        out[-1].update(measured=now_iso(), other_cpu_share=other_cpu_share(snap, cpu_snapshot()))
    return out


def run_benchmark(settings: BenchSettings, deadline: float | None = None) -> dict:
    """Measure what `settings` asks for, write the result file and refresh settings.readmes;
    returns the result. `deadline` (a time.monotonic() value) stops the measurement there:
    the variant in progress and the rest are recorded as not measured."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    plan = make_plan(settings)
    setup_backends(plan.device)
    if plan.device.type == "cpu" and not settings.quick:
        print("note: full sizes are meant for a GPU; on a CPU use --quick", file=sys.stderr)
    started, load0 = now_iso(), os.getloadavg()
    data = _synthetic_for(plan)
    runs = []
    for entry in plan.runs:
        def write_so_far(row):                  # after every variant of this row
            write_result(plan, runs + [row], None, finished=False, started=started,
                         load0=load0)
        runs.append(measure_row(plan, entry, data, deadline, on_progress=write_so_far))
        write_result(plan, runs, None, finished=False, started=started, load0=load0)
    in_time = deadline is None or time.monotonic() < deadline
    data_path = measure_data_path(plan) if settings.data_path and in_time else None
    result = write_result(plan, runs, data_path, finished=True, started=started, load0=load0)
    for readme in filter(None, settings.readmes):
        render_readme(readme, os.path.dirname(os.path.abspath(plan.out_path)))
    return result
