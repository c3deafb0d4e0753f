# One entry point per job. Every target creates .venv on first use.
PY      := .venv/bin/python
VENV_OK := .venv/.installed

.PHONY: setup test demo grid pdf bench clean-demo

$(VENV_OK): requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --upgrade pip >/dev/null
	$(PY) -m pip install -r requirements.txt
	touch $(VENV_OK)

setup: $(VENV_OK)

test: $(VENV_OK)
	$(PY) -m pytest -q tests
