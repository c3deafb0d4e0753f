"""Figures for the report and the per-experiment notebooks, from result dicts only.

Drawn with matplotlib's object API on an Agg canvas rather than pyplot: no global figure
state, no GUI backend needed on a headless machine, and a notebook's own backend is left
alone. `plot_curves` also draws into axes the caller owns (a notebook's pyplot figure).
"""
from __future__ import annotations

import math
import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .. import grid
from ..config import is_swin
from .seeds import seed_rows

MODE_SHORT = {"finetune": "frozen FT", "finetune_full": "full FT", "scratch": "scratch"}
MODE_MARKERS = {"finetune": "s", "finetune_full": "D", "scratch": "o"}


def legend_label(r: dict) -> str:
    """Legend label: the result's label, plus the Swin mode and a non-complete status."""
    label = r.get("label") or r.get("run_name", "?")
    mode = (r.get("config") or {}).get("mode")
    if is_swin(r.get("model", "")) and mode:
        label += f", {MODE_SHORT.get(mode, mode)}"
    if r.get("status", "complete") != "complete":
        label += f" ({r['status']})"
    return label


def in_table_order(runs: dict) -> list[dict]:
    """Result dicts in the tables' order: the grid first, then extra runs by name."""
    order = {e["run_name"]: i for i, e in enumerate(grid.grid())}
    return sorted(runs.values(), key=lambda r: (order.get(r["run_name"], len(order)),
                                                r["run_name"]))


def _new_figure(nrows: int, ncols: int, size: tuple[float, float]):
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _save(fig: Figure, path: str | None) -> None:
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=120)


def _values(history: list[dict], key: str) -> list[float]:
    """One metric per epoch; a missing or null value (a non-finite loss) is a gap."""
    return [math.nan if h.get(key) is None else h[key] for h in history]


def plot_curves(results, axes=None, path: str | None = None, title: str | None = None) -> Figure:
    """Test accuracy and test loss per epoch for one result dict or a list of them.

    axes: a pair (accuracy axes, loss axes) to draw into; None makes a new 1x2 figure.
    path: save a PNG there. Runs that did not complete are drawn dashed.
    """
    runs = [results] if isinstance(results, dict) else list(results)
    if axes is None:
        fig, grid_axes = _new_figure(1, 2, (10, 3.6))
        acc_ax, loss_ax = grid_axes[0]
    else:
        acc_ax, loss_ax = axes
        fig = acc_ax.figure
    drawn, all_epochs = 0, set()
    for r in runs:
        hist = r.get("history") or []
        if not hist:
            continue
        epochs = [h["epoch"] for h in hist]
        style = "-" if r.get("status", "complete") == "complete" else "--"
        line, = acc_ax.plot(epochs, _values(hist, "test_acc"), style, marker=".",
                            label=legend_label(r))
        loss_ax.plot(epochs, _values(hist, "test_loss"), style, marker=".",
                     color=line.get_color(), label=legend_label(r))
        if r.get("history_sd"):                 # 2+ seeds: the mean, and ± 1 sd around it
            for ax, key in ((acc_ax, "test_acc"), (loss_ax, "test_loss")):
                mean = _values(hist, key)
                sd = [h.get(key) or 0.0 for h in r["history_sd"]]
                if len(epochs) == 1:            # a band needs two epochs: an error bar
                    ax.errorbar(epochs, mean, yerr=sd, fmt="none", capsize=3,
                                ecolor=line.get_color())
                else:
                    ax.fill_between(epochs, [m - d for m, d in zip(mean, sd)],
                                    [m + d for m, d in zip(mean, sd)],
                                    color=line.get_color(), alpha=0.2, linewidth=0)
        all_epochs.update(epochs)
        drawn += 1
    for ax, ylabel in ((acc_ax, "test accuracy (%)"), (loss_ax, "test loss")):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))   # epochs are whole numbers
        if len(all_epochs) == 1:      # one epoch: a marker at that tick, not a 0.1-wide axis
            (only,) = all_epochs
            ax.set_xlim(only - 1, only + 1)
            ax.set_xticks([only])
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if title:
            ax.set_title(f"{title}: {ylabel.split(' (')[0]}")
        if not drawn:
            ax.text(0.5, 0.5, "no epochs recorded", ha="center", va="center",
                    transform=ax.transAxes)
    if drawn:
        acc_ax.legend(fontsize=7)
    _save(fig, path)
    return fig


def curves_figure(runs: dict, path: str | None = None) -> Figure | None:
    """One row per problem that has complete runs: test accuracy and test loss per epoch
    of each of them. Runs that did not complete are not drawn (the caption lists them),
    and a problem without complete runs gets no row, so no panel is ever empty. None
    when nothing completed."""
    done = [r for r in in_table_order(runs) if r["status"] == "complete" and r.get("history")]
    problems = [p for p in (1, 2) if any(r["problem"] == p for r in done)]
    if not problems:
        return None
    fig, axes = _new_figure(len(problems), 2, (11, 3.75 * len(problems)))
    for row, problem in enumerate(problems):
        plot_curves([r for r in done if r["problem"] == problem], axes=axes[row],
                    title=f"Problem {problem}")
    _save(fig, path)
    return fig


def scatter_figure(points, xlabel: str, ylabel: str, title: str, logx: bool = False,
                   path: str | None = None) -> Figure | None:
    """points: (x, y, label, marker, x sd, y sd) tuples. Each point has its own colour and
    a legend entry (beside the axes), so labels never overlap one another or the points;
    a point with a standard deviation (2+ seeds) gets error bars of ± 1 sd. None (and no
    file) when there are no points."""
    if not points:
        return None
    fig, axes = _new_figure(1, 1, (7.5, 4.2))
    ax = axes[0][0]
    for x, y, label, marker, xsd, ysd in points:
        dots = ax.scatter([x], [y], marker=marker, s=45, label=label, zorder=3)
        if xsd or ysd:
            ax.errorbar([x], [y], xerr=xsd, yerr=ysd, fmt="none", capsize=3, linewidth=1,
                        ecolor=dots.get_facecolor()[0])
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ys = [p[1] for p in points]
    lo, hi = min(ys), max(ys)
    pad = max(1.0, 0.15 * (hi - lo))          # a single point, or a tie, still gets a range
    ax.set_ylim(max(0.0, lo - pad), min(100.0, hi + pad) if hi <= 100 else hi + pad)
    ax.margins(x=0.15)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    _save(fig, path)
    return fig


CAPTIONS = {
    "curves": "Test accuracy and test loss per epoch, every complete run",
    "p1_acc_vs_params": "Problem 1: test accuracy vs parameters (log scale)",
    "p1_acc_vs_flops": "Problem 1: test accuracy vs exact FLOPs per image (log scale)",
    "p2_time_vs_acc": "Problem 2: test accuracy vs training time per epoch",
}


def figure_captions(runs: dict, names) -> dict[str, str]:
    """Each drawn figure's caption, naming the runs of its problem(s) that are not in it
    because they did not complete (skipped, failed), with their status."""
    rows = seed_rows(runs)
    out = {}
    for name in names:
        problems = (1, 2) if name == "curves" else (int(name[1]),)
        absent = [f"{r['run_name']} ({r['status']})" for r in in_table_order(rows)
                  if r["problem"] in problems and r["status"] != "complete"]
        out[name] = CAPTIONS[name] + (f". Not drawn: {', '.join(absent)}" if absent else "")
    return out


def make_figures(runs: dict, figures_dir: str) -> dict[str, str]:
    """The report's figures as PNGs in figures_dir, one mark per grid row (its seeds
    combined: mean, with ± 1 sd bars and bands from 2 seeds up); returns name -> path of
    the figures drawn (one with nothing to show is left out, and an old copy removed).
    Problem 3 draws its own (report/claims_figures.py)."""
    runs = {k: r for k, r in seed_rows(runs).items() if r["problem"] in (1, 2)}
    done = [r for r in in_table_order(runs) if r["status"] == "complete"]
    p1 = [r for r in done if r["problem"] == 1]
    p2 = [r for r in done if r["problem"] == 2]

    def pts(rs, xkey, marker=lambda r: "o"):
        return [(r[xkey], r["test_acc"], legend_label(r), marker(r), r.get(f"{xkey}_sd"),
                 r.get("test_acc_sd")) for r in rs
                if r.get(xkey) and r.get("test_acc") is not None]

    paths = {k: os.path.join(figures_dir, f"{k}.png") for k in CAPTIONS}
    drawn = {"curves": curves_figure(runs, paths["curves"])}
    drawn["p1_acc_vs_params"] = scatter_figure(
        pts(p1, "params"), "parameters (log scale)", "test accuracy (%)",
        "Problem 1: accuracy vs parameters", True, paths["p1_acc_vs_params"])
    drawn["p1_acc_vs_flops"] = scatter_figure(
        pts(p1, "flops"), "exact FLOPs per image (log scale)", "test accuracy (%)",
        "Problem 1: accuracy vs FLOPs", True, paths["p1_acc_vs_flops"])
    p2_points = pts(p2, "epoch_time_s",
                    lambda r: MODE_MARKERS.get((r.get("config") or {}).get("mode"), "o"))
    times = [p[0] for p in p2_points]
    # A frozen backbone (or cached features) can be orders of magnitude faster per epoch
    # than full training; a log axis keeps both ends readable then.
    wide = bool(times) and max(times) / min(times) > 20
    drawn["p2_time_vs_acc"] = scatter_figure(
        p2_points, "training time per epoch (s)" + (", log scale" if wide else ""),
        "test accuracy (%)", "Problem 2: accuracy vs time per epoch", wide,
        paths["p2_time_vs_acc"])
    for name, fig in drawn.items():          # a figure with nothing to show is not kept
        if fig is None and os.path.exists(paths[name]):
            os.remove(paths[name])
    return {name: paths[name] for name, fig in drawn.items() if fig is not None}
