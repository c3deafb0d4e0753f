"""`python -m helpers.run`, the name README and Makefile use: `python -m helpers.runner`."""
import runpy

if __name__ == "__main__":
    runpy.run_module("helpers.runner", run_name="__main__", alter_sys=True)
