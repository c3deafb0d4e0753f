"""`python -m helpers.bench`: see helpers/bench/runs.py for the options."""
from .runs import main

main()
