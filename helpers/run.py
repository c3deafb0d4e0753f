"""`python -m helpers.run`: the experiment grid (see helpers/runner/cli.py for the options)."""
import sys

from .runner.cli import main

if __name__ == "__main__":
    sys.exit(main())
