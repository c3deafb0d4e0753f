"""The report layer: tables, prose, flags, figures, the summary notebook and the PDF.

Fixture folders (tests/fixtures/results_*) hold made-up result files. Expected values are
computed here from those JSON files with the table's stated formats (params in M to 2
decimals, ...), never copied from the report's own output.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from helpers import grid, report
from helpers.report.figures import plot_curves
from helpers.notebooks import python_kernel, run_notebook
from helpers.report.pdf import INSTALL_HINT, missing_latex_tools

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
NOTEBOOK = os.path.join(ROOT, "notebooks", "summary.ipynb")


def fixture(name):
    return os.path.join(FIXTURES, f"results_{name}")


def raw(name):
    """The fixture's JSON files, read independently of helpers.report."""
    d = fixture(name)
    return {f[:-5]: json.load(open(os.path.join(d, f)))
            for f in os.listdir(d) if f.endswith(".json")}


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


# ----------------------------------------------------------------------------- tables
def test_table1_has_every_grid_row_with_numbers_from_the_files():
    runs = raw("complete")
    df = report.table1(report.load_runs(fixture("complete")))
    assert list(df.columns) == ["Model", "# Params (M)", "MACs (thop, M)", "FLOPs exact (M)",
                                "Train time/epoch (s)", "Test accuracy (%)", "Seeds"]
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


def test_table2_modes_and_numbers():
    runs = raw("complete")
    df = report.table2(report.load_runs(fixture("complete")))
    assert list(df.columns) == ["Model", "Training mode", "Trainable params (M)",
                                "Avg epoch time (s)", "Test accuracy (%)", "Seeds"]
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
    t1, t2 = report.table1(runs), report.table2(runs)
    assert list(t1.index[:5]) == [e["run_name"] for e in grid.problem1_runs()]
    assert t1.index[-1] == "p1-vit-4L-4H-256-p8"          # extra run after the grid rows
    assert t1.loc["p1-vit-4L-4H-256-p8", "Model"] == "ViT (4L-4H-256, patch 8)"
    assert t1.loc["p1-vit-6L-8H-384", "Test accuracy (%)"].startswith(
        "failed: NonFiniteLossError")
    assert t2.loc["p2-swin_small-finetune", "Test accuracy (%)"].startswith(
        "skipped: WeightsUnavailableError")
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
    assert (f"ResNet-18 is ahead by 1.00 points (within noise: two standard errors are "
            f"{two_se:.2f} points at {n} test images)") in text
    assert "convolutions build in locality" not in text
    assert "No explanation is drawn from a gap within noise." in text


def test_vit_size_trend_follows_the_numbers(tmp_path):
    runs = raw("complete")
    presets = sorted((runs[f"p1-vit-{k}"] for k in grid.VIT_PRESETS), key=lambda r: r["params"])
    accs = [acc(r) for r in presets]
    monotone = all(b > a for a, b in zip(accs, accs[1:]))
    text = markdown(fixture("complete"))
    assert ("rises monotonically" in text) == monotone
    assert ("is not monotone" in text) == (not monotone)
    folder = copy_fixture("complete", tmp_path)               # force a monotone rise
    for r, a in zip(presets, sorted(accs)):
        edit(folder, r["run_name"], test_acc=a)
    assert "rises monotonically" in markdown(folder)


def test_problem2_prose_agrees_with_the_numbers():
    runs = raw("complete")
    text = markdown(fixture("complete"))
    for v in grid.SWIN_VARIANTS:
        get = lambda m: runs[f"p2-swin_{v}-{m}"]
        best_ft = max(acc(get("finetune")), acc(get("finetune_full")))
        d = best_ft - acc(get("scratch"))
        assert d > 0                                             # how the fixture was made
        assert f"ahead by {d:.2f} points" in text
        fr, fu = get("finetune"), get("finetune_full")
        tf, tu = round(fr["epoch_time_s"], 2), round(fu["epoch_time_s"], 2)
        assert f"{tf:.2f} s vs {tu:.2f} s per epoch" in text
        assert f"{max(tf, tu) / min(tf, tu):.2f}× {'faster' if tf < tu else 'slower'}" in text
        assert f"full fine-tuning is ahead by {acc(fu) - acc(fr):.2f} points" in text
    assert "Pretraining transfers" in text and "A frozen backbone only learns" in text
    assert "upsampled" in text                                   # Swin resolution note
    t, s = runs["p2-swin_tiny-scratch"], runs["p2-swin_small-scratch"]
    leader = "Swin-Small" if acc(s) > acc(t) else "Swin-Tiny"
    assert (f"**Swin-Small vs Swin-Tiny, from scratch:** {leader} is ahead by "
            f"{abs(acc(s) - acc(t)):.2f} points") in text


# ----------------------------------------------------------------------------- flags
def _flags(name):
    return report.plausibility_flags(report.load_runs(fixture(name)))


def test_no_flags_on_the_plausible_set():
    assert _flags("complete") == []
    assert "No plausibility flag raised." in markdown(fixture("complete"))


def test_swin_scratch_beating_its_finetune_raises_flag_a():
    runs = raw("swin_suspicious")
    sc = runs["p2-swin_tiny-scratch"]
    assert sc["config"]["epochs"] <= 10
    flags = _flags("swin_suspicious")
    beaten = {f.runs[1] for f in flags if f.check == "a"}
    expected = {f"p2-swin_tiny-{m}" for m in ("finetune", "finetune_full")
                if acc(sc) > acc(runs[f"p2-swin_tiny-{m}"])}
    assert beaten == expected and expected
    assert any(f.check == "b" and f.runs == ["p2-swin_tiny-scratch"] for f in flags)
    text = markdown(fixture("swin_suspicious"))
    assert "**FLAG (a)" in text and "1000-class head replaced" in text
    assert "weights really loaded" in text and "leakage" in text
    assert "contradicts the usual expectation" in text and "flag (a)" in text
    assert "Pretraining transfers" in text                    # still true for Swin-Small


def test_chance_accuracy_raises_flag_c():
    runs = raw("chance")
    at_chance = {n for n, r in runs.items()
                 if r["test_acc"] <= 100 / r["dataset"]["num_classes"] + 3}
    assert {n for f in _flags("chance") if f.check == "c" for n in f.runs} == at_chance
    assert len(at_chance) == 2


def test_failed_skipped_missing_raise_flag_d():
    d = [f for f in _flags("incomplete") if f.check == "d"]
    names = {n for f in d for n in f.runs}
    assert names == {"p1-vit-6L-8H-384", "p2-swin_small-finetune", "p2-swin_tiny-scratch"}
    text = markdown(fixture("incomplete"))
    assert "not comparable yet" in text and "`p2-swin_tiny-scratch`" in text


def test_credibility_ceiling_flags_real_data_but_not_synthetic(tmp_path):
    folder = copy_fixture("complete", tmp_path)
    r = raw("complete")["p1-resnet18"]
    limit = report.ceiling(r)
    edit(folder, "p1-resnet18", test_acc=limit + 1.5)
    assert [f.runs for f in report.plausibility_flags(report.load_runs(str(folder)))
            if f.check == "b"] == [["p1-resnet18"]]
    synth = raw("synthetic")["p1-resnet18"]
    assert synth["test_acc"] > report.ceiling(synth)          # easy data, above the ceiling
    assert not [f for f in _flags("synthetic") if f.check == "b"]
    assert "ceilings, is not applied" in markdown(fixture("synthetic"))


# ----------------------------------------------------------------------------- header
def test_synthetic_demo_says_so_on_the_first_line(tmp_path):
    rep = report.write_report(fixture("synthetic"), str(tmp_path / "report.md"), None)
    lines = (tmp_path / "report.md").read_text().splitlines()
    assert lines[0] == "> **DEMO on synthetic data — these are not CIFAR-100 results.**"
    title = next(l for l in lines if l.startswith("# "))
    assert "synthetic" in title.lower() and not title.startswith("# CIFAR-100")
    assert "synthetic" in rep.title.lower()
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
    (tmp_path / "a.json").unlink()
    (tmp_path / ".tmp-half.json").write_text("{")               # unfinished atomic write
    assert report.load_runs(str(tmp_path)) == {}


# ----------------------------------------------------------------------------- figures
def test_figures_are_written_and_linked(tmp_path):
    out = tmp_path / "out" / "report.md"
    rep = report.write_report(fixture("incomplete"), str(out), str(tmp_path / "figs"))
    pngs = [p for p in os.listdir(tmp_path / "figs") if p.endswith(".png")]
    assert len(pngs) >= 3
    for p in pngs:
        data = open(tmp_path / "figs" / p, "rb").read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    text = out.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == len(rep.figures) >= 3
    for link in links:
        assert not os.path.isabs(link) and os.path.isfile(out.parent / link)


def test_plot_curves_for_a_single_run(tmp_path):
    r = raw("complete")["p1-resnet18"]
    fig = plot_curves(r, path=str(tmp_path / "one.png"))
    acc_ax, loss_ax = fig.axes[:2]
    assert len(acc_ax.lines) == len(loss_ax.lines) == 1
    assert list(acc_ax.lines[0].get_ydata()) == [h["test_acc"] for h in r["history"]]
    assert os.path.getsize(tmp_path / "one.png") > 5_000


def _runs_with_lengths(p1_epochs, p2_epochs):
    """The complete fixture with every Problem 1 run cut (or stretched) to p1_epochs
    epochs and every Problem 2 run to p2_epochs; one run of each problem not complete."""
    runs = raw("complete")
    for r in runs.values():
        n = p1_epochs if r["problem"] == 1 else p2_epochs
        last = r["history"][-1]
        r["history"] = [dict(last, epoch=e, test_acc=last["test_acc"] * e / n)
                        for e in range(1, n + 1)]
    runs["p1-vit-8L-8H-512"].update(status="failed", reason="RuntimeError: boom",
                                    test_acc=None)
    runs["p2-swin_small-finetune"].update(status="skipped", history=[], test_acc=None,
                                          reason="WeightsUnavailableError: offline")
    return runs


def _integer_ticks(ax) -> bool:
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    return bool(ticks) and all(float(t).is_integer() for t in ticks)


def _has_data(ax) -> bool:
    return any(len(line.get_xdata()) for line in ax.get_lines()) or bool(ax.collections)


@pytest.mark.parametrize("p1_epochs, p2_epochs", [(1, 1), (3, 1), (2, 5), (20, 5), (7, 3)])
def test_every_figure_panel_has_data_on_integer_epoch_ticks(tmp_path, p1_epochs, p2_epochs):
    from helpers.report import figures
    runs = _runs_with_lengths(p1_epochs, p2_epochs)
    fig = figures.curves_figure(runs)
    assert len(fig.axes) == 4                                  # two problems x (acc, loss)
    for ax in fig.axes:
        assert _has_data(ax), ax.get_title()
        assert _integer_ticks(ax), (ax.get_title(), list(ax.get_xticks()), ax.get_xlim())
        names = {line.get_label() for line in ax.get_lines()}
        assert not any("failed" in n or "skipped" in n for n in names)   # not drawn...
    captions = figures.figure_captions(runs, ["curves", "p2_time_vs_acc"])
    assert "p1-vit-8L-8H-512 (failed)" in captions["curves"]              # ...but listed
    assert "p2-swin_small-finetune (skipped)" in captions["p2_time_vs_acc"]
    assert "p1-vit" not in captions["p2_time_vs_acc"]
    paths = figures.make_figures(runs, str(tmp_path / "figs"))
    assert set(paths) == set(figures.CAPTIONS)


def test_a_problem_without_complete_runs_gets_no_panel_and_scatter_labels_are_a_legend(
        tmp_path):
    from helpers.report import figures
    runs = {n: r for n, r in _runs_with_lengths(3, 1).items() if r["problem"] == 1}
    fig = figures.curves_figure(runs)
    assert len(fig.axes) == 2 and all(_has_data(ax) for ax in fig.axes)
    paths = figures.make_figures(runs, str(tmp_path / "figs"))
    assert "p2_time_vs_acc" not in paths and not (tmp_path / "figs" / "p2_time_vs_acc.png").exists()
    pts = [(1e6 * (i + 1), 40.0, f"run {i}", "o", None, None) for i in range(4)]  # a tie
    fig = figures.scatter_figure(pts, "x", "y", "t", logx=True)
    ax = fig.axes[0]
    assert not ax.texts                                      # no annotations to collide
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [p[2] for p in pts]
    lo, hi = ax.get_ylim()
    assert lo < 40.0 < hi and hi - lo >= 2                   # a readable range for a tie
    assert figures.scatter_figure([], "x", "y", "t") is None


# ----------------------------------------------------------------------------- notebook
def test_summary_notebook_is_thin_and_parameterised():
    nb = json.load(open(NOTEBOOK))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "google.colab" in "".join(code[0]["source"])
    params = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1
    src = "".join(params[0]["source"])
    for name in ("results_dir", "report_path", "figures_dir"):
        assert f"{name}: Optional[str] = None" in src             # None: the summary finds them
    assert all(not c.get("outputs") for c in code)              # stored without outputs
    assert sum(len("".join(c["source"]).splitlines()) for c in code) < 80


def test_python_kernel_overrides_a_shadowing_kernelspec(tmp_path, monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager
    fake = tmp_path / "kernels" / "python3"
    fake.mkdir(parents=True)
    (fake / "kernel.json").write_text(json.dumps(
        {"argv": ["/nonexistent/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
         "display_name": "elsewhere", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == "/nonexistent/python"
    with python_kernel() as name:
        assert KernelSpecManager().get_kernel_spec(name).argv[0] == sys.executable
    assert os.environ["JUPYTER_PATH"] == str(tmp_path)           # restored afterwards


def test_papermill_runs_the_summary_from_notebooks_dir(tmp_path):
    out_nb = tmp_path / "summary.ipynb"
    run_notebook(NOTEBOOK, str(out_nb), dict(results_dir="tests/fixtures/results_incomplete",
                                             report_path=str(tmp_path / "report.md"),
                                             figures_dir=str(tmp_path / "figs")),
                 cwd=os.path.join(ROOT, "notebooks"))
    assert "| Model" in (tmp_path / "report.md").read_text()
    nb = json.load(open(out_nb))
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    data = [o.get("data", {}) for o in outputs]
    tables = [d for d in data if "text/html" in d and "text/markdown" in d]
    assert len(tables) == 2 and all("<table" in "".join(d["text/html"]) for d in tables)
    assert sum("image/png" in d for d in data) >= 3


# ----------------------------------------------------------------------------- PDF
def test_missing_latex_prints_install_instructions(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))                  # no pandoc, no xelatex
    done = subprocess.run([sys.executable, "-m", "helpers.report.pdf", "--results-dir",
                           fixture("synthetic"), "--out", str(tmp_path / "r.pdf")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "sudo apt-get install pandoc texlive-xetex texlive-fonts-recommended " \
           "texlive-plain-generic" in done.stderr
    assert "!apt-get install -y pandoc texlive-xetex" in done.stderr
    assert not (tmp_path / "r.pdf").exists()
    assert "pandoc" in INSTALL_HINT


@pytest.fixture(scope="module")
def pdf_build(tmp_path_factory):
    missing = missing_latex_tools() + [t for t in ("pdfinfo", "pdftotext")
                                       if shutil.which(t) is None]
    if missing:
        pytest.skip(f"PDF export needs {', '.join(missing)} on PATH (CI installs them)")
    tmp = tmp_path_factory.mktemp("pdf")
    done = subprocess.run([sys.executable, "-m", "helpers.report.pdf", "--results-dir",
                           fixture("synthetic"), "--out", str(tmp / "report.pdf"),
                           "--report", str(tmp / "report.md"), "--figures", str(tmp / "figs"),
                           "--executed", str(tmp / "summary.ipynb")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp


def test_pdf_has_real_tables_and_the_demo_banner(pdf_build):
    pdf = str(pdf_build / "report.pdf")
    info = subprocess.run(["pdfinfo", pdf], capture_output=True, text=True).stdout
    assert int(re.search(r"Pages:\s+(\d+)", info).group(1)) >= 1
    text = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True).stdout
    flat = " ".join(text.split())
    # Headers as words: a narrow number column wraps its header over several lines.
    for header in ("Test accuracy (%)", "Training mode", "Model", "Avg epoch time",
                   "Demo setting"):
        assert all(word in flat for word in header.split()), header
    assert "Training mode" in flat and "Model" in flat
    assert flat.startswith("DEMO on synthetic data")              # the PDF's first line
    assert "| Model" not in text and "---:" not in text          # a table, not pipe text
    assert "missing — not run" in flat
    r = raw("synthetic")["p1-resnet18"]
    assert f"{r['test_acc']:.2f}" in flat and f"{r['params'] / 1e6:.2f}" in flat
    assert "import " not in text                                  # code cells hidden
    assert (pdf_build / "report.md").read_text().startswith("> **DEMO")


def test_header_describes_data_and_device_from_runs_that_trained():
    """A skipped or failed run never measured dataset or device: it must not turn the
    header's lines into 'unknown', but it still counts in the Runs line."""
    runs = report.load_runs(fixture("incomplete"))
    not_trained = [r for r in runs.values() if r["status"] != "complete"]
    assert not_trained, "fixture must hold a skipped or failed run"
    for r in not_trained:                # as the runner records a run that never started
        r["dataset"] = {"name": "cifar100"}
        r["provenance"] = dict(r.get("provenance") or {}, device=None)
    header = report.header_md(runs)
    dataset_line = next(l for l in header.splitlines() if l.startswith("- **Dataset:**"))
    device_line = next(l for l in header.splitlines() if l.startswith("- **Device(s):**"))
    assert "?" not in dataset_line and "unknown" not in device_line
    skipped = sum(r["status"] == "skipped" for r in runs.values())
    assert f"{skipped} skipped" in header


def test_table_cell_names_the_error_and_the_flags_give_the_full_reason():
    runs = report.load_runs(fixture("incomplete"))
    failed = next(r for r in runs.values() if r["status"] == "failed")
    error = failed["reason"].split(":")[0]
    row = report.table1(runs).loc[failed["run_name"]]
    assert row["Test accuracy (%)"] == f"failed: {error} (see checks)"
    flags = report.flags_md(report.plausibility_flags(runs), runs)
    assert report.md_escape(failed["reason"]) in flags
