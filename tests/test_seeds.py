"""Seeds and error bars: rows combine their seeds, the tables show mean ± sd and n, and the
prose calls a difference real only when Welch's t-test at 5 % supports it.

Fixture folders are built here from tests/fixtures/results_complete: each seed is a copy of
a row's result with its own run name, seed and accuracy. Expected cells and p-values are
derived by hand: with 3 seeds on each side and equal standard deviations, Welch's degrees
of freedom are exactly 4, where Student's t has the closed form used in `p_df4`.
"""
import json
import math
import os
import re

import pytest

from helpers import grid, report
from helpers.curves import plot_curves
from helpers.report.figures import scatter_figure
from helpers.report.seeds import compare, seed_rows, t_two_sided_p, welch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPLETE = os.path.join(ROOT, "tests", "fixtures", "results_complete")


def p_df4(t):
    """Two-sided p of Student's t with 4 degrees of freedom: 1 - sqrt(y)(3 - y)/2,
    y = t^2 / (4 + t^2) (the incomplete beta I_y(1/2, 2) integrated by hand)."""
    y = t * t / (4 + t * t)
    return 1 - math.sqrt(y) * (3 - y) / 2


def base():
    return {f[:-5]: json.load(open(os.path.join(COMPLETE, f)))
            for f in os.listdir(COMPLETE) if f.endswith(".json")}


def seeded_folder(tmp_path, offsets: dict, default=(0.0,)):
    """One file per (row, seed): accuracy = the fixture's + offsets[row][seed], epoch time
    = the fixture's x (1 + seed/100). Rows not in `offsets` get `default`."""
    folder = tmp_path / "seeds"
    folder.mkdir()
    for row, r in base().items():
        for seed, off in enumerate(offsets.get(row, default)):
            s = json.loads(json.dumps(r))
            s["run_name"] = grid.seed_run_name(row, seed)
            s["config"] = dict(s["config"], seed=seed, run_name=s["run_name"])
            s["test_acc"] = r["test_acc"] + off
            s["epoch_time_s"] = r["epoch_time_s"] * (1 + seed / 100)
            with open(folder / f"{s['run_name']}.json", "w") as f:
                json.dump(s, f)
    return folder


THREE = (0.0, 0.5, -0.5)          # sd 0.5
WIDE = (0.0, 4.0, -4.0)           # sd 4


def three_seeds(tmp_path):
    offsets = {name: THREE for name in base()}
    offsets.update({"p2-swin_tiny-finetune": WIDE, "p2-swin_small-finetune": WIDE})
    return seeded_folder(tmp_path, offsets, default=THREE)


# ----------------------------------------------------------------------------- the test
@pytest.mark.parametrize("t", [0.1, 0.7, 1.5, 3.0, 12.0])
def test_student_t_matches_closed_forms(t):
    assert t_two_sided_p(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(t), abs=1e-12)
    assert t_two_sided_p(t, 2) == pytest.approx(1 - t / math.sqrt(2 + t * t), abs=1e-12)
    assert t_two_sided_p(t, 4) == pytest.approx(p_df4(t), abs=1e-12)


def test_welch_by_hand():
    t, df, p = welch([40, 41, 42], [30, 31, 32])
    # means 41 and 31, sd 1 each: t = 10 / sqrt(1/3 + 1/3), df = (2/3)^2 / (2 (1/3)^2 / 2) = 4
    assert t == pytest.approx(10 / math.sqrt(2 / 3)) and df == pytest.approx(4)
    assert p == pytest.approx(p_df4(t))
    assert welch([30, 31, 32], [40, 41, 42])[2] == pytest.approx(p)     # symmetric
    assert welch([5, 5], [5, 5])[2] == 1.0
    # Identical seeds on both sides: no spread, so nothing to test (not "p < 0.001").
    assert compare(dict(test_accs=[5.0, 5.0]), dict(test_accs=[6.0, 6.0])) == ("not tested",
                                                                                None)
    with pytest.raises(ValueError, match="at least 2"):
        welch([1.0], [2.0, 3.0])


# ----------------------------------------------------------------------------- rows
def test_seeds_combine_into_one_row(tmp_path):
    runs = report.load_runs(str(three_seeds(tmp_path)))
    assert len(runs) == 3 * 11
    rows = seed_rows(runs)
    assert sorted(rows) == sorted(e["run_name"] for e in grid.grid())
    res = rows["p1-resnet18"]
    base_acc = base()["p1-resnet18"]["test_acc"]
    assert res["n_seeds"] == 3 and res["seeds"] == [0, 1, 2]
    assert res["test_acc"] == pytest.approx(base_acc) and res["test_acc_sd"] == pytest.approx(0.5)
    assert seed_rows(rows) is rows                                     # idempotent


def test_seeds_that_cannot_be_averaged_are_left_out_and_flagged(tmp_path):
    runs = report.load_runs(str(three_seeds(tmp_path)))
    runs["p1-resnet18-seed2"]["params"] += 1                            # another code version
    runs["p1-vit-2L-2H-128-seed1"]["config"]["epochs"] += 10            # another budget
    rows = seed_rows(runs)
    res, vit = rows["p1-resnet18"], rows["p1-vit-2L-2H-128"]
    assert (res["n_seeds"], res["test_accs"]) == (2, [base()["p1-resnet18"]["test_acc"],
                                                      base()["p1-resnet18"]["test_acc"] + 0.5])
    assert "params" in res["seed_mismatches"]["p1-resnet18-seed2"]
    assert "epochs" in vit["seed_mismatches"]["p1-vit-2L-2H-128-seed1"]
    assert report.table1(runs).loc["p1-resnet18", "Seeds"] == "2 of 3 seeds"
    [left_out] = [f for f in report.plausibility_flags(runs) if f.check == "e"]
    assert sorted(left_out.runs) == ["p1-resnet18-seed2", "p1-vit-2L-2H-128-seed1"]


def test_tables_show_mean_sd_and_n(tmp_path):
    folder = three_seeds(tmp_path)
    t1 = report.table1(report.load_runs(str(folder)))
    assert list(t1.index) == [e["run_name"] for e in grid.problem1_runs()]   # no seed rows
    r = base()["p1-resnet18"]
    times = [r["epoch_time_s"] * (1 + s / 100) for s in range(3)]
    mean_t = sum(times) / 3
    sd_t = math.sqrt(sum((x - mean_t) ** 2 for x in times) / 2)
    row = t1.loc["p1-resnet18"]
    assert row["Test accuracy (%)"] == f"{r['test_acc']:.2f} ± 0.50"
    assert row["Train time/epoch (s)"] == f"{mean_t:.2f} ± {sd_t:.2f}"
    assert row["Seeds"] == "3 seeds"
    assert row["# Params (M)"] == f"{r['params'] / 1e6:.2f}"


def test_mixed_seed_counts(tmp_path):
    folder = seeded_folder(tmp_path, {"p1-resnet18": THREE})
    text = report.build_report(str(folder), figures_dir=None).markdown()
    t1 = report.table1(report.load_runs(str(folder)))
    vit = base()["p1-vit-6L-8H-384"]
    assert t1.loc["p1-vit-6L-8H-384", "Test accuracy (%)"] == f"{vit['test_acc']:.2f}"
    assert t1.loc["p1-vit-6L-8H-384", "Seeds"] == "1 seed"
    assert t1.loc["p1-resnet18", "Seeds"] == "3 seeds"
    assert "- **Seeds per row:** 1 (10 runs); 3 (`p1-resnet18`)" in text
    # ResNet-18 (3 seeds) vs the runner-up (1 seed): not tested, and it says so.
    assert f"at {vit['test_acc']:.2f} % (beyond the test set's sampling noise: two " \
           "standard errors are" in text
    assert "single seed, so not tested across seeds)." in text


# ----------------------------------------------------------------------------- prose
def test_a_supported_and_an_unsupported_difference_are_worded_apart(tmp_path):
    text = report.build_report(str(three_seeds(tmp_path)), figures_dir=None).markdown()
    b = base()
    res, vit = b["p1-resnet18"]["test_acc"], b["p1-vit-6L-8H-384"]["test_acc"]
    d = round(res, 2) - round(vit, 2)
    t = d / math.sqrt(0.25 / 3 * 2)                   # sd 0.5 on both sides, 3 seeds each
    assert p_df4(t) < 0.001                           # shown as "p < 0.001"
    best = line_with(text, "**Best model:**")
    assert best.startswith("**Best model:** ResNet-18 ") and "ViT (6L-8H-384)" in best
    assert [f"{res:.2f}", f"{d:.2f}", f"{vit:.2f}"] == numbers(best)[:3]
    assert "Welch's t-test at 5 %" in best and "p < 0.001" in best and "3 seeds each" in best
    assert "within noise" not in best
    tiny, small = b["p2-swin_tiny-finetune"]["test_acc"], b["p2-swin_small-finetune"]["test_acc"]
    d = round(small, 2) - round(tiny, 2)
    t = d / math.sqrt(16 / 3 * 2)                     # sd 4 on both sides
    assert p_df4(t) >= 0.05
    pair = line_with(text, "**Swin-Small vs Swin-Tiny, fine-tuned (frozen backbone):**")
    assert "within noise" in pair and f"p = {p_df4(t):.2f}" in pair
    assert numbers(pair)[0] == f"{d:.2f}"
    # The ViT sizes: 6L beats 8L by less than the seeds can tell apart, so no trend is named.
    assert "no size trend that the seeds support" in text
    assert "monotonically" not in text and "peaks at" not in text


def line_with(text, lead):
    found = [line for line in text.splitlines() if line.startswith(lead)]
    assert len(found) == 1, (lead, len(found))
    return found[0]


def numbers(line):
    """The decimal numbers of a line, in order, as the report prints them."""
    return re.findall(r"\d+\.\d+", line)


def test_a_flag_raised_by_one_seed_names_that_seed(tmp_path):
    folder = three_seeds(tmp_path)
    path = folder / "p1-vit-2L-2H-128-seed2.json"
    r = json.load(open(path))
    r["test_acc"] = 1.5                                # at chance (100 classes)
    json.dump(r, open(path, "w"))
    flags = report.plausibility_flags(report.load_runs(str(folder)))
    chance = [f for f in flags if f.check == "c"]
    assert [f.runs for f in chance] == [["p1-vit-2L-2H-128-seed2"]]


# ----------------------------------------------------------------------------- figures
def test_figures_get_error_bars_and_bands_from_two_seeds(tmp_path):
    from matplotlib.collections import PolyCollection
    from matplotlib.container import ErrorbarContainer
    fig = scatter_figure([(1.0, 50.0, "a", "o", None, 1.5), (2.0, 55.0, "b", "o", None, None)],
                         "x", "y", "t")
    bars = [c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 1                                # only the point with an sd
    rows = seed_rows(report.load_runs(str(three_seeds(tmp_path))))
    fig = plot_curves([rows["p1-resnet18"]])
    assert any(isinstance(c, PolyCollection) for c in fig.axes[0].collections)
    single = plot_curves([base()["p1-resnet18"]])
    assert not any(isinstance(c, PolyCollection) for c in single.axes[0].collections)
    (tmp_path / "f").mkdir()
    paths = report.build_report(str(three_seeds(tmp_path / "f")), str(tmp_path / "figs")).figures
    assert sorted(paths) == ["curves", "p1_acc_vs_flops", "p1_acc_vs_params", "p2_time_vs_acc"]
    assert all(os.path.getsize(p) > 0 for p in paths.values())


def test_a_null_loss_is_a_gap_in_the_curves_not_a_crash(tmp_path):
    runs = report.load_runs(str(three_seeds(tmp_path)))
    for seed in ("", "-seed1", "-seed2"):                 # a non-finite loss stored as null
        runs[f"p1-resnet18{seed}"]["history"][2]["test_loss"] = None
    row = seed_rows(runs)["p1-resnet18"]
    assert row["history"][2]["test_loss"] is None and row["history"][1]["test_loss"] is not None
    fig = plot_curves([row])
    ys = fig.axes[1].lines[0].get_ydata()
    assert math.isnan(ys[2]) and not math.isnan(ys[1])


def test_a_one_epoch_run_sits_on_its_integer_tick():
    r = dict(base()["p2-swin_tiny-scratch"])
    r["history"] = r["history"][:1]
    fig = plot_curves([r])
    for ax in fig.axes:
        assert list(ax.get_xticks()) == [1]
