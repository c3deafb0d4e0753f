"""`python -m helpers.runner` (also `python -m helpers.run`): the experiment grid; the
options are in cli.py."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
