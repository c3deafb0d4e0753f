"""Run the report's experiment grid through the notebooks: `python -m helpers.run`.

Every row of Tables 1 and 2 is one papermill execution of notebooks/problem1.ipynb or
notebooks/problem2.ipynb, with the row's parameters from helpers.grid; the executed copy
is kept in notebooks/runs/<results-dir name>/<run_name>.ipynb. Run it again after a
crash, a Ctrl-C or a Colab disconnect and it carries on where it stopped:

- a run whose result file is complete and was made with the same config is skipped;
- an interrupted run is started again, and the engine resumes it from its checkpoint;
- a complete run whose config changed (say more epochs) is trained again from scratch,
  and the runner says which fields changed;
- a run that fails is recorded (status "failed" and the reason) and the grid carries on;
  fine-tuning without reachable pretrained weights is recorded as "skipped".
It prints a summary table and exits 1 if any run failed (skipped runs are fine), else 0.

    python -m helpers.run                       # the CIFAR-100 grid (wants a GPU)
    python -m helpers.run --demo                # synthetic data, CPU-sized, + the report
    python -m helpers.run --only p1-resnet18 --epochs-p1 30 -p lr 0.1

Budgets
-------
Problem 1, P1_EPOCHS = 20. Cost: the five Problem 1 models together take ~6.4 GFLOPs per
image forward (our exact count: ResNet-18 ~1.1, the largest ViT ~3.3), so one epoch of
all five over 50k images is ~1 PFLOP of training (forward + backward ~3x forward). One
modern GPU in bf16, with the data already on the GPU, does that in seconds, so 20 epochs
of the whole problem take minutes (tens of minutes on a Colab T4). Accuracy: the usual
200-epoch ResNet-18 recipes reach the mid-to-high 70s % on CIFAR-100 (e.g. the
weiaicunzai/pytorch-cifar100 baselines); with a cosine schedule that reaches zero inside
the budget, a 15-20-epoch run is expected to land in the high 60s to low 70s, close
enough to show ResNet-18 near its real accuracy. ViTs from scratch need far longer
schedules, and the table shows that too. The result files, not this comment, say what
was reached.
Problem 2, P2_EPOCHS = 5: the homework's budget. Both are flags (--epochs-p1/-p2).
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from dataclasses import dataclass

from . import grid as grid_module
# Config fields that only say where/how fast a run executes: a result made on another GPU,
# in another precision or with another eval batch still counts as done. The same list
# decides whether a checkpoint may be resumed.
from .checkpoint import EXECUTION_FIELDS
from .config import ConfigError, ExperimentConfig
from .notebook import (NOTEBOOKS, REPO_ROOT, config_from_parameters, default_results_dir,
                       execute_notebook, notebook_parameters)

P1_EPOCHS = 20
P2_EPOCHS = 5
# What makes a grid row that row (its run name says so): never changed with -p. Other
# shapes are one papermill call away: `papermill notebooks/problem1.ipynb ... -p dim 128`.
IDENTITY_PARAMS = ("run_name", "model", "variant", "mode", "patch_size", "dim", "depth", "heads")

# The demo: synthetic data, sized so the whole grid plus report.md and report.pdf runs in
# minutes on 2 CPU cores: measured 2 min 12 s on 2 idle cores, 7 min when other jobs were
# sharing them (every run at chance accuracy: it shows the pipeline, not learning, which
# needs far more steps than a CPU budget allows). Swin keeps its real 224-px input, so its
# parameter and FLOP counts in the demo table are the real ones; it trains on a handful of
# images for one epoch, because one 224-px Swin image costs ~9-18 GFLOPs forward.
DEMO = dict(dataset="synthetic", results_dir="results/demo", epochs={1: 3, 2: 1},
            subsets={1: (256, 128), 2: (16, 16)}, batch_size={1: 64, 2: 8},
            # ResNet-18 gets enough images to show real learning on the 100 synthetic
            # classes within the CPU budget (about a minute on 2 cores); the other rows
            # stay tiny and only show that the pipeline runs.
            run_subsets={"p1-resnet18": (2000, 500)})


# ----------------------------------------------------------------------------- the plan
@dataclass
class Run:
    """One grid row: its notebook parameters and, if they are valid, the resolved config."""
    entry: dict
    params: dict
    cfg: ExperimentConfig | None = None
    error: str | None = None           # ConfigError message: the run cannot start

    @property
    def name(self) -> str:
        return self.entry["run_name"]

    @property
    def problem(self) -> int:
        return 2 if self.entry["model"].startswith("swin") else 1


@dataclass
class Outcome:
    run: str
    status: str                         # complete | failed | skipped
    note: str = ""
    test_acc: float | None = None
    epoch_time_s: float | None = None
    wall_s: float | None = None         # None: not executed this time
    reason: str | None = None


def parse_value(text: str):
    """A -p value as papermill would read it: None/True/False, a number, else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def repo_path(path: str | None) -> str | None:
    """A path given on the command line, relative to the repo root when it lies inside it
    (the notebooks work from the repo root, and result configs stay machine-independent)."""
    if path is None:
        return None
    full = os.path.abspath(path)
    rel = os.path.relpath(full, REPO_ROOT)
    return full if rel.startswith("..") else rel


def shown(path: str) -> str:
    """A path for the log: relative to the repo root when inside it, else absolute."""
    return os.path.normpath(repo_path(path))


def notebook_params(entry: dict, args, extra: dict, declared: frozenset) -> dict:
    """The papermill parameters of one grid entry: common options, the entry's own
    shape/mode, then the -p extras (notebook parameters directly, other config fields
    through the notebook's `overrides`)."""
    problem = 2 if entry["model"].startswith("swin") else 1
    train_subset, test_subset = args.run_subsets.get(entry["run_name"], args.subsets[problem])
    params = dict(run_name=entry["run_name"], epochs=args.epochs[problem],
                  dataset=args.dataset, train_subset=train_subset, test_subset=test_subset,
                  results_dir=args.results_dir, device=args.device, precision=args.precision,
                  seed=args.seed, batch_size=args.batch_size[problem])
    shape = {k: v for k, v in entry.items() if k not in ("run_name", "label")}
    if problem == 2:
        variant = shape.pop("model").split("_", 1)[1]
        params.update(variant=variant, **shape)
        if shape["mode"] != "scratch":             # scratch has nothing to load
            params["weights"] = args.weights[variant]
    else:
        params.update(shape)
    overrides = {k: v for k, v in extra.items() if k not in declared}
    params.update({k: v for k, v in extra.items() if k in declared})
    if overrides:
        params["overrides"] = overrides
    return params


def make_plan(entries: list[dict], args, extra: dict) -> list[Run]:
    """Parameters and resolved config of every run, before anything executes."""
    declared = {p: frozenset(notebook_parameters(NOTEBOOKS[p])) for p in (1, 2)}
    plan = []
    for entry in entries:
        problem = 2 if entry["model"].startswith("swin") else 1
        run = Run(entry, notebook_params(entry, args, extra, declared[problem]))
        try:
            run.cfg = config_from_parameters(run.problem, run.params)
        except (ConfigError, TypeError, ValueError) as err:   # one bad row never stops the grid
            run.error = str(err)
        plan.append(run)
    return plan


# ----------------------------------------------------------------------------- one run
def config_changes(old: dict, new: dict) -> list[str]:
    """'field: old -> new' for every config field that changes what is trained."""
    keys = sorted((set(old) | set(new)) - EXECUTION_FIELDS)
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def why_run(run: Run, force: bool) -> tuple[str, str] | None:
    """None if the run is already done; else (short note, why it must run) for the log."""
    from .results import read_result
    path = run.cfg.result_path
    if not os.path.exists(path) or not is_complete(path):
        stale = stale_checkpoint(run)
        if stale:
            drop_checkpoint(run.cfg.checkpoint_path)
            return "config changed", ("its checkpoint was made with another config ("
                                      + "; ".join(stale) + "): training from scratch")
    if not os.path.exists(path):
        if os.path.exists(run.cfg.checkpoint_path):
            return "resumed", "interrupted before: resuming from its checkpoint"
        return "new", "not run yet"
    try:
        old = read_result(path)
    except (OSError, ValueError) as err:      # e.g. a file edited by hand into bad JSON
        return "retried", f"unreadable result file ({err})"
    if old.get("status") != "complete":
        return "retried", f"previous attempt {old.get('status')}: {short(old.get('reason'))}"
    changes = config_changes(old.get("config") or {}, run.cfg.to_dict())
    if changes:
        # The checkpoint belongs to the finished run of the old config: it cannot resume
        # the new one (the engine would refuse it), so the new config starts from scratch.
        drop_checkpoint(run.cfg.checkpoint_path)
        return "config changed", ("complete, but with another config ("
                                  + "; ".join(changes) + "): training again from scratch")
    if force:
        drop_checkpoint(run.cfg.checkpoint_path)
        return "forced", "--force: training again from scratch"
    return None


def is_complete(path: str) -> bool:
    from .results import read_result
    try:
        return read_result(path).get("status") == "complete"
    except (OSError, ValueError):
        return False


def stale_checkpoint(run: Run) -> list[str]:
    """How the config of this run's checkpoint differs from the run's ([] if no checkpoint
    or the same). An interrupted run whose config has changed since cannot be resumed:
    its optimiser and schedule state belong to the other config."""
    if not os.path.exists(run.cfg.checkpoint_path):
        return []
    from .checkpoint import load_checkpoint
    try:
        saved = load_checkpoint(run.cfg.checkpoint_path)["config"]
    except Exception as err:  # noqa: BLE001  (truncated or foreign file: cannot resume it)
        return [f"unreadable checkpoint ({type(err).__name__})"]
    return config_changes(saved, run.cfg.to_dict())


def drop_checkpoint(path: str) -> None:
    if os.path.exists(path):
        os.remove(path)


def short(text, n: int = 100) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[:n - 1] + "…"


def record(run: Run, status: str, reason: str, started: str) -> None:
    """Write the result of a run that died before the engine could write one. What was
    never measured (sizes, metrics, the device) is null rather than guessed."""
    from .results import now_iso, provenance, write_result
    config = run.cfg.to_dict() if run.cfg else dict(run.params)
    dataset = config.get("dataset")
    result = dict(run_name=run.name, problem=run.problem, model=run.entry["model"],
                  label=run.entry.get("label"), config=config,
                  dataset=dict(name=dataset, synthetic=dataset == "synthetic"),
                  params=None, trainable_params=None, macs_thop=None, flops=None, history=[],
                  epoch_time_s=None, epoch_time_note="no epoch finished",
                  first_epoch_time_s=None, total_train_time_s=0.0, eval_time_s=0.0,
                  test_acc=None, train_acc=None, status=status, reason=reason)
    result["provenance"] = provenance(seed=config.get("seed"), compile=config.get("compile"),
                                      started=started, finished=now_iso())
    write_result(result, config.get("results_dir") or default_results_dir(dataset))


def outcome_from_file(run: Run, note: str, wall_s: float | None) -> Outcome:
    from .results import read_result
    r = read_result(run.cfg.result_path)
    return Outcome(run.name, r["status"], note, r.get("test_acc"), r.get("epoch_time_s"),
                   wall_s, r.get("reason"))


def execute(run: Run, executed_dir: str, force: bool = False) -> Outcome:
    """Run one grid row (or skip it) and return what happened; never raises for a failed run."""
    from .results import now_iso

    started = now_iso()
    if run.error:
        print(f"[{run.name}] invalid config: {run.error}", flush=True)
        record(run, "failed", f"ConfigError: {run.error}", started)
        return Outcome(run.name, "failed", "invalid config", reason=run.error)
    todo = why_run(run, force)
    if todo is None:
        print(f"[{run.name}] already complete with this config: skipped", flush=True)
        return outcome_from_file(run, "already complete", None)
    output = os.path.join(executed_dir, f"{run.name}.ipynb")
    note, why = todo
    print(f"[{run.name}] {why}; executing {shown(NOTEBOOKS[run.problem])} -> {shown(output)}",
          flush=True)
    t0 = time.perf_counter()
    status, reason, ename = attempt(run, output, started)
    if ename in UNUSABLE_CHECKPOINT:
        # The checkpoint cannot resume this run (a foreign file, a torch that cannot read
        # it): resuming it again would fail again, so the row trains from scratch, once.
        drop_checkpoint(run.cfg.checkpoint_path)
        note = "checkpoint unusable"
        print(f"[{run.name}] {short(reason, 300)}\n[{run.name}] deleted that checkpoint; "
              "training from scratch", flush=True)
        status, reason, ename = attempt(run, output, started)
    wall = time.perf_counter() - t0
    if status is None:
        return outcome_from_file(run, note, wall)
    print(f"[{run.name}] {status}: {short(reason, 300)}", flush=True)
    out = outcome_from_file(run, note, wall)
    out.reason = out.reason or reason
    return out


UNUSABLE_CHECKPOINT = ("CheckpointUnusableError", "CheckpointMismatchError")


def attempt(run: Run, output: str, started: str) -> tuple[str | None, str | None, str | None]:
    """Execute the row's notebook once: (None, None, None) when it completed, else
    (status, reason, exception name); a result file is on disk either way."""
    from papermill.exceptions import PapermillExecutionError
    path = run.cfg.result_path
    before = os.stat(path).st_mtime_ns if os.path.exists(path) else None
    try:
        execute_notebook(NOTEBOOKS[run.problem], output, run.params)
        return None, None, None
    except PapermillExecutionError as err:
        # WeightsUnavailableError: the machine cannot get pretrained weights. That is a
        # property of the machine, not a bug in the run, so the row is "skipped".
        ename = err.ename
        status = "skipped" if ename == "WeightsUnavailableError" else "failed"
        reason = f"{ename}: {err.evalue}"
    except Exception as err:  # noqa: BLE001  (a dead kernel, a broken notebook): record, go on
        ename, status, reason = type(err).__name__, "failed", f"{type(err).__name__}: {err}"
    after = os.stat(path).st_mtime_ns if os.path.exists(path) else None
    if after is None or after == before:     # the engine wrote nothing for this attempt
        record(run, status, reason, started)
    return status, reason, ename


# ----------------------------------------------------------------------------- summary
def summary_table(outcomes: list[Outcome]) -> str:
    def fmt(x, spec):
        return "-" if x is None else format(x, spec)
    rows = [("run", "status", "test acc (%)", "epoch time (s)*", "wall (s)", "note")]
    rows += [(o.run, o.status, fmt(o.test_acc, ".2f"), fmt(o.epoch_time_s, ".2f"),
              fmt(o.wall_s, ".0f"), o.note) for o in outcomes]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) if i in (0, 1, 5) else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.append("* mean training time per epoch as the result file records it (evaluation "
                 "excluded); wall = this execution, kernel start included")
    reasons: dict[tuple, list[str]] = {}       # the same reason once, with all its runs
    for o in outcomes:
        if o.status != "complete" and o.reason:
            reasons.setdefault((o.status, o.reason), []).append(o.run)
    for (status, reason), names in reasons.items():
        lines.append(f"{', '.join(names)} ({status}): {short(reason, 400)}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m helpers.run",
        description="Execute the report's experiment grid through notebooks/problem1.ipynb "
                    "and problem2.ipynb. Completed runs are skipped, interrupted ones resume.")
    ap.add_argument("--problems", type=int, nargs="+", choices=(1, 2), default=[1, 2])
    ap.add_argument("--only", nargs="+", metavar="RUN_NAME",
                    help="run only these grid rows (see --list)")
    ap.add_argument("--list", action="store_true", help="print the grid rows and exit")
    ap.add_argument("--demo", action="store_true",
                    help="synthetic data, CPU-sized budgets, results/demo, then the report")
    ap.add_argument("--dataset", help="cifar100 (default) | synthetic | path/to/file.npz")
    ap.add_argument("--epochs-p1", type=int, help=f"Problem 1 epochs (default {P1_EPOCHS})")
    ap.add_argument("--epochs-p2", type=int, help=f"Problem 2 epochs (default {P2_EPOCHS})")
    ap.add_argument("--train-subset", type=int, help="training images per run (default all)")
    ap.add_argument("--test-subset", type=int, help="test images per run (default all)")
    ap.add_argument("--batch-size", type=int, help="training batch (default: per model)")
    ap.add_argument("--results-dir", help="result JSONs and checkpoints (default "
                                          "results/<dataset>, e.g. results/cifar100)")
    ap.add_argument("--executed-dir",
                    help="executed notebooks (default notebooks/runs/<results-dir name>)")
    ap.add_argument("--weights-tiny", help="local Swin-Tiny ImageNet weights (default: timm hub)")
    ap.add_argument("--weights-small", help="local Swin-Small ImageNet weights (default: hub)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    ap.add_argument("--precision", default="auto", help="auto | bf16 | fp16 | fp32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-p", "--param", nargs=2, action="append", default=[],
                    metavar=("NAME", "VALUE"),
                    help="any other config field for every run, e.g. -p lr 0.1 -p augment False")
    ap.add_argument("--force", action="store_true",
                    help="train complete runs again from scratch")
    ap.add_argument("--report", action=argparse.BooleanOptionalAction, default=True,
                    help="at the end, write report.md, figures and (where LaTeX is installed) "
                         "report.pdf; the demo's go into its results folder")
    return ap


def resolve_args(args) -> None:
    """Fill defaults (the demo preset where --demo), per problem, in place."""
    demo = DEMO if args.demo else {}
    args.dataset = args.dataset or demo.get("dataset", "cifar100")
    if args.dataset.endswith(".npz"):
        args.dataset = repo_path(args.dataset)
    args.results_dir = repo_path(args.results_dir or demo.get("results_dir")
                                 or default_results_dir(args.dataset))
    d_epochs = demo.get("epochs", {1: P1_EPOCHS, 2: P2_EPOCHS})
    args.epochs = {1: args.epochs_p1 or d_epochs[1], 2: args.epochs_p2 or d_epochs[2]}
    d_sub = demo.get("subsets", {1: (None, None), 2: (None, None)})
    args.subsets = {p: (args.train_subset or d_sub[p][0], args.test_subset or d_sub[p][1])
                    for p in (1, 2)}
    # Per-run demo sizes apply only while the user sets no subset of their own.
    args.run_subsets = ({} if args.train_subset or args.test_subset
                        else demo.get("run_subsets", {}))
    d_batch = demo.get("batch_size", {1: None, 2: None})
    args.batch_size = {p: args.batch_size or d_batch[p] for p in (1, 2)}
    args.weights = {"tiny": repo_path(args.weights_tiny), "small": repo_path(args.weights_small)}
    for variant, path in args.weights.items():
        if path is not None and not os.path.isfile(path):
            raise SystemExit(f"error: --weights-{variant} {path}: no such file")
    args.executed_dir = os.path.abspath(args.executed_dir or os.path.join(
        REPO_ROOT, "notebooks", "runs", os.path.basename(os.path.normpath(args.results_dir))))


def select(args) -> list[dict]:
    entries = grid_module.grid(tuple(args.problems))
    if args.only:
        known = {e["run_name"] for e in grid_module.grid()}
        unknown = [n for n in args.only if n not in known]
        if unknown:
            raise SystemExit(f"error: --only {unknown}: not in the grid; valid run names: "
                             f"{', '.join(sorted(known))}")
        entries = [e for e in grid_module.grid() if e["run_name"] in args.only]
    return entries


def report_paths(results_dir: str) -> dict:
    """Where the report of a results folder goes. The CIFAR-100 grid's report is the
    repository's report (report.md, figures/, report.pdf); any other folder (the demo)
    keeps its report inside itself, so it can never be mistaken for the real one."""
    base = os.path.basename(os.path.normpath(results_dir))
    where = "." if base == "cifar100" else results_dir
    return dict(md=os.path.join(where, "report.md"), pdf=os.path.join(where, "report.pdf"),
                figures=os.path.join(where, "figures"),
                executed=os.path.join(REPO_ROOT, "notebooks", "runs", base, "summary.ipynb"))


def top_level_report_free() -> bool:
    """True when the top-level report.md is absent or is itself a demo report."""
    from .report import DEMO_BANNER
    path = os.path.join(REPO_ROOT, "report.md")
    if not os.path.exists(path):
        return True
    with open(path, encoding="utf-8") as f:
        return f.readline().startswith(DEMO_BANNER)


def write_report(results_dir: str) -> None:
    """report.md and figures from the results; the PDF too where LaTeX is installed."""
    from .pdf import build_pdf, missing_latex_tools
    from .report import write_report as write_md
    out = report_paths(results_dir)
    rep = write_md(results_dir, out["md"], out["figures"])
    print(f"\nwrote {shown(out['md'])} ({len(rep.runs)} result files, "
          f"{len(rep.flags)} flag(s)), figures in {shown(out['figures'])}/", flush=True)
    if out["md"] != os.path.join(".", "report.md") and top_level_report_free():
        # The design card's top-level report.md / figures/ show the demo until a real
        # CIFAR-100 grid writes them; a real report is never overwritten by a demo.
        write_md(results_dir, os.path.join(REPO_ROOT, "report.md"),
                 os.path.join(REPO_ROOT, "figures"))
        print("also wrote report.md and figures/ at the top level (labelled as a demo; "
              "the CIFAR-100 grid replaces them)", flush=True)
    missing = missing_latex_tools()
    if missing:
        print(f"no PDF: {', '.join(missing)} not installed (see `make pdf`)")
        return
    pdf = build_pdf(results_dir, out["pdf"], report_path=out["md"], figures_dir=out["figures"],
                    executed_nb=out["executed"])
    print(f"wrote {shown(pdf)}")


def main(argv=None, entries: list[dict] | None = None) -> int:
    """CLI entry point. `entries` replaces the grid (the tests run tiny grids through it)."""
    args = build_parser().parse_args(argv)
    resolve_args(args)
    extra = {}
    settable = set(ExperimentConfig().to_dict()) - set(IDENTITY_PARAMS)
    for name, value in args.param:
        if name in IDENTITY_PARAMS:
            raise SystemExit(f"error: -p {name}: part of what a grid row is; choose rows with "
                             "--only, or run a notebook with papermill for another shape")
        if name not in settable:
            raise SystemExit(f"error: -p {name}: unknown; valid names: {', '.join(sorted(settable))}")
        extra[name] = parse_value(value)
    entries = select(args) if entries is None else entries
    if args.list:
        for e in entries:
            print(e["run_name"])
        return 0
    os.chdir(REPO_ROOT)                 # the notebooks' relative paths are repo-relative
    plan = make_plan(entries, args, extra)
    print(f"{len(plan)} run(s): dataset {args.dataset}, results in {args.results_dir}, "
          f"executed notebooks in {shown(args.executed_dir)}", flush=True)
    t0 = time.perf_counter()
    outcomes = []
    try:
        for run in plan:
            outcomes.append(execute(run, args.executed_dir, args.force))
    except KeyboardInterrupt:
        print("\ninterrupted: finished runs are kept; run the same command again to resume.")
        print(summary_table(outcomes))
        return 130
    print(f"\n{summary_table(outcomes)}\ntotal wall time {time.perf_counter() - t0:.0f} s")
    if args.report:
        write_report(args.results_dir)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
