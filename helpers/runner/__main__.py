"""`python -m helpers.runner` (also `python -m helpers.run`): the experiment grid; the
options are in cli.py. `python -m helpers.runner demo-readme`: the README's demo paragraph
(demo_readme.py)."""
import sys

from ..commands import dispatch
from .cli import main

if __name__ == "__main__":
    sys.exit(dispatch("helpers.runner", {"demo-readme": "demo_readme"}, main))
