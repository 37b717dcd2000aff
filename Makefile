# The two commands of the README's quick start. Each creates (or reuses) the virtual environment .venv with the
# pinned CPU torch and this package, then runs its job:
#   make run    the whole Phase 3a chain on the tiny default (tiny base -> alpha -> ... -> operators)
#   make test   the test suite (what CI runs through .ci/run)
# `make test-quick` skips the end-to-end tests marked slow.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-quick

# torch is pinned to the version whose CPU build this machine's package index serves; an unpinned torch would
# pull the multi-GB CUDA build. Reinstalled when the package metadata changes.
$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(PY) recipes/run_all.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -q tests

test-quick: $(STAMP)
	$(PY) -m pytest -q -m "not slow" tests
