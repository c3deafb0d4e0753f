"""The report's content: tables, prose, flags and header (its files: test_report_files.py).

Fixture folders (tests/fixtures/results_*) hold made-up result files. Expected values are
computed here from those JSON files with the table's stated formats (params in M to 2
decimals, ...), never copied from the report's own output.
"""
import json
import math
import os
import re
import shutil

import pytest
from report_fixtures import fixture, raw

from helpers import grid, report
from helpers.report.build import header_md, report_title
from helpers.report.flags import ceiling, flags_md, plausibility_flags
from helpers.report.tables import md_escape, table1, table2



def copy_fixture(name, tmp_path):
    dst = tmp_path / name
    shutil.copytree(fixture(name), dst)
    return dst


def edit(folder, run_name, **changes):
    path = os.path.join(folder, f"{run_name}.json")
    r = json.load(open(path))
    r.update(changes)
    json.dump(r, open(path, "w"))


def markdown(folder):
    return report.build_report(str(folder), figures_dir=None).markdown()


def acc(r):
    return round(r["test_acc"], 2)


def paragraph(text, lead):
    """The one paragraph of the report that starts with `lead` (a bold heading)."""
    found = [p for p in text.split("\n\n") if p.startswith(lead)]
    assert len(found) == 1, f"{len(found)} paragraphs start with {lead!r}"
    return found[0]


# ----------------------------------------------------------------------------- tables
def test_table1_has_every_grid_row_with_numbers_from_the_files():
    runs = raw("complete")
    df = table1(report.load_runs(fixture("complete")))
    assert list(df.columns) == ["Model", "# Params (M)", "MACs (thop, M)", "FLOPs exact (M)",
                                "Train time/epoch (s)", "Test accuracy (%)",
                                "Train − test gap (points)", "Seeds"]
    assert list(df.index) == [e["run_name"] for e in grid.problem1_runs()]
    for name, row in df.iterrows():
        r = runs[name]
        assert row["Model"] == r["label"]
        assert row["# Params (M)"] == f"{r['params'] / 1e6:.2f}"
        assert row["MACs (thop, M)"] == f"{r['macs_thop'] / 1e6:.1f}"
        assert row["FLOPs exact (M)"] == f"{r['flops'] / 1e6:.1f}"
        assert row["Train time/epoch (s)"] == f"{r['epoch_time_s']:.2f}"
        assert row["Test accuracy (%)"] == f"{r['test_acc']:.2f}"
        assert row["Seeds"] == "1 seed"


def test_the_gap_column_is_train_sample_minus_test_accuracy():
    runs = report.load_runs(fixture("complete"))
    r = runs["p1-resnet18"]
    r["train_eval_acc"] = r["test_acc"] + 12.5
    runs["p1-vit-2L-2H-128"]["train_eval_acc"] = None        # not scored: no gap
    df = table1(runs)
    assert df.loc["p1-resnet18", "Train − test gap (points)"] == "12.50"
    assert df.loc["p1-vit-2L-2H-128", "Train − test gap (points)"] == "—"


def test_table2_modes_and_numbers():
    runs = raw("complete")
    df = table2(report.load_runs(fixture("complete")))
    assert list(df.columns) == ["Model", "Training mode", "Trainable params (M)",
                                "Avg epoch time (s)", "Test accuracy (%)",
                                "Train − test gap (points)", "Seeds"]
    assert list(df.index) == [e["run_name"] for e in grid.problem2_runs()]
    modes = {"finetune": "Fine-tuned (frozen backbone)", "finetune_full": "Fine-tuned (full)",
             "scratch": "From scratch"}
    for name, row in df.iterrows():
        r = runs[name]
        assert row["Training mode"] == modes[r["config"]["mode"]]
        assert row["Trainable params (M)"] == f"{r['trainable_params'] / 1e6:.2f}"
        assert row["Avg epoch time (s)"] == f"{r['epoch_time_s']:.2f}"
        assert row["Test accuracy (%)"] == f"{r['test_acc']:.2f}"


def test_failed_skipped_missing_rows_are_marked_and_extras_appended():
    runs = report.load_runs(fixture("incomplete"))
    t1, t2 = table1(runs), table2(runs)
    assert list(t1.index[:5]) == [e["run_name"] for e in grid.problem1_runs()]
    assert t1.index[-1] == "p1-vit-4L-4H-256-p8"          # extra run after the grid rows
    assert t1.loc["p1-vit-4L-4H-256-p8", "Model"] == "ViT (4L-4H-256, patch 8)"
    assert t1.loc["p1-vit-6L-8H-384", "Test accuracy (%)"] == "failed, loss not finite"
    assert t2.loc["p2-swin_small-finetune", "Test accuracy (%)"] == "skipped, no weights"
    assert t2.loc["p2-swin_tiny-scratch", "Test accuracy (%)"] == "missing — not run"
    assert len(t2) == len(grid.problem2_runs())


def _cells(line):
    """Split a pipe-table line on unescaped pipes."""
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def test_markdown_tables_are_pipe_tables_with_escaped_cells():
    md = markdown(fixture("incomplete"))
    tables = [b.splitlines() for b in md.split("\n\n") if b.startswith("| Model ")]
    assert len(tables) == 2 and "Training mode" in tables[1][0]
    for block in tables:
        assert len({len(_cells(line)) for line in block}) == 1, block   # same column count
        assert re.fullmatch(r"\|( -+:? *\|)+", block[1])               # the header rule
    assert r"step 120" in md and r"\| step 120" in md       # the reason's pipe is escaped
    assert r"weights=\<file\>" in md                        # not swallowed as an HTML tag


def test_time_definition_is_read_from_the_results(tmp_path):
    runs = raw("complete")
    assert runs["p1-resnet18"]["epoch_time_note"] in markdown(fixture("complete"))
    folder = copy_fixture("complete", tmp_path)
    for name in runs:
        edit(folder, name, epoch_time_note="median of epochs 3-6; a note only this test writes")
    assert "median of epochs 3-6; a note only this test writes" in markdown(folder)


# ----------------------------------------------------------------------------- prose
BEST = re.compile(r"\*\*Best model:\*\* (.+?) with ([\d.]+) % test accuracy, ([\d.]+) points "
                  r"ahead of the runner-up, (.+?), at ([\d.]+) %")


def _expected_best(runs):
    p1 = sorted((r for r in runs.values() if r["problem"] == 1 and r["status"] == "complete"),
                key=lambda r: -acc(r))
    return p1[0], p1[1]


def test_best_model_sentence_names_the_argmax():
    runs = raw("complete")
    best, second = _expected_best(runs)
    m = BEST.search(markdown(fixture("complete")))
    assert m, "no best-model sentence"
    assert m.group(1) == best["label"] and m.group(4) == second["label"]
    assert m.group(2) == f"{best['test_acc']:.2f}"
    assert m.group(3) == f"{acc(best) - acc(second):.2f}"


def test_swapping_two_accuracies_swaps_the_sentences(tmp_path):
    folder = copy_fixture("complete", tmp_path)
    runs = raw("complete")
    res, vit = runs["p1-resnet18"], runs["p1-vit-2L-2H-128"]
    assert acc(res) > max(acc(r) for n, r in runs.items() if n.startswith("p1-vit"))
    before = markdown(folder)
    assert "convolutions build in locality" in before and "runs against" not in before
    edit(folder, "p1-resnet18", test_acc=vit["test_acc"])
    edit(folder, "p1-vit-2L-2H-128", test_acc=res["test_acc"])
    after = markdown(folder)
    m = BEST.search(after)
    assert m.group(1) == vit["label"]                          # the ViT now holds the top score
    assert f"the best ViT, {vit['label']}, {res['test_acc']:.2f} %" in after
    assert f"{vit['label']} is ahead by" in after
    assert "convolutions build in locality" not in after    # no inductive-bias story now
    assert "runs against the usual expectation" in after


def test_a_gap_within_noise_is_called_noise_and_not_explained(tmp_path):
    folder = copy_fixture("complete", tmp_path)
    runs = raw("complete")
    vit = runs["p1-vit-6L-8H-384"]                              # the fixture's best ViT
    res_acc, n = acc(vit) + 1.0, 400
    for name, a in (("p1-resnet18", res_acc), ("p1-vit-6L-8H-384", acc(vit))):
        edit(folder, name, test_acc=a, dataset=dict(runs[name]["dataset"], n_test=n))
    pa, pb = res_acc / 100, acc(vit) / 100
    two_se = 200 * ((pa * (1 - pa) + pb * (1 - pb)) / n) ** 0.5   # 2 SE of a difference
    assert 1.0 < two_se
    text = markdown(folder)
    vs = paragraph(text, "**ResNet-18 vs the best ViT:**")
    assert "ResNet-18 is ahead by 1.00 points (within noise)" in vs
    assert "convolutions build in locality" not in text
    assert "No explanation is drawn" in text and "within noise" in text


def test_vit_size_trend_follows_the_numbers(tmp_path):
    runs = raw("complete")
    presets = sorted((runs[e["run_name"]] for e in grid.problem1_runs() if e["model"] == "vit"),
                     key=lambda r: r["params"])

    def expected(rs):
        """The trend by hand: each step against two binomial standard errors (one seed)."""
        marks = []
        for a, b in zip(rs, rs[1:]):
            pa, pb = acc(a) / 100, acc(b) / 100
            two_se = 200 * math.sqrt((pa * (1 - pa) + pb * (1 - pb)) / a["dataset"]["n_test"])
            marks.append(0 if abs(acc(b) - acc(a)) <= two_se else (1 if acc(b) > acc(a) else -1))
        return ("does not rise" if -1 in marks else "rises with size" if all(m == 1 for m in marks)
                else "shows no size trend")
    text = markdown(fixture("complete"))
    assert f"Test accuracy {expected(presets)}" in text
    folder = copy_fixture("complete", tmp_path)               # force a rise, 5 points a step
    rising = [dict(r, test_acc=40.0 + 5 * i) for i, r in enumerate(presets)]
    for r in rising:
        edit(folder, r["run_name"], test_acc=r["test_acc"])
    assert expected(rising) == "rises with size"
    assert "Test accuracy rises with size" in markdown(folder)


def test_problem2_prose_agrees_with_the_numbers():
    runs = raw("complete")
    text = markdown(fixture("complete"))
    for v in ("tiny", "small"):
        get = lambda m: runs[grid.run_name_of(model=f"swin_{v}", mode=m)]
        best_ft = max(acc(get("finetune")), acc(get("finetune_full")))
        d = best_ft - acc(get("scratch"))
        assert d > 0                                             # how the fixture was made
        name = f"Swin-{v.capitalize()}"
        assert f"ahead by {d:.2f} points" in paragraph(text, f"**{name}, fine-tuned vs from")
        fr, fu = get("finetune"), get("finetune_full")
        tf, tu = round(fr["epoch_time_s"], 2), round(fu["epoch_time_s"], 2)
        frozen = paragraph(text, f"**{name}, frozen backbone vs full fine-tuning:**")
        assert f"{tf:.2f} s vs {tu:.2f} s per epoch" in frozen
        assert f"{max(tf, tu) / min(tf, tu):.2f}×" in frozen
        assert ("faster" if tf < tu else "slower") in frozen
        assert f"full fine-tuning is ahead by {acc(fu) - acc(fr):.2f} points" in frozen
    assert "Pretraining transfers" in text and "A frozen backbone only learns" in text
    assert "upsampled" in text                                   # Swin resolution note
    t, s = runs["p2-swin_tiny-scratch"], runs["p2-swin_small-scratch"]
    leader = "Swin-Small" if acc(s) > acc(t) else "Swin-Tiny"
    sizes = paragraph(text, "**Swin-Small vs Swin-Tiny, from scratch:**")
    assert f"{leader} is ahead" in sizes and f"{abs(acc(s) - acc(t)):.2f} points" in sizes
    slower = s["epoch_time_s"] / t["epoch_time_s"]           # the time is the larger's
    assert f"Swin-Small takes {slower:.2f}× Swin-Tiny's time per epoch" in sizes


# ----------------------------------------------------------------------------- flags
def _flags(name):
    return plausibility_flags(report.load_runs(fixture(name)))


def test_no_flags_on_the_plausible_set():
    assert _flags("complete") == []
    assert "No plausibility flag raised." in markdown(fixture("complete"))


def test_swin_scratch_beating_its_finetune_is_a_contradiction_to_check():
    runs = raw("swin_suspicious")
    sc = runs["p2-swin_tiny-scratch"]
    assert any(acc(sc) > acc(runs[f"p2-swin_tiny-{m}"]) for m in ("finetune", "finetune_full"))
    flags = _flags("swin_suspicious")
    assert [f.runs for f in flags] == [["p2-swin_tiny-scratch"]]      # its ceiling, (a)
    text = markdown(fixture("swin_suspicious"))
    assert "contradicts the usual expectation" in text and "weights were loaded" in text
    assert "1000-class head replaced" in text and "**FLAG (a)" in text and "leakage" in text
    assert "Pretraining transfers" in text                    # still true for Swin-Small
    # Its budget differs from the other Swins', and the budget line says which run's.
    budget = paragraph(text[text.index("### Problem 2"):], "**Budget:**")
    assert f"x {sc['config']['epochs']} epochs (Swin-Tiny from scratch)" in budget


def test_chance_accuracy_raises_flag_b():
    runs = raw("chance")
    at_chance = {n for n, r in runs.items()
                 if r["test_acc"] <= 100 / r["dataset"]["num_classes"] + 3}
    assert {n for f in _flags("chance") if f.check == "b" for n in f.runs} == at_chance
    assert len(at_chance) == 2


def test_failed_skipped_missing_raise_flag_c():
    d = [f for f in _flags("incomplete") if f.check == "c"]
    names = {n for f in d for n in f.runs}
    assert names == {"p1-vit-6L-8H-384", "p2-swin_small-finetune", "p2-swin_tiny-scratch"}
    text = markdown(fixture("incomplete"))
    assert "not comparable yet" in text and "`p2-swin_tiny-scratch`" in text


def test_credibility_ceiling_flags_real_data_but_not_synthetic(tmp_path):
    folder = copy_fixture("complete", tmp_path)
    r = raw("complete")["p1-resnet18"]
    limit = ceiling(r)
    edit(folder, "p1-resnet18", test_acc=limit + 1.5)
    assert [f.runs for f in plausibility_flags(report.load_runs(str(folder)))
            if f.check == "a"] == [["p1-resnet18"]]
    synth = raw("synthetic")["p1-resnet18"]
    assert synth["test_acc"] > ceiling(synth)          # easy data, above the ceiling
    assert not [f for f in _flags("synthetic") if f.check == "a"]
    assert "ceilings, is not applied" in markdown(fixture("synthetic"))


# ----------------------------------------------------------------------------- header
def test_synthetic_demo_says_so_on_the_first_line(tmp_path):
    rep = report.write_report(fixture("synthetic"), str(tmp_path / "report.md"), None)
    lines = (tmp_path / "report.md").read_text().splitlines()
    assert lines[0].startswith("> **DEMO") and "not CIFAR-100" in lines[0]
    title = next(l for l in lines if l.startswith("# "))
    assert "synthetic" in title.lower() and not title.startswith("# CIFAR-100")
    assert "synthetic" in report_title(rep.runs).lower()
    assert not markdown(fixture("complete")).startswith("> **DEMO")


def test_header_lists_disagreeing_provenance():
    runs = raw("incomplete")
    text = markdown(fixture("incomplete"))
    header = text.split("## Problem 1")[0]
    for r in runs.values():
        p = r["provenance"]
        assert p["device"] in header and p["git_commit"][:10] in header
        assert p["started"][:10] in header
    assert "(dirty)" in header
    assert f"{runs['p1-resnet18']['dataset']['n_train']} train" in header


def test_load_runs_rejects_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="results_dir"):
        report.load_runs(str(tmp_path / "nope"))
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(ValueError, match="a.json"):
        report.load_runs(str(tmp_path))
    (tmp_path / "a.json").write_text(json.dumps({"run_name": "x", "problem": 1}))
    with pytest.raises(ValueError, match="status"):
        report.load_runs(str(tmp_path))
    (tmp_path / "a.json").write_text(json.dumps({"run_name": "x", "problem": 1,
                                                 "status": "done"}))
    with pytest.raises(ValueError, match="complete"):
        report.load_runs(str(tmp_path))
    (tmp_path / "a.json").write_text(json.dumps({"run_name": "x", "problem": 1,   # not a
                                                 "status": "failed", "img_per_s": 1}))  # result
    with pytest.raises(ValueError, match="img_per_s"):
        report.load_runs(str(tmp_path))
    (tmp_path / "a.json").unlink()
    (tmp_path / ".tmp-half.json").write_text("{")               # unfinished atomic write
    assert report.load_runs(str(tmp_path)) == {}


def test_header_describes_data_and_device_from_runs_that_trained():
    """A skipped or failed run never measured dataset or device: it must not turn the
    header's lines into 'unknown', but it still counts in the Runs line."""
    runs = report.load_runs(fixture("incomplete"))
    not_trained = [r for r in runs.values() if r["status"] != "complete"]
    assert not_trained, "fixture must hold a skipped or failed run"
    for r in not_trained:                # as the runner records a run that never started
        r["dataset"] = {"name": "cifar100"}
        r["provenance"] = dict(r.get("provenance") or {}, device=None)
    header = header_md(runs)
    dataset_line = next(l for l in header.splitlines() if l.startswith("- **Dataset:**"))
    device_line = next(l for l in header.splitlines() if l.startswith("- **Device(s):**"))
    assert "?" not in dataset_line and "unknown" not in device_line
    skipped = sum(r["status"] == "skipped" for r in runs.values())
    assert f"{skipped} skipped" in header


def test_table_cell_says_what_stopped_the_row_in_a_few_words_and_the_flags_give_the_reason():
    """The cell must fit a PDF column without a word broken: a short phrase per known
    error, 'see checks' for any other; the full reason is in the plausibility checks."""
    from helpers.report.tables import SHORT_REASONS, status_text
    runs = report.load_runs(fixture("incomplete"))
    failed = next(r for r in runs.values() if r["status"] == "failed")
    error = failed["reason"].split(":")[0]
    row = table1(runs).loc[failed["run_name"]]
    assert row["Test accuracy (%)"] == f"failed, {SHORT_REASONS[error]}"
    flags = flags_md(plausibility_flags(runs), runs)
    assert md_escape(failed["reason"]) in flags
    odd = dict(status="failed", reason="KeyError: 'x' in a notebook cell")
    assert status_text(odd) == "failed, see checks"
    oom = dict(status="failed", reason="RuntimeError: CUDA out of memory. Tried to allocate")
    assert status_text(oom) == "failed, out of memory"
    assert all(len(w) <= 10 for v in SHORT_REASONS.values() for w in v.split())


def test_load_runs_checks_every_key_against_the_result_record(tmp_path):
    from helpers.results import failed_result
    folder = copy_fixture("complete", tmp_path)
    edit(folder, "p1-resnet18", test_acc="61.4")
    with pytest.raises(ValueError, match="test_acc='61.4': must be a number"):
        report.load_runs(str(folder))
    edit(folder, "p1-resnet18", test_acc=61.4, devices=None)
    with pytest.raises(ValueError, match="devices=None: must be a list"):
        report.load_runs(str(folder))
    r = json.load(open(os.path.join(folder, "p1-resnet18.json")))
    del r["devices"], r["history"]
    with pytest.raises(ValueError, match="missing key history"):
        report.load_runs(str(_write(tmp_path / "one", r)))
    failed = failed_result(run_name="p1-vit-2L-2H-128", problem=1, model="vit", label=None,
                           config={"dataset": "cifar100", "seed": 0}, status="failed",
                           reason="ConfigError: x", started="2026-01-01T00:00:00+00:00")
    runs = report.load_runs(str(_write(tmp_path / "two", failed)))
    assert runs["p1-vit-2L-2H-128"]["status"] == "failed"


def _write(folder, r):
    folder.mkdir()
    (folder / f"{r['run_name']}.json").write_text(json.dumps(r))
    return folder
