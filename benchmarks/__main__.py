"""`python -m benchmarks`: see benchmarks/cli.py for the options;
`python -m benchmarks check`: the GPU check (check.py)."""
from helpers.commands import dispatch
from .cli import main

raise SystemExit(dispatch("benchmarks", {"check": "check"}, main))
