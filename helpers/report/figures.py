"""The report's figures (learning curves, accuracy against cost), from result dicts only,
drawn as helpers/curves.py draws: on an Agg canvas, with no pyplot state."""
from __future__ import annotations

import os

from matplotlib.figure import Figure

from .. import grid
from ..curves import legend_label, new_figure, plot_curves, save_figure
from .seeds import seed_rows

MODE_MARKERS = {"finetune": "s", "finetune_full": "D", "scratch": "o"}


def in_table_order(runs: dict) -> list[dict]:
    """Result dicts in the tables' order: the grid first, then extra runs by name."""
    order = {e["run_name"]: i for i, e in enumerate(grid.grid())}
    return sorted(runs.values(), key=lambda r: (order.get(r["run_name"], len(order)),
                                                r["run_name"]))


def curves_figure(runs: dict, path: str | None = None) -> Figure | None:
    """One row per problem that has complete runs: test accuracy and test loss per epoch
    of each of them. Runs that did not complete are not drawn (the caption lists them),
    and a problem without complete runs gets no row, so no panel is ever empty. None
    when nothing completed."""
    done = [r for r in in_table_order(runs) if r["status"] == "complete" and r.get("history")]
    problems = [p for p in (1, 2) if any(r["problem"] == p for r in done)]
    if not problems:
        return None
    fig, axes = new_figure(len(problems), 2, (11, 3.75 * len(problems)))
    for row, problem in enumerate(problems):
        plot_curves([r for r in done if r["problem"] == problem], axes=axes[row],
                    title=f"Problem {problem}")
    save_figure(fig, path)
    return fig


def scatter_figure(points, xlabel: str, ylabel: str, title: str, logx: bool = False,
                   path: str | None = None) -> Figure | None:
    """points: (x, y, label, marker, x sd, y sd) tuples. Each point has its own colour and
    a legend entry (beside the axes), so labels never overlap one another or the points;
    a point with a standard deviation (2+ seeds) gets error bars of ± 1 sd. None (and no
    file) when there are no points."""
    if not points:
        return None
    fig, axes = new_figure(1, 1, (7.5, 4.2))
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
    save_figure(fig, path)
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
