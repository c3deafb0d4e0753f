"""The student's side, in a real browser: JupyterLab from this venv, headless Chromium.

In a fresh copy of the repository (so results, report.md and the PDF stay in a temporary
folder), the student opens problem1.ipynb and problem2.ipynb from the file browser, edits
only their parameters cells (synthetic data, a few hundred images, one epoch), runs them
with Run > Run All Cells and saves them; opens summary.ipynb, runs it unedited, saves it,
and exports it with File > Save and Export Notebook As > PDF. The checks read what the
student would hand in: the saved notebooks, report.md and the downloaded PDF.

Needs Chromium (on PATH, or named by $HW6_CHROMIUM), Playwright, pandoc, XeLaTeX and
pdftotext (tests/browser_support.py says how to install each). Without them it is skipped,
except under CI (CI=true), where a missing tool is a failure. About 2.5 minutes on 2 cores.
"""
import dataclasses
import functools
import json
import os
import pathlib
import re
import subprocess

import nbformat
import pytest

from browser_support import Student, chromium_path, jupyter_lab, missing_tools
from conftest import need_tools
from helpers.notebooks import default_results_dir, problem1_config, problem2_config
from helpers.paths import REPO_ROOT
from helpers.report.tables import result_is_synthetic
from helpers.report.pdf import PDF_TITLE, PDF_TITLE_DEMO
from test_journey import edit_parameters, fresh_copy

TINY = {"dataset": "synthetic-10", "train_subset": 200, "test_subset": 100, "epochs": 1,
        "device": "cpu"}
EDITS = {
    "problem1": {"model": "vit", "dim": 32, "depth": 1, "heads": 2, **TINY},
    "problem2": {"variant": "tiny", "mode": "scratch", "img_size": 32, **TINY},
}
CONFIGS = {"problem1": problem1_config, "problem2": problem2_config}
RUN_TIMEOUT_MS = 240_000                 # one notebook's Run All: 10-60 s on 2 cores
EXPORT_TIMEOUT_MS = 240_000              # nbconvert + XeLaTeX: about 10 s
ABSOLUTE_PATH_MARKS = ("/tmp/", "/root", "/home", "/work")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def edited_source(name: str) -> tuple[int, str, str]:
    """(cell index, original first line, edited source) of name's parameters cell."""
    nb = nbformat.read(os.path.join(REPO_ROOT, "notebooks", f"{name}.ipynb"), as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    first_line = nb.cells[index].source.splitlines()[0]
    edit_parameters(nb, {k: json.dumps(v) for k, v in EDITS[name].items()})
    return index, first_line, nb.cells[index].source


@dataclasses.dataclass(repr=False)          # a short repr in pytest's failure reports
class Journey:
    """What the student leaves behind: the repository copy (HOME), the downloaded PDF, the
    progress bars seen in the page, and the screenshots taken on the way."""
    repo: pathlib.Path
    pdf: pathlib.Path
    widgets: dict = dataclasses.field(default_factory=dict)
    shots: list = dataclasses.field(default_factory=list)

    def saved(self, name: str):
        return nbformat.read(self.repo / "notebooks" / f"{name}.ipynb", as_version=4)

    def results_folder(self) -> pathlib.Path:
        """Where the problem notebooks write at these parameters: results/<dataset> under
        HOME, which is the repository copy."""
        return self.repo / default_results_dir(TINY["dataset"])

    def results(self) -> dict:
        return {p.stem: json.loads(p.read_text())
                for p in sorted(self.results_folder().glob("*.json"))}

    @functools.cached_property
    def pdf_text(self) -> str:
        done = subprocess.run(["pdftotext", "-layout", str(self.pdf), "-"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def evidence(self) -> str:
        return f"\nscreenshots: {self.shots}"


@pytest.fixture(scope="module")
def journey(tmp_path_factory):
    need_tools(missing_tools(), "the JupyterLab browser journey")
    from playwright.sync_api import sync_playwright
    base = tmp_path_factory.mktemp("browser")
    found = Journey(repo=fresh_copy(base), pdf=base / "report.pdf")
    (base / "screenshots").mkdir()
    with jupyter_lab(found.repo, base / "lab") as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(),
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 900},
                                       accept_downloads=True).new_page()
            page.set_default_timeout(60_000)
            student = Student(page, server, base / "screenshots")
            found.shots = student.shots
            student.open_lab()
            for name in EDITS:
                student.open_notebook("notebooks", f"{name}.ipynb")
                student.replace_cell_source(*edited_source(name))
                student.run_all(name, RUN_TIMEOUT_MS)
                found.widgets[name] = student.widget_progress_bars()
                student.save(name)
                student.close_tab(name)
            student.open_notebook("notebooks", "summary.ipynb")
            student.run_all("summary", RUN_TIMEOUT_MS)
            student.save("summary")
            student.export_pdf(str(found.pdf), EXPORT_TIMEOUT_MS)
            student.screenshot("exported")
        finally:
            browser.close()
    return found


# ----------------------------------------------------------------------------- notebooks
@pytest.mark.parametrize("name", ["problem1", "problem2", "summary"])
def test_every_code_cell_ran_without_an_error(journey, name):
    nb = journey.saved(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    not_run = [i for i, c in enumerate(code) if c.execution_count is None]
    errors = [f"{o.ename}: {o.evalue}" for c in code for o in c.outputs
              if o.output_type == "error"]
    assert not errors and not not_run, (
        f"{name}.ipynb as saved: errors {errors}, code cells not run {not_run}"
        + journey.evidence())


@pytest.mark.parametrize("name", ["problem1", "problem2", "summary"])
def test_only_the_parameters_cell_was_edited(journey, name):
    original = nbformat.read(os.path.join(REPO_ROOT, "notebooks", f"{name}.ipynb"),
                             as_version=4)
    after = journey.saved(name)
    changed = [i for i, (a, b) in enumerate(zip(original.cells, after.cells))
               if a.source != b.source]
    assert len(after.cells) == len(original.cells)
    if name == "summary":
        assert changed == [], f"summary.ipynb is run unedited; cells {changed} changed"
    else:
        index, _, source = edited_source(name)
        assert changed == [index], f"cells {changed} changed, only {index} should"
        assert after.cells[index].source == source


@pytest.mark.parametrize("name", ["problem1", "problem2"])
def test_progress_bars_are_drawn_as_widgets(journey, name):
    run_name = CONFIGS[name](**EDITS[name]).run_name
    bars = journey.widgets[name]
    # tqdm's epoch bar stays (the per-batch bars close themselves): a widget, not text.
    assert any(run_name in text and "100%" in text for text in bars), (
        f"{name}: no finished ipywidgets progress bar for {run_name} in the page: {bars}"
        + journey.evidence())
    nb = journey.saved(name)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any(WIDGET_MIME in o.get("data", {}) for o in outputs)
    assert not any("IProgress not found" in o.get("text", "") for o in outputs)


# ----------------------------------------------------------------------------- report
def test_the_summary_report_holds_both_runs(journey):
    runs = journey.results()
    expected = {CONFIGS[name](**EDITS[name]).run_name for name in EDITS}
    assert set(runs) == expected, f"results written: {sorted(runs)}" + journey.evidence()
    assert all(r["status"] == "complete" for r in runs.values())
    # A synthetic report stays in its results folder (helpers/gridrun.report_paths).
    md = (journey.results_folder() / "report.md").read_text()
    for r in runs.values():
        assert r["label"] in md and f"{r['test_acc']:.2f}" in md, (r["run_name"], md[:2000])
    assert not (journey.repo / "report.md").exists()


def test_the_pdf_has_the_tables(journey):
    text = journey.pdf_text
    flat = " ".join(text.split())
    for heading in ("Problem 1", "Problem 2", "Model", "accuracy"):
        assert heading in flat, f"{heading!r} not in the PDF" + journey.evidence()
    for r in journey.results().values():
        assert r["label"] in flat and f"{r['test_acc']:.2f}" in flat, (
            f"{r['run_name']} ({r['label']}, {r['test_acc']:.2f} %) not in the PDF's tables")
    assert "| Model" not in text                                   # a table, not pipe text


def test_the_pdf_title_is_the_reports(journey):
    flat = " ".join(journey.pdf_text.split())
    assert flat.startswith((PDF_TITLE, PDF_TITLE_DEMO)), (
        f"the PDF should open with the report's title, {PDF_TITLE!r} or {PDF_TITLE_DEMO!r} "
        f"(helpers/report/pdf.py), not the file name; it opens with {flat[:120]!r}")
    # Synthetic results must say so before any section of the report.
    if any(result_is_synthetic(r) for r in journey.results().values()):
        demo = flat.find(PDF_TITLE_DEMO)
        assert 0 <= demo < flat.find("Problem 1"), (
            f"no DEMO warning before the tables: {flat[:400]!r}")


def test_the_pdf_shows_no_absolute_path(journey):
    text = journey.pdf_text
    flat = re.sub(r"\s+", "", text)               # a path broken across lines still counts
    found = [m for m in ABSOLUTE_PATH_MARKS + (str(journey.repo),) if m in text or m in flat]
    lines = [line.strip() for line in text.splitlines()
             if any(m in line for m in ABSOLUTE_PATH_MARKS)]
    assert not found, f"absolute paths {found} in the PDF, e.g. {lines[:5]}"


def test_the_pdf_hides_the_code(journey):
    text = journey.pdf_text
    code = [line.strip() for line in text.splitlines()
            if re.search(r"\[\s*\d*\s*\]:|rep\.show\(|import |REPO_URL", line)]
    assert not code, f"code in the PDF: {code[:5]}"
