"""The report's figures, from result dicts only, drawn as helpers/curves.py draws: on an
Agg canvas, with no pyplot state. Problems 1-2: learning curves and accuracy against cost,
in the report's Figures section; Problem 3: one figure per study or probe, each placed
beside the claims it rests on (claims.CLAIM_FIGURE)."""
from __future__ import annotations

import os
import statistics

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..curves import legend_label, new_figure, plot_curves, save_figure
from .claims import resnet_fields, study_points, vit_probes
from .seeds import seed_rows
from .stats import mean_sd
from .tables import MODE_PROSE, table_rows

MODE_MARKERS = {"finetune": "s", "finetune_full": "D", "scratch": "o"}


def _complete(runs: dict) -> list[dict]:
    """The complete results among `runs`, in the tables' order (tables.table_rows)."""
    return [r for p in (1, 2) for *_, r in table_rows(runs, p)
            if r and r["status"] == "complete"]


def curves_figure(runs: dict, path: str | None = None) -> Figure | None:
    """One row per problem that has complete runs: test accuracy and test loss per epoch
    of each of them. Runs that did not complete are not drawn (the caption lists them),
    and a problem without complete runs gets no row, so no panel is ever empty. None
    when nothing completed."""
    done = [r for r in _complete(runs) if r.get("history")]
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
        absent = [f"{r['run_name']} ({r['status']})" for p in problems
                  for *_, r in table_rows(rows, p) if r and r["status"] != "complete"]
        out[name] = CAPTIONS[name] + (f". Not drawn: {', '.join(absent)}" if absent else "")
    return out


def make_figures(runs: dict, figures_dir: str) -> dict[str, str]:
    """The report's figures as PNGs in figures_dir, one mark per grid row (its seeds
    combined: mean, with ± 1 sd bars and bands from 2 seeds up); returns name -> path of
    the figures drawn (one with nothing to show is left out, and an old copy removed).
    Problem 3's are claims_figures'."""
    runs = {k: r for k, r in seed_rows(runs).items() if r["problem"] in (1, 2)}
    done = _complete(runs)
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
    # A frozen backbone can be orders of magnitude faster per epoch
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


# ----------------------------------------------------------------------------- Problem 3
def _line(ax, xs, seed_lists, label, **kw):
    """Mean over seeds at each x, with the seeds' sd as error bars (none for one seed)."""
    stats = [mean_sd(v) for v in seed_lists]
    ax.errorbar(xs, [m for m, _ in stats], yerr=[s or 0.0 for _, s in stats], capsize=3,
                marker="o", label=label, **kw)


def data_figure(runs: dict, path: str) -> str | None:
    """Test accuracy (solid) and train-sample accuracy (dashed) against training images."""
    points = study_points(runs, "data_efficiency", "train_fraction", "label")
    if not points:
        return None
    fig, ((ax,),) = new_figure(1, 1, (6.4, 4))
    for i, (label, by_share) in enumerate(sorted(points.items())):
        shares = sorted(by_share)
        xs = [by_share[f][0]["dataset"]["n_train"] for f in shares]
        colour = f"C{i}"
        _line(ax, xs, [[r["test_acc"] for r in by_share[f]] for f in shares], f"{label} test",
              color=colour)
        train = [[r["train_eval_acc"] for r in by_share[f] if r.get("train_eval_acc") is not None]
                 for f in shares]
        if all(train):
            _line(ax, xs, train, f"{label} train sample", color=colour, linestyle="--",
                  alpha=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("training images (same optimiser steps at every point)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def attention_figure(runs: dict, path: str) -> str | None:
    """Left: each ViT's mean attention distance per block (dots: every seed's heads; line:
    the heads' mean, ± sd over seeds), with uniform attention's distance; right: ResNet-18's
    receptive field per stage."""
    vits, fields = vit_probes(runs), resnet_fields(runs)
    if not vits and not fields:
        return None
    fig, ((left, right),) = new_figure(1, 2, (10, 3.8))
    for i, (row, rs) in enumerate(sorted(vits.items())):
        seeds = [r["probes"]["attention_distance_px"] for r in rs]     # seed -> block -> heads
        blocks = range(1, len(seeds[0]) + 1)
        for b in blocks:
            heads = [d for per_block in seeds for d in per_block[b - 1]]
            left.scatter([b] * len(heads), heads, color=f"C{i}", s=12, alpha=0.5)
        _line(left, list(blocks), [[statistics.fmean(s[b - 1]) for s in seeds] for b in blocks],
              rs[0]["label"] + ("" if rs[0].get("problem") == 1 else f" [{row}]"), color=f"C{i}")
        left.axhline(rs[0]["probes"]["uniform_distance_px"], color="grey", linestyle=":",
                     label="uniform attention (the whole image)" if i == 0 else None)
    if fields:
        first = next(f for f in fields if f["stage"] != "stem")
        left.axhline((first["receptive_field_px"] - 1) / 2, color="k", linestyle="--",
                     label=f"ResNet-18 {first['stage']} receptive-field radius")
        right.plot([f["stage"] for f in fields], [f["receptive_field_px"] for f in fields],
                   marker="o", color="k")
        size = next((r["probes"]["img_size"] for r in runs.values()
                     if (r.get("probes") or {}).get("receptive_field")), None)
        if size:
            right.axhline(size, color="grey", linestyle=":", label=f"image side ({size} px)")
            right.legend(fontsize=7)
    left.xaxis.set_major_locator(MaxNLocator(integer=True))
    left.set_xlabel("ViT block")
    left.set_ylabel("mean attention distance (px)")
    left.legend(fontsize=7)
    right.set_ylabel("ResNet-18 receptive field (px)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def resolution_figure(runs: dict, path: str) -> str | None:
    """Swin-T's fine-tunes: test accuracy and time per epoch against input size."""
    points = study_points(runs, "resolution", "img_size", "mode")
    if not points:
        return None
    fig, ((acc, cost),) = new_figure(1, 2, (10, 3.6))
    for mode, by_px in sorted(points.items()):
        xs = sorted(by_px)
        name = MODE_PROSE.get(mode, mode)
        _line(acc, xs, [[r["test_acc"] for r in by_px[x]] for x in xs], name)
        _line(cost, xs, [[r["epoch_time_s"] for r in by_px[x]] for x in xs], name)
    acc.set_ylabel("test accuracy (%)")
    cost.set_ylabel("training time per epoch (s)")
    cost.set_yscale("log")
    for ax in (acc, cost):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({x for by_px in points.values() for x in by_px}))
        ax.set_xticklabels([str(x) for x in ax.get_xticks()])
        ax.set_xlabel("input side (px)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def epochs_figure(runs: dict, path: str) -> str | None:
    """Test accuracy after each epoch of the frozen and the full fine-tune, at the largest
    input size of the resolution study (mean over seeds)."""
    points = study_points(runs, "resolution", "img_size", "mode")
    if not points:
        return None
    fig, ((ax,),) = new_figure(1, 1, (6.4, 3.8))
    for mode, by_px in sorted(points.items()):
        px = max(by_px)
        curves = [[h for h in r["history"] if h.get("test_acc") is not None] for r in by_px[px]]
        n = min(len(c) for c in curves)
        _line(ax, [c["epoch"] for c in curves[0][:n]],
              [[c[i]["test_acc"] for c in curves] for i in range(n)],
              f"{MODE_PROSE.get(mode, mode)}, {px} px")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


CLAIMS_FIGURES = {"claims_data": data_figure, "claims_attention": attention_figure,
           "claims_resolution": resolution_figure, "claims_epochs": epochs_figure}


def claims_figures(runs: dict, figures_dir: str) -> dict[str, str]:
    """Draw every Problem 3 figure the runs allow; name -> PNG path."""
    out = {}
    for name, draw in CLAIMS_FIGURES.items():
        path = draw(runs, os.path.join(figures_dir, f"{name}.png"))
        if path:
            out[name] = path
    return out
