# make help lists the targets. Every target creates .venv (pinned, from PyPI) when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?=
OUT ?=
CONFIG_ARG := $(if $(CONFIG),--config $(CONFIG))
OUT_ARG := $(if $(OUT),--out $(OUT))

.DEFAULT_GOAL := help
.PHONY: help templates lint test clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt && touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt && touch $@

templates: $(VENV)/.runtime ## Render every template into build/ (CONFIG=app.yaml, OUT=dir for another app)
	$(PY) -m templates_src build $(CONFIG_ARG) $(OUT_ARG)

lint: $(VENV)/.dev ## cfn-lint over build/, plus a local-TemplateURL variant for nested parameter checks
	$(PY) scripts/lint.py $(CONFIG_ARG) $(if $(OUT),--build $(OUT))

test: lint ## The whole suite: lint, then every test
	$(PY) -m pytest

clean: ## Remove the virtual environment and caches (build/ is committed and stays)
	rm -rf $(VENV) .pytest_cache .hypothesis
