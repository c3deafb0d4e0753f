"""`python -m helpers.bench`: see helpers/bench/cli.py for the options."""
from .cli import main

raise SystemExit(main())
