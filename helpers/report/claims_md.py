"""Problem 3's section of the report: the studies' tables, and each claim's verdict beside
the figure it rests on."""
from __future__ import annotations

import os

from .analysis import DASH, md_escape, result_is_synthetic
from .stats import spread
from .tables import md_table
from .claims import CAPTIONS, CLAIM_FIGURE, CLAIMS, MODE_NAMES, study_points, verdicts

HOW = ("*How:* the data-efficiency runs train ResNet-18 and two ViTs on nested, "
       "class-balanced shares of the training set at matched optimiser steps (the same batch, "
       "steps and warm-up as the full-data run), so only the number of distinct images "
       "changes; the resolution runs fine-tune Swin-Tiny at each input size for the same "
       "epochs. Verdicts use the report's one noise rule (in the header), as the analysis "
       "of Problems 1 and 2 does.")
RUN_IT = "Run it with `python -m helpers.run --problems 3` (sizes: `--claims-budget`)."


def _cell(rs: list[dict], key: str) -> str:
    return spread([r[key] for r in rs if r.get(key) is not None])


def _gap(rs: list[dict]) -> str:
    return spread([r["train_eval_acc"] - r["test_acc"] for r in rs
                    if r.get("train_eval_acc") is not None])


def _table(head: list[str], rows: list[list[str]]) -> str:
    return md_table(head, rows, "l" * 2 + "r" * (len(head) - 2))


def data_table(runs: dict) -> str | None:
    points = study_points(runs, "data_efficiency", "train_fraction", "label")
    rows = []
    for label, by_share in sorted(points.items()):
        for f in sorted(by_share):
            rs = by_share[f]
            rows.append([label, f"{100 * f:.0f} %", str(rs[0]["dataset"]["n_train"]),
                         str(rs[0]["config"]["epochs"]), _cell(rs, "test_acc"),
                         _cell(rs, "train_eval_acc"), _gap(rs), str(len(rs))])
    return _table(["Model", "Share", "Train images", "Epochs", "Test acc (%)",
                   "Train-sample acc (%)", "Train − test gap", "Seeds"], rows) if rows else None


def resolution_table(runs: dict) -> str | None:
    points = study_points(runs, "resolution", "img_size", "mode")
    rows = []
    for mode, by_px in sorted(points.items()):
        for px in sorted(by_px):
            rs = by_px[px]
            rows.append([f"Swin-Tiny, {MODE_NAMES.get(mode, mode)}", f"{px} px",
                         _cell(rs, "epoch_time_s"), _cell(rs, "test_acc"), _gap(rs),
                         str(len(rs))])
    return _table(["Model", "Input", "Time/epoch (s)", "Test acc (%)", "Train − test gap",
                   "Seeds"], rows) if rows else None


def claims_parts(runs: dict, figures: dict[str, str]) -> list[tuple[str, str | None]]:
    """The section as (markdown, figure name or None) pieces: how, the verdicts table, the
    studies' tables, then per claim its verdict and evidence, each followed by the figure it
    rests on (a figure shared by two claims follows the first)."""
    p3 = [r for r in runs.values() if r.get("problem") == 3]
    demo = any(result_is_synthetic(r) for r in p3)
    found = verdicts(runs)
    out = ["## Problem 3: the homework's claims, tested"]
    if demo:
        out.append("**Demo:** these runs are on synthetic data at demo sizes; the verdicts "
                   "show the pipeline working and say nothing about CIFAR-100.")
    out.append(HOW if p3 else "No Problem 3 run yet. " + RUN_IT)
    head = ["Claim", "Verdict", "Figure"]
    rows = [[f"{v.claim}. {CLAIMS[v.claim]}", v.shown,
             CAPTIONS[CLAIM_FIGURE[v.claim]].split(":")[0] if CLAIM_FIGURE[v.claim] in figures
             else DASH] for v in found]
    out.append(md_table(head, rows, "lll", labels=()))
    out += [t for t in (data_table(runs), resolution_table(runs)) if t]
    parts: list[tuple[str, str | None]] = [("\n\n".join(out), None)]
    for v in found:
        name = CLAIM_FIGURE[v.claim]
        shown = name in figures and CLAIM_FIGURE.get(v.claim - 1) != name
        parts.append((f"### Claim {v.claim}: {CLAIMS[v.claim]}\n\n**Verdict: {v.shown}.** "
                      f"{md_escape(v.evidence)}", name if shown else None))
    return parts


def claims_md(runs: dict, figures: dict[str, str], base_dir: str = ".") -> str:
    """claims_parts as markdown, each figure an image relative to base_dir."""
    out = []
    for text, name in claims_parts(runs, figures):
        out.append(text)
        if name:
            out.append(f"![{CAPTIONS[name]}]({os.path.relpath(figures[name], base_dir)})")
    return "\n\n".join(out)
