"""Where a run's time goes (the result's `phases`, the runner's record, the report's
table), and the dataset a grid's rows share."""
import time

import pytest
import torch

from helpers.config import ExperimentConfig
from helpers.data import datasets, load_dataset
from helpers.experiment import Experiment
from helpers.report.build import PHASE_LABELS, time_split_md
from report_fixtures import table_cells
from helpers.results import PHASES


def test_a_results_phases_hold_its_clocks_and_never_count_one_twice(tmp_path):
    cfg = ExperimentConfig(model="vit", dim=32, depth=1, heads=2, patch_size=8,
                           train_subset=128, test_subset=64, epochs=2, batch_size=16,
                           device="cpu", results_dir=str(tmp_path), keep_checkpoints=True)
    t0 = time.perf_counter()
    r = Experiment(cfg).run(progress=False)
    elapsed = time.perf_counter() - t0
    ph, hist = r["phases"], r["history"]
    assert all(ph[k] >= 0 for k in PHASES)
    # The measured phases are disjoint parts of the run (other_s is the rest, not a
    # clock): together at most the run, which is at most what a clock around it saw.
    measured = sum(ph[k] for k in PHASES if k != "other_s")
    assert 0 < measured <= ph["run_s"] <= elapsed
    # Training plus its first-step excess is exactly the epochs' own clocks, and the
    # evaluations are the history's evaluation times.
    assert ph["train_s"] + ph["compile_warmup_s"] == pytest.approx(
        sum(h["epoch_time_s"] for h in hist))
    assert ph["eval_s"] == pytest.approx(sum(h["eval_time_s"] for h in hist))
    assert ph["eval_s"] == pytest.approx(r["eval_time_s"])
    assert ph["train_s"] + ph["compile_warmup_s"] == pytest.approx(r["total_train_time_s"])
    assert ph["checkpoint_s"] > 0 and ph["data_s"] > 0 and ph["build_measure_s"] > 0
    first, epoch, steps = hist[0]["first_step_s"], hist[0]["epoch_time_s"], 128 // 16
    assert 0 < first < epoch
    assert ph["compile_warmup_s"] == pytest.approx(max(0.0, first - (epoch - first) / (steps - 1)))


def test_a_grids_rows_share_one_loaded_dataset_and_big_synthetic_sets_are_kept_on_disk(
        tmp_path, monkeypatch):
    a = load_dataset("synthetic-10", str(tmp_path), train_subset=300, test_subset=50, seed=3)
    b = load_dataset("synthetic-10", str(tmp_path), train_subset=300, test_subset=50, seed=3)
    assert a is not b and a.x_train is b.x_train                 # loaded once
    c = load_dataset("synthetic-10", str(tmp_path), train_subset=300, test_subset=50, seed=4)
    assert not torch.equal(c.x_train, a.x_train)                # another seed: another set
    assert not (tmp_path / "synthetic").exists()                 # small: generated, not stored
    monkeypatch.setattr(datasets, "SYNTHETIC_DISK_CACHE_MIN", 100)
    # c is the kept set now, so d is loaded again (and, being "large", stored)
    d = load_dataset("synthetic-10", str(tmp_path), train_subset=300, test_subset=50, seed=3)
    (cached,) = (tmp_path / "synthetic").iterdir()
    load_dataset("synthetic-2", str(tmp_path), train_subset=10, test_subset=10)  # kept instead
    e = load_dataset("synthetic-10", str(tmp_path), train_subset=300, test_subset=50, seed=3)
    assert e.x_train is not d.x_train                            # read back from the file
    for k in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(e, k), getattr(a, k)), k     # the same images
    assert (e.num_classes, e.classes, e.name) == (10, a.classes, "synthetic")
    assert cached.name == "10c-300-50-seed3.npz"


def test_the_reports_time_table_sums_each_phase_over_the_rows():
    def row(run, wall, outside, train):
        phases = {k: 1.0 for k in PHASES} | {"train_s": train}
        return dict(run=run, wall_s=wall, outside_run_s=outside, device="cpu", phases=phases)
    record = dict(rows=[row("a", 20.0, 3.0, 9.0), row("b", 30.0, 4.0, 19.0),
                        dict(run="c", wall_s=None, phases=None)])      # c: not run this time
    md = time_split_md(record, {"a": {}, "b": {}, "c": {}})
    cells = table_cells(md)
    assert cells[PHASE_LABELS["train_s"]] == ["28.0", "56.0 %", "`b`"]
    assert cells[PHASE_LABELS["outside_run_s"]] == ["7.0", "14.0 %", "`b`"]
    assert cells[PHASE_LABELS["eval_s"]][:2] == ["2.0", "4.0 %"]
    assert "**50.0**" in md and "2 row(s), cpu" in md
    assert time_split_md(dict(rows=[dict(run="c", wall_s=None, phases=None)]), {"c": {}}) is None


def test_the_time_tables_columns_fit_the_pdf_line_with_every_number_whole():
    """Its first column is a description that wraps; a share such as '56.0 %' and a run
    name must not: each column is at least its widest cell of those, within the line."""
    from helpers.textable import PDF_CHAR_PT, PDF_GAP_PT, PDF_LINE_PT
    phases = {k: 1.0 for k in PHASES}
    record = dict(rows=[dict(run="p2-swin_small-finetune_full", wall_s=20.0, outside_run_s=3.0,
                             device="cpu", phases=phases)])
    md = time_split_md(record, {"p2-swin_small-finetune_full": {}})
    rule = next(line for line in md.splitlines() if line.startswith("| ---"))
    dashes = [len(c.strip().rstrip(":")) + c.strip().endswith(":") for c in rule.split("|")[1:-1]]
    line = (PDF_LINE_PT - PDF_GAP_PT * 3) / PDF_CHAR_PT
    assert sum(dashes) <= line, dashes
    assert dashes[2] >= len("100.0 %") - 2 and dashes[3] >= len("`p2-swin_small-finetune_full`")
