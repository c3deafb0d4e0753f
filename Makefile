# One entry point per job. Every target creates .venv on first use, from the lock file:
# a fresh clone gets exactly the versions CI tested (README, "Which requirements file").
PY      := .venv/bin/python
VENV_OK := .venv/.installed
LOCK    := requirements.lock

.PHONY: setup test test-oldest lock demo grid pdf bench

$(VENV_OK): $(LOCK) pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -r $(LOCK)
	$(PY) -m pip install --quiet "setuptools>=64" wheel
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $(VENV_OK)

setup: $(VENV_OK)

test: $(VENV_OK) lint
	$(PY) -m pytest -q tests

.PHONY: lint
lint: $(VENV_OK)
	$(PY) -m ruff check helpers benchmarks tests

# The torch-sensitive tests on the oldest torch/torchvision that requirements.txt allows,
# in a second venv (requirements/oldest.lock), so the lower bounds are tested too.
OLD_PY := .venv-oldest/bin/python
OLD_OK := .venv-oldest/.installed
TORCH_TESTS := tests/test_measure.py tests/test_models.py tests/test_train.py \
               tests/test_data.py tests/test_loader.py tests/test_net.py tests/test_resume.py \
               tests/test_environment.py tests/test_claims.py

$(OLD_OK): requirements/oldest.lock pyproject.toml
	test -x $(OLD_PY) || python3 -m venv .venv-oldest
	$(OLD_PY) -m pip install --upgrade pip >/dev/null
	$(OLD_PY) -m pip install -r requirements/oldest.lock
	$(OLD_PY) -m pip install --quiet "setuptools>=64" wheel
	$(OLD_PY) -m pip install --no-deps --no-build-isolation -e .
	touch $(OLD_OK)

test-oldest: $(OLD_OK)
	$(OLD_PY) -c "import torch, torchvision; print('oldest pair:', torch.__version__, torchvision.__version__)"
	$(OLD_PY) -m pytest -q $(TORCH_TESTS)

# Regenerate both lock files from requirements.txt, requirements/dev.txt and the torch pairs
# (uv's resolver; --universal keeps platform and Python-version markers, so one lock is
# resolved for Linux, macOS and Windows on Python 3.10+; CI tests Linux x86_64, Python 3.11).
# Then run make test and make test-oldest.
UV_COMPILE = $(PY) -m uv pip compile requirements.txt requirements/dev.txt --universal \
             --python-version 3.10 \
             --quiet --custom-compile-command "make lock"
lock: $(VENV_OK)
	$(PY) -m pip install --quiet "uv>=0.5"
	$(UV_COMPILE) -c requirements/pins.txt -o $(LOCK)
	$(UV_COMPILE) -c requirements/pins-oldest.txt -o requirements/oldest.lock

# Speed benchmark of the grid (benchmarks/README.md). On a CPU: make bench BENCH_ARGS=--quick
bench: $(VENV_OK)
	$(PY) -m benchmarks $(BENCH_ARGS)

# One sitting on a GPU (at most 8 minutes): benchmark, the grid end to end for 2 epochs,
# compile variants (benchmarks/README.md). Needs only torch, torchvision and timm: no venv
# is made for it, so a bare GPU image runs it with its own python3 (.venv's where it exists).
.PHONY: gpu-check
gpu-check:
	$(if $(wildcard $(PY)),$(PY),python3) -m benchmarks check $(BENCH_ARGS)

# report.md + figures/ from the result JSONs (reads results only, never trains).
# Point every notebook's setup cell (REPO_URL) and the README's Colab badges at this
# clone's origin, or at URL=...
.PHONY: colab
colab:
	python3 -m helpers.colab $(URL)

# Unset RESULTS_DIR: what notebooks/summary.ipynb reads at its defaults (results/cifar100,
# else the one other folder under results/). Another: make report RESULTS_DIR=results/demo
RESULTS_DIR ?=
.PHONY: report
report: $(VENV_OK)
	$(PY) -m helpers.report $(RESULTS_DIR)

# report.pdf: executes notebooks/summary.ipynb (papermill) -> notebooks/runs/<results folder>/summary.ipynb,
# then nbconvert --to pdf. Needs pandoc + xelatex (it says how to install them).
pdf: $(VENV_OK)
	$(PY) -m helpers.report pdf $(if $(RESULTS_DIR),--results-dir $(RESULTS_DIR))

# The README's main command: the whole pipeline on synthetic data, CPU-sized (minutes),
# results in results/demo/ with their own report.md (+ report.pdf where LaTeX is installed).
# Swin fine-tunes are recorded as skipped unless the ImageNet weights can be had.
demo: $(VENV_OK)
	$(PY) -m helpers.run --demo $(RUN_ARGS)

# Problem 3 (the homework's claims) offline, into the same results/demo and report.
.PHONY: demo-claims
demo-claims: $(VENV_OK)
	$(PY) -m helpers.run --problems 3 --demo $(RUN_ARGS)

# The README's demo paragraph (what it showed, how long it took), from the last demo's
# time record and result files: run after `make demo`.
.PHONY: demo-readme
demo-readme: $(VENV_OK)
	$(PY) -m helpers.runner demo-readme results/demo --readme README.md

# The real CIFAR-100 grid (wants a GPU): results/cifar100/, then report.md, figures/,
# report.pdf. Run it again after an interruption: finished runs are kept, others resume.
# e.g. make grid RUN_ARGS="--problems 1 --epochs-p1 30"
grid: $(VENV_OK)
	$(PY) -m helpers.run $(RUN_ARGS)
