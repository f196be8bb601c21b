# fgnet-workspace: `make demo` runs the main job, `make test` the test suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo reproduce-check test test-fast lint bench clean-venv

setup: $(STAMP)

# torch is installed first on its own: the pinned CPU wheel installs offline and keeps pip from
# resolving a multi-GB CUDA build for the unpinned dependents.
$(STAMP): pyproject.toml
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
		echo "note: could not install chromium/chromium-driver; the browser test will be skipped"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

DVC := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" dvc

# The main job: restore the embedded demo corpus and the committed pretraining and backbone-comparison results
# from the in-repo DVC remote, then reproduce every other stage.
demo: setup
	$(DVC) pull --quiet data.dvc pretrain_corpus pretrain_generator pretrain_encoder compare_backbones
	$(DVC) repro

# After `make demo`: every committed metric must come out the same (see fgnet_core/pipeline/reproduce.py).
reproduce-check: setup
	$(PY) -m fgnet_core.pipeline.reproduce

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

# ruff: pycodestyle + pyflakes over the package, tests, benchmarks and tools (configured in pyproject.toml)
lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(VENV)/bin/fgnet bench

clean-venv:
	rm -rf $(VENV)
