"""report.pdf: run the summary notebook with papermill, then export it with code hidden.

    make pdf        # = python -m helpers.report pdf: the results summary.ipynb finds
                    #   (build.locate_results), the PDF beside their report.md

The code is hidden one way: every cell of the notebook carries `"transient":
{"remove_source": true}`, which nbconvert's templates honour, so a plain `jupyter nbconvert
--to pdf notebooks/summary.ipynb` on the notebook executed and saved in JupyterLab gives
the same submission without any flag.

Steps, cheapest check first: (1) pandoc and xelatex must be on PATH, else print how to
install them and exit non-zero; (2) the results folder is read once, so a bad result file
fails before a kernel starts; (3) papermill executes notebooks/summary.ipynb into
notebooks/runs/<folder>/summary.ipynb (this also writes report.md and the figures beside
the PDF); (4) `jupyter nbconvert --to pdf` turns the executed notebook into the PDF.

The notebook runs on this interpreter's kernel (helpers.notebook_exec.run_notebook).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from ..notebook_exec import run_notebook
from ..paths import SUMMARY_NOTEBOOK, at_home
from ..gridrun import report_paths
from .tables import DEMO_TITLE

LATEX_TOOLS = ("pandoc", "xelatex")
# The title of a PDF exported from JupyterLab's File menu is the notebook's metadata.title,
# which summary.ipynb carries (checked by a test); the LaTeX title block adds the date.
PDF_TITLE = "Homework 6 report: ResNet-18, ViT and Swin"
PDF_TITLE_DEMO = DEMO_TITLE       # a demo's PDF says so in its first line
APT_PACKAGES = "pandoc texlive-xetex texlive-fonts-recommended texlive-plain-generic"
INSTALL_HINT = f"""\
To export the PDF, nbconvert needs pandoc and XeLaTeX. Install them, then rerun
`python -m helpers.report pdf`:
  Debian/Ubuntu:  sudo apt-get install {APT_PACKAGES}
  Colab:          !apt-get install -y {APT_PACKAGES}
  macOS:          brew install pandoc && brew install --cask mactex-no-gui
(report.md does not need them: `make report`.)"""


class LatexToolsMissing(RuntimeError):
    """pandoc or xelatex is not on PATH."""


def missing_latex_tools() -> list[str]:
    return [tool for tool in LATEX_TOOLS if shutil.which(tool) is None]


# ----------------------------------------------------------------------------- export
def export_pdf(executed_nb: str, out_pdf: str, title: str) -> str:
    """`jupyter nbconvert --to pdf` on an executed notebook, titled `title`; returns out_pdf.
    build_pdf has checked for pandoc and xelatex before the notebook ran."""
    import nbformat
    nb = nbformat.read(executed_nb, as_version=4)
    # The LaTeX template titles the PDF with metadata.title, else the file name.
    nb.metadata["title"] = title
    for cell in nb.cells:       # papermill's injected parameters cell lacks the flag
        cell.metadata["transient"] = {"remove_source": True}
    nbformat.write(nb, executed_nb)
    os.makedirs(os.path.dirname(out_pdf), exist_ok=True)
    cmd = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "pdf",
           "--output", os.path.splitext(os.path.basename(out_pdf))[0],
           "--output-dir", os.path.dirname(out_pdf), executed_nb]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not os.path.isfile(out_pdf):
        raise RuntimeError(f"nbconvert failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return out_pdf


def build_pdf(results_dir: str | None = None, out_pdf: str | None = None) -> str:
    """Execute summary.ipynb on results_dir, writing report.md and figures/ beside out_pdf,
    and export the PDF. None: the summary's own defaults (build.locate_results,
    gridrun.report_paths)."""
    missing = missing_latex_tools()
    if missing:
        raise LatexToolsMissing(f"not on PATH: {', '.join(missing)}\n{INSTALL_HINT}")
    from .build import locate_results
    from .tables import is_demo, load_runs
    results_dir = locate_results(results_dir)
    where = report_paths(results_dir)
    out_pdf = os.path.abspath(at_home(out_pdf) if out_pdf else where["pdf"])
    runs = load_runs(results_dir)                   # a bad result file fails here, not in a kernel
    # The PDF's title is its first line: a synthetic demo must say so before anything else.
    title = PDF_TITLE_DEMO if is_demo(runs) else PDF_TITLE
    beside = os.path.dirname(out_pdf)
    params = dict(results_dir=os.path.abspath(results_dir),
                  report_path=os.path.join(beside, "report.md"),
                  figures_dir=os.path.join(beside, "figures"))
    run_notebook(SUMMARY_NOTEBOOK, where["executed"], params)
    return export_pdf(where["executed"], out_pdf, title)


def main(argv=None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m helpers.report pdf",
                                 description="Execute notebooks/summary.ipynb and export it "
                                             "to PDF with the code hidden.")
    ap.add_argument("--results-dir", default=None,
                    help="default: what notebooks/summary.ipynb reads at its defaults")
    ap.add_argument("--out", default=None, help="the PDF, with report.md and figures/ written "
                                                "beside it (default: where the summary "
                                                "writes report.md)")
    args = ap.parse_args(argv)
    try:
        path = build_pdf(args.results_dir, args.out)
    except LatexToolsMissing as err:
        print(f"error: cannot build the PDF, {err}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as err:     # no results folder, a bad result file
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
