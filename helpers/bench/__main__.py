"""`python -m helpers.bench`: see helpers/bench/cli.py for the options;
`python -m helpers.bench check`: the GPU check (check.py)."""
from ..commands import dispatch
from .cli import main

raise SystemExit(dispatch("helpers.bench", {"check": "check"}, main))
