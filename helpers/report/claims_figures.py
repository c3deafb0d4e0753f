"""Problem 3's figures, one per study or probe, each drawn from the result files alone."""
from __future__ import annotations

import os
import statistics

from matplotlib.ticker import MaxNLocator

from ..curves import new_figure, save_figure
from .claims import MODE_NAMES, resnet_fields, study_points, vit_probes


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _line(ax, xs, seed_lists, label, **kw):
    """Mean over seeds at each x, with the seeds' sd as error bars (none for one seed)."""
    stats = [_mean_sd(v) for v in seed_lists]
    ax.errorbar(xs, [m for m, _ in stats], yerr=[s for _, s in stats], capsize=3,
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
        name = MODE_NAMES.get(mode, mode)
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
              f"{MODE_NAMES.get(mode, mode)}, {px} px")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


FIGURES = {"claims_data": data_figure, "claims_attention": attention_figure,
           "claims_resolution": resolution_figure, "claims_epochs": epochs_figure}
def claims_figures(runs: dict, figures_dir: str) -> dict[str, str]:
    """Draw every Problem 3 figure the runs allow; name -> PNG path."""
    out = {}
    for name, draw in FIGURES.items():
        path = draw(runs, os.path.join(figures_dir, f"{name}.png"))
        if path:
            out[name] = path
    return out
