# One entry point per job. Every target creates .venv on first use.
PY      := .venv/bin/python
VENV_OK := .venv/.installed

.PHONY: setup test demo grid pdf bench

$(VENV_OK): requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -r requirements.txt
	touch $(VENV_OK)

setup: $(VENV_OK)

test: $(VENV_OK)
	$(PY) -m pytest -q tests

# Speed benchmark of the grid (benchmarks/README.md). On a CPU: make bench BENCH_ARGS=--quick
bench: $(VENV_OK)
	$(PY) -m helpers.bench $(BENCH_ARGS)

# report.md + figures/ from the result JSONs (reads results only, never trains).
# Another folder: make report RESULTS_DIR=tests/fixtures/results_synthetic
RESULTS_DIR ?= results/cifar100
.PHONY: report
report: $(VENV_OK)
	$(PY) -m helpers.report $(RESULTS_DIR) --out report.md --figures figures

# report.pdf: executes notebooks/summary.ipynb (papermill) -> notebooks/runs/summary.ipynb,
# then nbconvert --to pdf --no-input. Needs pandoc + xelatex (it says how to install them).
pdf: $(VENV_OK)
	$(PY) -m helpers.pdf --results-dir $(RESULTS_DIR) --out report.pdf

# The README's main command: the whole pipeline on synthetic data, CPU-sized (minutes),
# results in results/demo/ with their own report.md (+ report.pdf where LaTeX is installed).
# Swin fine-tunes are recorded as skipped unless the ImageNet weights can be had.
demo: $(VENV_OK)
	$(PY) -m helpers.run --demo $(RUN_ARGS)

# The real CIFAR-100 grid (wants a GPU): results/cifar100/, then report.md, figures/,
# report.pdf. Run it again after an interruption: finished runs are kept, others resume.
# e.g. make grid RUN_ARGS="--problems 1 --epochs-p1 30"
grid: $(VENV_OK)
	$(PY) -m helpers.run $(RUN_ARGS)
