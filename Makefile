# Two commands do everything on a fresh machine: `make run` and `make test`.
# Each creates .venv and installs the pinned packages first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: run test clean

$(INSTALLED): requirements.txt constraints.txt runtime/requirements.txt
	$(PYTHON) -m venv $(VENV)
	# Chalice refuses pip 26.3 and newer in its environment.
	$(PY) -m pip install --quiet --disable-pip-version-check "pip<26.3"
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	touch $@

## run: the service on http://127.0.0.1:8000 against an embedded local AWS (Ctrl-C stops both)
run: $(INSTALLED)
	$(PY) -m localenv

## test: every test (unit, handlers, integration over HTTP)
test: $(INSTALLED)
	$(PY) -m pytest

clean:
	rm -rf $(VENV) cdk.out .pytest_cache
