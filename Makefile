# fgnet-workspace: `make demo` runs the main job, `make test` the test suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast bench clean-venv

setup: $(STAMP)

# torch is installed first on its own: the pinned CPU wheel installs offline and keeps pip from
# resolving a multi-GB CUDA build for the unpinned dependents.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# The main job: restore the embedded demo corpus from the in-repo DVC remote, then reproduce every stage.
demo: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" dvc pull --quiet data.dvc
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" dvc repro

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(VENV)/bin/fgnet bench

clean-venv:
	rm -rf $(VENV)
