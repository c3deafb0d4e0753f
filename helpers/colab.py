"""`python -m helpers.colab [URL] [--branch B]` (`make colab`): point the notebooks at a fork.

Writes the repository URL into the `REPO_URL = ...` line of every notebook's setup cell
(the cell is the same in all of them, tests/test_journey.py checks it) and the README's
"Open in Colab" badges, between the `colab:start` and `colab:end` markers. URL defaults to
`git remote get-url origin`. Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

from .atomic import splice
from .paths import GRID_NOTEBOOK, NOTEBOOKS, REPO_ROOT, SUMMARY_NOTEBOOK

ALL_NOTEBOOKS = (GRID_NOTEBOOK, *NOTEBOOKS.values(), SUMMARY_NOTEBOOK)
URL_LINE = re.compile(r'^REPO_URL = "[^"]*"')
BADGE_SVG = "https://colab.research.google.com/assets/colab-badge.svg"
GITHUB = re.compile(r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)"
                    r"([^/]+)/([^/]+?)(?:\.git)?/?$")


def https_url(url: str) -> str:
    """A clone URL Colab can use without credentials: GitHub SSH forms become https."""
    m = GITHUB.match(url.strip())
    return f"https://github.com/{m[1]}/{m[2]}.git" if m else url.strip()


def origin_url(cwd: str = REPO_ROOT) -> str:
    done = subprocess.run(["git", "remote", "get-url", "origin"], cwd=cwd,
                          capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip():
        raise SystemExit("error: this clone has no remote 'origin'; push it first, or pass "
                         "the URL: make colab URL=https://github.com/you/repo.git")
    return done.stdout.strip()


def set_notebook_url(path: str, url: str) -> None:
    with open(path, encoding="utf-8") as f:
        nb = json.load(f)
    hits = 0
    for cell in nb["cells"]:
        lines = cell["source"] if isinstance(cell["source"], list) else [cell["source"]]
        for i, line in enumerate(lines):
            if cell["cell_type"] == "code" and URL_LINE.match(line):
                lines[i] = URL_LINE.sub(f"REPO_URL = {json.dumps(url)}", line)
                hits += 1
        cell["source"] = lines
    if hits != 1:
        raise SystemExit(f"error: {path}: expected one `REPO_URL = \"...\"` line, found {hits}")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(nb, f, indent=1, ensure_ascii=False)
        f.write("\n")


def badges_md(url: str, branch: str) -> str:
    m = GITHUB.match(url)
    if not m:
        return (f"Open-in-Colab badges need a GitHub URL ({url} is not one): open the "
                "notebooks from Colab's File > Open notebook instead.\n")
    lines = []
    for path in ALL_NOTEBOOKS:
        rel = os.path.relpath(path, REPO_ROOT).replace(os.sep, "/")
        name = rel.rsplit("/", 1)[-1].removesuffix(".ipynb")
        lines.append(f"[![{name} in Colab]({BADGE_SVG})](https://colab.research.google.com/"
                     f"github/{m[1]}/{m[2]}/blob/{branch}/{rel})")
    return " ".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url", nargs="?", help="clone URL (default: git remote get-url origin)")
    ap.add_argument("--branch", default="main", help="branch the badges open (default main)")
    ap.add_argument("--readme", default=os.path.join(REPO_ROOT, "README.md"))
    args = ap.parse_args(argv)
    url = https_url(args.url or origin_url())
    if not re.match(r"^https?://", url):       # Colab has no SSH keys, nor this disk
        raise SystemExit(f"error: {url}: Colab clones over https; pass such a URL: "
                         "make colab URL=https://github.com/you/repo.git")
    for path in ALL_NOTEBOOKS:
        set_notebook_url(path, url)
    splice(args.readme, "colab", badges_md(url, args.branch))
    opened = ("from its badge (in the README)" if GITHUB.match(url)
              else "in Colab from File > Open notebook")
    print(f"REPO_URL = {url!r} in {len(ALL_NOTEBOOKS)} notebooks. Commit and push, then "
          f"open a notebook {opened}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
