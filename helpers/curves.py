"""Learning curves from result dicts: what a notebook draws after its run, and the report's
curves figure.

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

from .config import MODE_WORDS, is_swin

MODE_SHORT = {mode: legend for mode, (_, _, legend) in MODE_WORDS.items()}


def legend_label(r: dict) -> str:
    """Legend label: the result's label, plus the Swin mode and a non-complete status."""
    label = r.get("label") or r.get("run_name", "?")
    mode = (r.get("config") or {}).get("mode")
    if is_swin(r.get("model", "")) and mode:
        label += f", {MODE_SHORT.get(mode, mode)}"
    if r.get("status", "complete") != "complete":
        label += f" ({r['status']})"
    return label


def new_figure(nrows: int, ncols: int, size: tuple[float, float]):
    """A figure on its own Agg canvas, and its nrows x ncols axes (always a 2-D array)."""
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def save_figure(fig: Figure, path: str | None) -> str | None:
    """Save a PNG at path (its folder made as needed); no path, no file."""
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=120)
    return path


def _values(history: list[dict], key: str) -> list[float]:
    """One metric per epoch; a missing or null value (a non-finite loss) is a gap."""
    return [math.nan if h.get(key) is None else h[key] for h in history]


def _sd_band(ax, epochs: list[int], mean: list[float], sd: list[float], color) -> None:
    """± 1 sd around the mean of 2+ seeds; an error bar where there is one epoch."""
    if len(epochs) == 1:
        ax.errorbar(epochs, mean, yerr=sd, fmt="none", capsize=3, ecolor=color)
    else:
        ax.fill_between(epochs, [m - d for m, d in zip(mean, sd)],
                        [m + d for m, d in zip(mean, sd)], color=color, alpha=0.2, linewidth=0)


def plot_curves(results, axes=None, path: str | None = None, title: str | None = None) -> Figure:
    """Test accuracy and test loss per epoch for one result dict or a list of them.

    axes: a pair (accuracy axes, loss axes) to draw into; None makes a new 1x2 figure.
    path: save a PNG there. Runs that did not complete are drawn dashed.
    """
    runs = [results] if isinstance(results, dict) else list(results)
    if axes is None:
        _, grid_axes = new_figure(1, 2, (10, 3.6))
        axes = grid_axes[0]
    acc_ax, loss_ax = axes
    all_epochs = set()
    for r in (r for r in runs if r.get("history")):
        hist = r["history"]
        epochs = [h["epoch"] for h in hist]
        style = "-" if r.get("status", "complete") == "complete" else "--"
        color = None                            # the accuracy line's, for the loss too
        for ax, key in ((acc_ax, "test_acc"), (loss_ax, "test_loss")):
            line, = ax.plot(epochs, _values(hist, key), style, marker=".",
                            label=legend_label(r), color=color)
            color = line.get_color()
            if r.get("history_sd"):             # 2+ seeds: the mean, and ± 1 sd around it
                _sd_band(ax, epochs, _values(hist, key),
                         [h.get(key) or 0.0 for h in r["history_sd"]], color)
        all_epochs.update(epochs)
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
        if not all_epochs:
            ax.text(0.5, 0.5, "no epochs recorded", ha="center", va="center",
                    transform=ax.transAxes)
    if all_epochs:
        acc_ax.legend(fontsize=7)
    save_figure(acc_ax.figure, path)
    return acc_ax.figure
