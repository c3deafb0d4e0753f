"""Seeds and error bars: rows combine their seeds, the tables show mean ± sd and n, and the
prose calls a difference beyond noise only when the report's one rule (report/stats.py)
says so: with seeds, a t-test of the per-seed differences (paired by seed) at 5 %.

Fixture folders are built here from tests/fixtures/results_complete: each seed is a copy of
a row's result with its own run name, seed and accuracy. Expected p-values are derived by
hand: 3 seeds give 2 degrees of freedom, where Student's t has the closed form in `p_df2`.
"""
import json
import math
import os
import re

import pytest

from helpers import config, grid, report
from helpers.curves import plot_curves
from helpers.report.figures import scatter_figure
from helpers.report.flags import plausibility_flags
from helpers.report.seeds import seed_rows
from helpers.report.stats import Term, contrast
from helpers.report.tables import table1

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMPLETE = os.path.join(ROOT, "tests", "fixtures", "results_complete")


def p_df2(t):
    """Two-sided p of Student's t with 2 degrees of freedom: 1 - |t| / sqrt(2 + t^2)."""
    return 1 - abs(t) / math.sqrt(2 + t * t)


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
            s["run_name"] = config.seed_run_name(row, seed)
            s["config"] = dict(s["config"], seed=seed, run_name=s["run_name"])
            s["test_acc"] = r["test_acc"] + off
            s["epoch_time_s"] = r["epoch_time_s"] * (1 + seed / 100)
            with open(folder / f"{s['run_name']}.json", "w") as f:
                json.dump(s, f)
    return folder


THREE = (0.0, 0.5, -0.5)          # sd 0.5
FLIPPED = (0.0, -0.5, 0.5)        # sd 0.5, against THREE: per-seed differences sd 1
WIDE = (0.0, 4.0, -4.0)           # sd 4
WIDE_FLIPPED = (0.0, -4.0, 4.0)   # against WIDE: per-seed differences sd 8


def three_seeds(tmp_path):
    offsets = {name: THREE for name in base()}
    offsets.update({"p2-swin_tiny-finetune": WIDE, "p2-swin_small-finetune": WIDE_FLIPPED,
                    "p1-vit-8L-8H-512": FLIPPED})
    return seeded_folder(tmp_path, offsets, default=THREE)


# ----------------------------------------------------------------------------- the rule
@pytest.mark.parametrize("d", [0.5, 1.0, 3.0, 6.0])
def test_the_seed_rule_is_a_paired_t_test_by_hand(d):
    # b - a per seed: d + (0, 1, -1) has mean d and sd 1, so t = d * sqrt(3) on 2 df.
    a = Term(1, {0: 40.0, 1: 41.0, 2: 42.0}, 10_000)
    b = Term(1, {0: 40.0 + d, 1: 42.0 + d, 2: 42.0 + d - 1}, 10_000)
    c = contrast([b, Term(-1, a.values, a.n)])
    t = d * math.sqrt(3)
    assert c.value == pytest.approx(d)
    assert c.beyond_noise == (p_df2(t) < 0.05)
    assert f"p = {p_df2(t):.3f}" in c.note or (p_df2(t) < 0.001 and "p < 0.001" in c.note)


def test_the_single_seed_rule_is_two_binomial_standard_errors():
    # 50 % and 52 % on 10,000 images: 2 SE = 200 sqrt(0.25/1e4 + 0.2496/1e4) = 1.413 points.
    two_se = 200 * math.sqrt(0.5 * 0.5 / 1e4 + 0.52 * 0.48 / 1e4)
    near = contrast([Term(1, {0: 51.0}, 10_000), Term(-1, {0: 50.0}, 10_000)])
    far = contrast([Term(1, {0: 52.0}, 10_000), Term(-1, {0: 50.0}, 10_000)])
    assert not near.beyond_noise and far.beyond_noise
    assert f"{two_se:.2f} points" in far.note
    # Identical seeds on both sides: the per-seed differences are all equal.
    same = contrast([Term(1, {0: 6.0, 1: 6.0}, 100), Term(-1, {0: 5.0, 1: 5.0}, 100)])
    assert same.beyond_noise and "identical in all 2 seeds" in same.note


def test_rows_with_different_seeds_take_welchs_test_on_the_tables_means():
    """A failed seed leaves the sides with different seeds: the contrast is still the
    difference of the means the tables show, and it is tested on all of them (Welch), not
    on the shared seeds alone, whose difference can point the other way."""
    from scipy import stats as sp
    a = {0: 61.0, 1: 61.5, 2: 75.0}
    b = {0: 62.0, 1: 62.2}                     # ahead of a in both seeds they share
    c = contrast([Term(1, a, 10_000), Term(-1, b, 10_000)])
    assert c.value == pytest.approx(sum(a.values()) / 3 - sum(b.values()) / 2)
    p = sp.ttest_ind(list(a.values()), list(b.values()), equal_var=False).pvalue
    assert "Welch" in c.note and f"p = {p:.3f}" in c.note and c.beyond_noise == (p < 0.05)
    # No seed in common: still a t-test over each side's seeds, not the single-seed rule.
    d = contrast([Term(1, {0: 50.0, 1: 50.4}, 10_000), Term(-1, {2: 49.0, 3: 49.2}, 10_000)])
    p = sp.ttest_ind([50.0, 50.4], [49.0, 49.2], equal_var=False).pvalue
    assert "one seed" not in d.note and f"p = {p:.3f}" in d.note


# ----------------------------------------------------------------------------- rows
def test_seeds_combine_into_one_row(tmp_path):
    runs = report.load_runs(str(three_seeds(tmp_path)))
    assert len(runs) == 3 * 11
    rows = seed_rows(runs)
    assert sorted(rows) == sorted(e["run_name"] for e in grid.grid())
    res = rows["p1-resnet18"]
    base_acc = base()["p1-resnet18"]["test_acc"]
    assert res["n_seeds"] == 3 and sorted(res["test_acc_by_seed"]) == [0, 1, 2]
    assert res["test_acc"] == pytest.approx(base_acc) and res["test_acc_sd"] == pytest.approx(0.5)
    assert seed_rows(rows) is rows                                     # idempotent


def test_seeds_that_cannot_be_averaged_are_left_out_and_flagged(tmp_path):
    runs = report.load_runs(str(three_seeds(tmp_path)))
    runs["p1-resnet18-seed2"]["params"] += 1                            # another code version
    runs["p1-vit-2L-2H-128-seed1"]["config"]["epochs"] += 10            # another budget
    rows = seed_rows(runs)
    res, vit = rows["p1-resnet18"], rows["p1-vit-2L-2H-128"]
    # seed 2 left out: the mean is over seeds 0 and 1 (offsets 0 and +0.5)
    assert res["n_seeds"] == 2
    assert res["test_acc"] == pytest.approx(base()["p1-resnet18"]["test_acc"] + 0.25)
    assert "params" in res["seed_mismatches"]["p1-resnet18-seed2"]
    assert "epochs" in vit["seed_mismatches"]["p1-vit-2L-2H-128-seed1"]
    assert table1(runs).loc["p1-resnet18", "Seeds"] == "2 of 3 seeds"
    [left_out] = [f for f in plausibility_flags(runs) if f.check == "d"]
    assert sorted(left_out.runs) == ["p1-resnet18-seed2", "p1-vit-2L-2H-128-seed1"]


def test_tables_show_mean_sd_and_n(tmp_path):
    folder = three_seeds(tmp_path)
    t1 = table1(report.load_runs(str(folder)))
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
    t1 = table1(report.load_runs(str(folder)))
    vit = base()["p1-vit-6L-8H-384"]
    assert t1.loc["p1-vit-6L-8H-384", "Test accuracy (%)"] == f"{vit['test_acc']:.2f}"
    assert t1.loc["p1-vit-6L-8H-384", "Seeds"] == "1 seed"
    assert t1.loc["p1-resnet18", "Seeds"] == "3 seeds"
    assert "- **Seeds per row:** 1 (10 runs); 3 (`p1-resnet18`)" in text
    # ResNet-18 (3 seeds) vs the runner-up (1 seed): the single-seed rule, marked compactly.
    assert f"at {vit['test_acc']:.2f} % (beyond noise)." in text


# ----------------------------------------------------------------------------- prose
def test_a_supported_and_an_unsupported_difference_are_worded_apart(tmp_path):
    text = report.build_report(str(three_seeds(tmp_path)), figures_dir=None).markdown()
    b = base()
    res, vit = b["p1-resnet18"]["test_acc"], b["p1-vit-6L-8H-384"]["test_acc"]
    d = round(res, 2) - round(vit, 2)
    # Both rows have offsets THREE: every seed's difference is d, beyond noise.
    best = line_with(text, "**Best model:**")
    assert best.startswith("**Best model:** ResNet-18 ") and "ViT (6L-8H-384)" in best
    assert [f"{res:.2f}", f"{d:.2f}", f"{vit:.2f}"] == numbers(best)[:3]
    assert best.endswith("(beyond noise).")
    tiny, small = b["p2-swin_tiny-finetune"]["test_acc"], b["p2-swin_small-finetune"]["test_acc"]
    d = round(small, 2) - round(tiny, 2)
    t = (small - tiny) / (8 / math.sqrt(3))           # per-seed differences: sd 8
    assert p_df2(t) >= 0.05
    pair = line_with(text, "**Swin-Small vs Swin-Tiny, fine-tuned (frozen backbone):**")
    assert "(within noise)" in pair and numbers(pair)[0] == f"{d:.2f}"
    # The ViT sizes: 8L trails 6L by less than the seeds can tell apart (sd 1 per seed).
    v6, v8 = b["p1-vit-6L-8H-384"]["test_acc"], b["p1-vit-8L-8H-512"]["test_acc"]
    assert p_df2((v8 - v6) / (1 / math.sqrt(3))) >= 0.05
    assert "shows no size trend beyond noise" in text
    assert f"{v8 - v6:+.2f} points to ViT (8L-8H-512), within noise" in text


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
    flags = plausibility_flags(report.load_runs(str(folder)))
    chance = [f for f in flags if f.check == "b"]
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
