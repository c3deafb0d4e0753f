"""The report's files: figures, the summary notebook run with papermill, and the PDF.

Fixture folders (tests/fixtures/results_*) hold made-up result files; expected values
are computed here from those JSON files, never copied from the report's own output.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
from conftest import need_tools
from report_fixtures import ROOT, fixture, raw

from helpers import report
from helpers.notebook_exec import python_kernel, run_notebook
from helpers.curves import plot_curves
from helpers.report.pdf import INSTALL_HINT, missing_latex_tools
from helpers.report.tables import table1, table2

NOTEBOOK = os.path.join(ROOT, "notebooks", "summary.ipynb")


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
    tables = [d for d in data if "| Model" in "".join(d.get("text/markdown", ""))]
    assert len(tables) == 2                         # pipe tables: real tables in the PDF
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


def build_pdf_of(fixture_name: str, tmp) -> str:
    """`python -m helpers.report pdf` on a fixture's results, into tmp; the PDF's text."""
    missing = missing_latex_tools() + [t for t in ("pdfinfo", "pdftotext")
                                       if shutil.which(t) is None]
    need_tools(missing, "PDF export")
    done = subprocess.run([sys.executable, "-m", "helpers.report.pdf", "--results-dir",
                           fixture(fixture_name), "--out", str(tmp / "report.pdf")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp / "report.md").is_file() and (tmp / "figures").is_dir()   # beside the PDF
    return subprocess.run(["pdftotext", str(tmp / "report.pdf"), "-"], capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="module")
def pdf_build(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pdf")
    build_pdf_of("synthetic", tmp)
    return tmp


@pytest.fixture(scope="module")
def cifar_pdf_text(tmp_path_factory):
    return build_pdf_of("complete", tmp_path_factory.mktemp("pdf-cifar"))


MONTHS = ("January|February|March|April|May|June|July|August|September|October|November"
          "|December")


def hand_in_problems(text: str, runs: dict, title: str) -> list[str]:
    """What would make a PDF unfit to hand in: no title and date on top, a machine path or
    the loader's chatter in it, a table's row label broken over lines."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    problems = []
    if not " ".join(lines[:3]).startswith(title):
        problems.append(f"title: the PDF starts {lines[:3]}")
    if not any(re.fullmatch(rf"({MONTHS}) \d{{1,2}}, \d{{4}}", line) for line in lines[:4]):
        problems.append(f"no date under the title: {lines[:4]}")
    for path in ("/tmp", "/root", "/home", "/work", ROOT):
        if path in text:
            problems.append(f"a machine path in the PDF: {path}")
    for chatter in ("result file(s) from", "holds no results", "wrote "):
        if chatter in text:
            problems.append(f"the loader's chatter in the PDF: {chatter!r}")
    for table in (table1(runs), table2(runs)):
        for label in table["Model"]:
            if not any(label in line for line in lines):
                problems.append(f"row label broken over lines: {label!r}")
    return problems


def test_both_pdfs_are_fit_to_hand_in(pdf_build, cifar_pdf_text):
    from helpers.report.pdf import PDF_TITLE, PDF_TITLE_DEMO
    demo_text = subprocess.run(["pdftotext", str(pdf_build / "report.pdf"), "-"],
                               capture_output=True, text=True).stdout
    assert hand_in_problems(demo_text, report.load_runs(fixture("synthetic")),
                            PDF_TITLE_DEMO) == []
    assert hand_in_problems(cifar_pdf_text, report.load_runs(fixture("complete")),
                            PDF_TITLE) == []


def test_the_file_menus_pdf_is_titled_by_the_summary_notebooks_metadata():
    """JupyterLab's File > Save and Export as PDF titles the PDF with metadata.title (else
    the file name, 'summary'); the summary notebook carries the report's title."""
    from helpers.report.pdf import PDF_TITLE
    with open(NOTEBOOK) as f:
        assert json.load(f)["metadata"]["title"] == PDF_TITLE


def test_pdf_has_real_tables_and_the_demo_banner(pdf_build):
    pdf = str(pdf_build / "report.pdf")
    info = subprocess.run(["pdfinfo", pdf], capture_output=True, text=True).stdout
    assert int(re.search(r"Pages:\s+(\d+)", info).group(1)) >= 1
    text = subprocess.run(["pdftotext", pdf, "-"], capture_output=True, text=True).stdout
    flat = " ".join(text.split())
    # Headers as words: a narrow number column wraps its header over several lines.
    for header in ("Test accuracy (%)", "Training mode", "Model", "Avg epoch time"):
        assert all(word in flat for word in header.split()), header
    assert "Training mode" in flat and "Model" in flat
    assert flat.startswith("DEMO on synthetic data")              # the PDF's first line
    assert "| Model" not in text and "---:" not in text          # a table, not pipe text
    assert "missing — not run" in flat
    r = raw("synthetic")["p1-resnet18"]
    assert f"{r['test_acc']:.2f}" in flat and f"{r['params'] / 1e6:.2f}" in flat
    assert "import " not in text                                  # code cells hidden
    assert (pdf_build / "report.md").read_text().startswith("> **DEMO")
