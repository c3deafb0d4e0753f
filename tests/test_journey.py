"""The student's journey, done as a student does it: the notebooks, not the runner.

JupyterLab: in a fresh copy of the repository, problem1.ipynb and problem2.ipynb run with
nbclient from notebooks/ (no papermill), with only their parameters cell edited; then
summary.ipynb runs unmodified, is saved, and `jupyter nbconvert --to pdf` makes the PDF.
Colab: the same with a stand-in `google.colab` whose drive.mount makes a temporary
MyDrive; a fresh kernel running the summary with no edits finds the results on "Drive".
"""
import json
import os
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from conftest import need_tools
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from helpers.atomic import splice
from helpers.notebook_exec import python_kernel
from helpers.notebooks import problem1_config
from helpers.paths import HOME_ENV, REPO_ROOT
from helpers.report.build import locate_results
from helpers.report.pdf import missing_latex_tools

NOTEBOOK_NAMES = ("grid", "problem1", "problem2", "summary")
TINY = {"dataset": '"synthetic"', "train_subset": "96", "test_subset": "48", "epochs": "1",
        "device": '"cpu"'}
P1_EDITS = {"model": '"vit"', "dim": "32", "depth": "1", "heads": "2", **TINY}
P2_EDITS = {"variant": '"tiny"', "mode": '"scratch"', "img_size": "32", **TINY}


def fresh_copy(tmp_path):
    """The repository as a clone has it: code, notebooks, no results."""
    repo = tmp_path / "repo"
    for part in ("helpers", "notebooks"):
        shutil.copytree(os.path.join(REPO_ROOT, part), repo / part,
                        ignore=shutil.ignore_patterns("__pycache__", "runs"))
    shutil.copy(os.path.join(REPO_ROOT, "requirements.txt"), repo)
    return repo


def cells(name, repo=REPO_ROOT):
    return nbformat.read(os.path.join(repo, "notebooks", f"{name}.ipynb"), as_version=4).cells


def setup_cell(name):
    return next(c.source for c in cells(name) if c.cell_type == "code")


def edit_parameters(nb, edits):
    """What a user does in JupyterLab: change the values in the parameters cell."""
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    for name, value in edits.items():
        pattern = re.compile(rf"^({name}: [^=]+= )(.+?)(\s+#.*)?$", re.M)
        assert pattern.search(cell.source), f"no parameter {name} in the parameters cell"
        cell.source = pattern.sub(lambda m: m[1] + value + (m[3] or ""), cell.source, count=1)


def run(repo, name, edits=None, env=None, save=True):
    """Execute notebooks/<name>.ipynb in its own kernel, started in notebooks/, and save it
    in place (as JupyterLab's save does)."""
    path = repo / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    if edits:
        edit_parameters(nb, edits)
    with python_kernel() as kernel:
        client = NotebookClient(nb, kernel_name=kernel, timeout=600,
                                resources={"metadata": {"path": str(repo / "notebooks")}})
        client.execute(env=env)
    if save:
        nbformat.write(nb, path)
    return nb


def text_of(nb):
    out = []
    for c in nb.cells:
        for o in c.get("outputs", []):
            data = o.get("data", {})
            out.append(o.get("text", "") + "".join(data.get("text/markdown", ""))
                       + "".join(data.get("text/html", "")))
    return "\n".join(out)


def results_in(folder):
    return {f[:-5]: json.load(open(os.path.join(folder, f)))
            for f in os.listdir(folder) if f.endswith(".json")}


def kernel_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in (HOME_ENV, "HW6_DRIVE_MOUNT")}
    env.update(extra)
    return env


# ----------------------------------------------------------------------------- static
def test_every_notebooks_setup_cell_is_the_same():
    first = setup_cell("problem1")
    assert "google.colab" in first and "REPO_URL" in first and "setup_home" in first
    assert all(setup_cell(n) == first for n in NOTEBOOK_NAMES)


def test_summary_default_is_where_the_problem_notebooks_write(tmp_path, monkeypatch):
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    cfg = problem1_config(model="resnet18", dataset="cifar100", results_dir=None)
    assert cfg.results_dir == locate_results(None)
    assert cfg.data_dir == str(tmp_path / "data")


def test_summary_falls_back_to_the_one_folder_with_results_and_stops_at_two(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    fixture = os.path.join(REPO_ROOT, "tests", "fixtures", "results_synthetic")
    (tmp_path / "results" / "cifar100").mkdir(parents=True)      # there, but empty
    shutil.copytree(fixture, tmp_path / "results" / "mine")
    assert locate_results(None) == str(tmp_path / "results" / "mine")
    shutil.copytree(fixture, tmp_path / "results" / "other")
    with pytest.raises(ValueError) as err:
        locate_results(None)
    assert "results_dir = 'results/mine'" in str(err.value)
    assert "results_dir = 'results/other'" in str(err.value)


def test_a_report_with_results_is_never_replaced_by_an_empty_one(tmp_path):
    from helpers.report import write_report
    fixture = os.path.join(REPO_ROOT, "tests", "fixtures", "results_synthetic")
    md = tmp_path / "report.md"
    write_report(fixture, str(md), None)
    before = md.read_text()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="is kept"):
        write_report(str(tmp_path / "empty"), str(md), None)
    assert md.read_text() == before
    # Nor by one in which nothing is complete (a grid that failed offline), and its
    # figures stay: nothing is drawn.
    from helpers.results import failed_result, write_result
    write_result(failed_result(run_name="p1-resnet18", problem=1, model="resnet18",
                               label="ResNet-18", config=dict(dataset="cifar100"),
                               status="failed", reason="DatasetUnavailableError: offline",
                               started="2026-01-01T00:00:00"), str(tmp_path / "failed"))
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "curves.png").write_bytes(b"kept")
    with pytest.raises(FileNotFoundError, match="no complete run"):
        write_report(str(tmp_path / "failed"), str(md), str(tmp_path / "figures"))
    assert md.read_text() == before
    assert os.listdir(tmp_path / "figures") == ["curves.png"]
    from helpers.report import summarise             # what summary.ipynb calls
    with pytest.raises(FileNotFoundError, match="no complete run"):
        summarise(str(tmp_path / "failed"), str(md), str(tmp_path / "figures"))
    assert md.read_text() == before and os.listdir(tmp_path / "figures") == ["curves.png"]
    fresh = tmp_path / "fresh.md"                     # no report yet: an empty one is fine
    write_report(str(tmp_path / "empty"), str(fresh), None)
    assert fresh.exists()


def test_setup_cell_outside_a_clone_on_colab_asks_for_the_repo_url(tmp_path):
    stubs = colab_stub(tmp_path)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup_cell("problem1"))])
    with python_kernel() as kernel:
        client = NotebookClient(nb, kernel_name=kernel, timeout=120,
                                resources={"metadata": {"path": str(tmp_path)}})
        with pytest.raises(CellExecutionError) as err:
            client.execute(env=kernel_env(PYTHONPATH=str(stubs)))
    assert "ValueError" in str(err.value) and "make colab" in str(err.value)


# ----------------------------------------------------------------------------- journeys
@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    repo = fresh_copy(tmp_path_factory.mktemp("lab"))
    env = kernel_env()
    nbs = {"problem1": run(repo, "problem1", P1_EDITS, env),
           "problem2": run(repo, "problem2", P2_EDITS, env),
           "summary": run(repo, "summary", env=env)}
    return repo, nbs


def test_jupyterlab_journey_report_holds_both_runs(jupyterlab):
    repo, nbs = jupyterlab
    folder = repo / "results" / "synthetic"
    runs = results_in(folder)
    assert set(runs) == {"p1-vit-1L-2H-32", "p2-swin_tiny-scratch"}
    assert all(r["status"] == "complete" for r in runs.values())
    # Each problem notebook's last cell says how the summary reads what it wrote.
    assert "results_dir = 'results/synthetic'" in text_of(nbs["problem1"])
    # The unmodified summary found the folder, said so (relative to HOME, the repository
    # here), and reported both runs.
    said = text_of(nbs["summary"])
    assert "reading results/synthetic" in said and str(repo) not in said
    md = (folder / "report.md").read_text()
    assert md.startswith("> **DEMO")
    for r in runs.values():
        assert f"{r['test_acc']:.2f}" in md
    assert not (repo / "report.md").exists()          # a synthetic report stays in its folder


def test_jupyterlab_journey_nbconvert_pdf_hides_the_code(jupyterlab):
    missing = missing_latex_tools() + [t for t in ("pdftotext",) if shutil.which(t) is None]
    need_tools(missing, "PDF export")
    repo, _ = jupyterlab
    done = subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "pdf",
                           "notebooks/summary.ipynb"], cwd=repo, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    text = subprocess.run(["pdftotext", str(repo / "notebooks" / "summary.pdf"), "-"],
                          capture_output=True, text=True).stdout
    flat = " ".join(text.split())
    assert "DEMO on synthetic data" in flat
    assert all(w in flat for w in ("Model", "Test", "accuracy"))
    assert "| Model" not in text                                  # a table, not pipe text
    assert "import " not in text and "REPO_URL" not in text      # code hidden


def colab_stub(tmp_path):
    """A `google.colab` package imported at kernel start (as Colab's kernel has it), whose
    drive.mount makes MyDrive in the given folder."""
    stubs = tmp_path / "stubs"
    (stubs / "google" / "colab").mkdir(parents=True)
    (stubs / "google" / "__init__.py").write_text("")
    (stubs / "google" / "colab" / "__init__.py").write_text("from . import drive\n")
    (stubs / "google" / "colab" / "drive.py").write_text(
        "import os\n\ndef mount(mountpoint, **kwargs):\n"
        "    os.makedirs(os.path.join(mountpoint, 'MyDrive'), exist_ok=True)\n")
    (stubs / "sitecustomize.py").write_text("import google.colab\n")
    return stubs


def test_colab_journey_finds_the_results_on_drive(tmp_path):
    repo = fresh_copy(tmp_path)
    drive = tmp_path / "drive"
    env = kernel_env(PYTHONPATH=str(colab_stub(tmp_path)), HW6_DRIVE_MOUNT=str(drive))
    run(repo, "problem1", P1_EDITS, env, save=False)
    run(repo, "problem2", P2_EDITS, env, save=False)
    home = drive / "MyDrive" / "cifar100-hw6"
    folder = home / "results" / "synthetic"
    assert set(results_in(folder)) == {"p1-vit-1L-2H-32", "p2-swin_tiny-scratch"}
    assert not (repo / "results").exists()                      # nothing left in the runtime
    # CIFAR-100 would be downloaded and cached on Drive too, once for every session.
    assert {r["config"]["data_dir"] for r in results_in(folder).values()} == {str(home / "data")}
    summary = run(repo, "summary", env=env, save=False)         # a fresh kernel, no edits
    # The loader's note names the folder relative to HOME (Drive), as HTML only: shown in
    # the notebook, left out of the PDF.
    assert "reading results/synthetic" in text_of(summary) and str(home) not in text_of(summary)
    md = (folder / "report.md").read_text()
    for r in results_in(folder).values():
        assert f"{r['test_acc']:.2f}" in md


def test_make_colab_writes_one_url_into_every_setup_cell_and_the_badges(tmp_path):
    from helpers import colab
    repo = fresh_copy(tmp_path)
    shutil.copy(os.path.join(REPO_ROOT, "README.md"), repo)
    url = colab.https_url("git@github.com:someone/hw6-fork.git")
    assert url == "https://github.com/someone/hw6-fork.git"
    for name in NOTEBOOK_NAMES:
        colab.set_notebook_url(str(repo / "notebooks" / f"{name}.ipynb"), url)
    splice(str(repo / "README.md"), "colab", colab.badges_md(url, "main"))
    setups = {name: next(c.source for c in cells(name, repo) if c.cell_type == "code")
              for name in NOTEBOOK_NAMES}
    assert len(set(setups.values())) == 1
    assert f'REPO_URL = "{url}"' in setups["summary"]
    readme = (repo / "README.md").read_text()
    for name in NOTEBOOK_NAMES:
        assert (f"https://colab.research.google.com/github/someone/hw6-fork/blob/main/"
                f"notebooks/{name}.ipynb") in readme


# ----------------------------------------------------------------------------- the grid
def test_the_grid_notebook_runs_the_demo_grid_and_every_row_learns(tmp_path):
    """notebooks/grid.ipynb with only `demo = True` edited: every row of both tables
    through the runner in the notebook's kernel, a progress bar per row, the report, and
    the summary's parameter on the last line. Every row that trains (the fine-tunes are
    skipped offline) ends at 3x chance or better with its test loss falling. Run again
    (as after a disconnect), it trains nothing twice."""
    from helpers import grid
    repo = fresh_copy(tmp_path)
    home = tmp_path / "home"
    env = kernel_env(HW6_HOME=str(home))
    nb = run(repo, "grid", {"demo": "True"}, env)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for o in outputs)                                  # tqdm bars as widgets
    assert text_of(nb).rstrip().endswith("results_dir = 'results/demo'")
    folder = home / "results" / "demo"
    results = results_in(folder)
    rows = {e["run_name"] for e in grid.grid((1, 2))}
    assert set(results) == rows and (folder / "report.md").is_file()
    trained = {n: r for n, r in results.items() if r["status"] == "complete"}
    assert {n for n, r in results.items() if r["status"] == "skipped"} | set(trained) == rows
    assert {n for n in rows if n.startswith("p1-") or n.endswith("-scratch")} <= set(trained)
    for name, r in trained.items():
        chance = 100 / r["dataset"]["num_classes"]
        losses = [h["test_loss"] for h in r["history"] if h["test_loss"] is not None]
        assert r["test_acc"] >= 3 * chance, (name, r["test_acc"], chance)
        assert losses[-1] < losses[0], (name, losses)
    again = run(repo, "grid", {"demo": "True", "report": "False"}, env, save=False)
    assert text_of(again).count("already complete with this config: skipped") == len(trained)


def test_make_colab_points_every_cloning_notebook_at_the_fork(tmp_path, monkeypatch):
    """Every notebook whose setup cell clones the repository on Colab gets the URL, and a
    URL Colab cannot clone from (a local path: an origin on this disk) is refused."""
    from helpers import colab
    def clones(path):
        return any(cell.cell_type == "code" and any(map(colab.URL_LINE.match,
                                                        cell.source.splitlines()))
                   for cell in nbformat.read(path, as_version=4).cells)
    folder = os.path.join(REPO_ROOT, "notebooks")
    cloning = {os.path.join(folder, f) for f in os.listdir(folder)
               if f.endswith(".ipynb") and clones(os.path.join(folder, f))}
    assert cloning == set(colab.ALL_NOTEBOOKS) and len(cloning) == 5
    copies = [shutil.copy(p, tmp_path) for p in colab.ALL_NOTEBOOKS]   # never the checkout's
    monkeypatch.setattr(colab, "ALL_NOTEBOOKS", tuple(copies))
    for url in (str(tmp_path), "git@gitlab.com:you/repo.git"):
        with pytest.raises(SystemExit, match="Colab clones over https"):
            colab.main([url, "--readme", str(tmp_path / "README.md")])
    (tmp_path / "README.md").write_text("<!-- colab:start -->\n<!-- colab:end -->\n")
    colab.main(["git@github.com:you/repo.git", "--readme", str(tmp_path / "README.md")])
    assert all('REPO_URL = \\"https://github.com/you/repo.git\\"' in open(p).read()
               for p in copies)
