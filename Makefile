# fgnet-workspace: `make demo` runs the main job, `make test` the test suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast smoke bench clean-venv

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

# The main job: restore the embedded demo corpus from the in-repo DVC remote, then reproduce every stage.
demo: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" dvc pull --quiet data.dvc
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" dvc repro

test: setup
	$(PY) -m pytest -q

# A reduced pipeline run (one dataset, one fold, one short epoch) as a DVC experiment; checks its metrics.
smoke: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" dvc pull --quiet data.dvc
	cp params.yaml .params.yaml.smoke
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" dvc exp run --quiet -S 'datasets=[DISFA]' -S 'folds=[0]' \
		-S 'protocols=[faithful]' -S train.epochs=1 -S train.iterations=2 within_domain \
		&& $(PY) -m fgnet_core.pipeline.check_metrics reports/metrics/within_domain.json DISFA_faithful_avg; \
		status=$$?; mv .params.yaml.smoke params.yaml; exit $$status

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(VENV)/bin/fgnet bench

clean-venv:
	rm -rf $(VENV)
