# make help lists the targets. Every target creates .venv (pinned, from PyPI, by uv) when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TASKCAT_VENV := .venv-taskcat
CHECKOV_VENV := .venv-checkov
PORT ?= 5000
CONFIG ?=
OUT ?=
REGION ?=
FORMAT ?=
CONFIG_ARG := $(if $(CONFIG),--config $(CONFIG))
# The lifecycle's command line (scripts/ecs-app --help). Its recipes start with @: the CLI says what it
# does. On a failure make adds its own `make: *** [...] Error N` line, N being the CLI's exit code, and
# exits 2 whatever N was: GNU make prints that line for every failed recipe line it does not ignore, and
# an ignored one makes it exit 0, which would tell a script a failed deploy succeeded. Scripts and CI
# call scripts/ecs-app directly for the exact code (README, "For scripts and CI").
CLI := $(PY) scripts/ecs-app
OUT_ARG := $(if $(OUT),--out $(OUT))

IMPORT_MISSING = $(if $(COMPOSE),,COMPOSE= (the Compose file to read))$(if $(or $(COMPOSE),$(OUT)),, and )$(if \
	$(OUT),,OUT= (the app config to write))

.DEFAULT_GOAL := help
# Lifecycle settings, read by scripts/lifecycle/cli.py from the environment (see README, "Deploy").
export STACK REGION BUCKET SKIP_IMAGES IMAGE_TAG PARAMS YES KEEP_DATA CONFIG SERVICE SINCE FOLLOW FILTER CMD ROLLOUT_WAIT

.PHONY: help templates plan import-compose compose-report lint cfn-lint checkov test check compiled emulator taskcat strictness bench diagram deploy diff images verify status logs exec rollback cleanup clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {name[++n] = $$1; text[n] = $$2; if (length($$1) > width) width = length($$1)} \
	END {for (i = 1; i <= n; i++) printf "  make %-" width "s  %s\n", name[i], text[i]}' $(MAKEFILE_LIST)

# The environments are made by uv (https://docs.astral.sh/uv/pip/), pinned, itself installed by pip into its own
# environment: uv fetches a project's wheels in parallel and compiles bytecode on every core, where pip fetches
# them one at a time and compiles on one (the tests' environment, from nothing: 83 s with pip 26.3, 25 s with
# uv, on a 2-core machine). uv reads none of pip's settings (https://docs.astral.sh/uv/pip/compatibility/): a
# package index set for pip (PIP_INDEX_URL, or index-url in pip.conf) is handed to it, and it trusts the
# system's certificates (a company proxy's among them).
UV_HOME := .venv-uv
UV := $(UV_HOME)/bin/uv
PIP_INDEX = $(or $(PIP_INDEX_URL),$(lastword $(shell $(PYTHON) -m pip config list 2>/dev/null | \
	sed -n "s/^\(global\|install\)\.index-url='\(.*\)'$$/\2/p")))
NEW_VENV = $(UV) venv --quiet --allow-existing --python $(2) $(1)
# .venv, where the generator, the lifecycle and the tests run, is made on the system's own python3 (SYSTEM_PYTHON)
# when it is the same Python (major.minor) as PYTHON, else on PYTHON; PYTHON=... given to make chooses outright.
# pyenv builds without the optimisations CPython offers unless asked (PYTHON_CONFIGURE_OPTS=--enable-optimizations
# --with-lto, https://docs.python.org/3/using/configure.html#performance-options): the pyenv 3.11.7 first on this
# machine's PATH was configured without them and loads libpython as a shared library, where Debian 12's
# /usr/bin/python3 has it linked in (ldd) and runs a plain loop in half the time; openSUSE, for one, documents
# building its Python with profile-guided optimisation (https://build.opensuse.org/projects/openSUSE/packages/
# python3.39333/files/PACKAGING-NOTES). The suite's time goes to pure Python (cfn-lint, moto, botocore): on a
# 2-core machine, Debian 12's 3.11.2 took 15-20% less CPU over the same tests than pyenv's 3.11.7 (the Compose
# corpus and the quotas, 143-153 against 179-190 CPU-s; three lifecycle files, 224-241 against 265-275).
# checkov's and taskcat's environments stay on PYTHON: checkov's pins need Python 3.11.5 or newer.
SYSTEM_PYTHON ?= /usr/bin/python3
VERSION_OF = $(shell $(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV_PYTHON = $(or $(if $(filter file,$(origin PYTHON)),$(if $(filter $(call VERSION_OF,$(PYTHON)),$(call \
	VERSION_OF,$(SYSTEM_PYTHON))),$(SYSTEM_PYTHON))),$(PYTHON))
PIP = UV_NATIVE_TLS=1 $(UV) pip install --quiet --python $(1)/bin/python \
	$(foreach index,$(PIP_INDEX),--default-index $(index))

$(UV):
	$(PYTHON) -m venv $(UV_HOME) && $(UV_HOME)/bin/python -m pip install --quiet --disable-pip-version-check uv==0.13.9

# No environment is compiled whole: uv's --compile-bytecode compiles every module of it, some 7,700 in the
# tests' environment, of which the suite imports about 2,400 (`compiled` below writes those).
$(VENV)/.runtime: requirements.txt | $(UV)
	$(call NEW_VENV,$(VENV),$(VENV_PYTHON)) && $(call PIP,$(VENV)) -r requirements.txt && touch $@

$(VENV)/.ops: requirements-ops.txt $(VENV)/.runtime
	$(call PIP,$(VENV)) -r requirements-ops.txt && touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.ops
	$(call PIP,$(VENV)) -r requirements-dev.txt && touch $@

# taskcat pins jsonschema<4 and urllib3<2, which moto 5 cannot live with: its own environment.
# taskcat and checkov each run once in `make test`: compiling every module at install (6.6 s and 8 s) costs more
# than compiling, at that one run, the modules it imports (2.4 s and 1.5 s): uv leaves them uncompiled.
$(TASKCAT_VENV)/.installed: requirements-taskcat.txt | $(UV)
	$(call NEW_VENV,$(TASKCAT_VENV),$(PYTHON)) && $(call PIP,$(TASKCAT_VENV)) -r requirements-taskcat.txt && touch $@

$(CHECKOV_VENV)/.installed: requirements-checkov.txt | $(UV)
	$(call NEW_VENV,$(CHECKOV_VENV),$(PYTHON)) && $(call PIP,$(CHECKOV_VENV)) -r requirements-checkov.txt && touch $@

templates: $(VENV)/.runtime ## Render every template into build/ (CONFIG=app.yaml, OUT=dir for another app)
	$(PY) -m templates_src build $(CONFIG_ARG) $(OUT_ARG)

plan: $(VENV)/.runtime ## Hosts, task placement and monthly cost, as built and with NAT (CONFIG=, REGION=, FORMAT=json)
	$(PY) -m templates_src plan $(CONFIG_ARG) $(if $(REGION),--region $(REGION)) $(if $(FORMAT),--format $(FORMAT))

import-compose: $(VENV)/.runtime ## Turn a Compose file into an app config (COMPOSE=docker-compose.yaml OUT=app.yaml)
	@$(if $(and $(COMPOSE),$(OUT)),true,echo "make import-compose needs $(IMPORT_MISSING): make import-compose \
	COMPOSE=$(or $(COMPOSE),docker-compose.yaml) OUT=$(or $(OUT),app.yaml)" >&2; exit 2)
	$(PY) -m templates_src import-compose $(COMPOSE) -o $(OUT)

compose-report: $(VENV)/.runtime ## What the import makes of the 46 projects in tests/compose/corpus/ -> docs/compose.md
	$(PY) scripts/compose_report.py --write docs/compose.md

lint: cfn-lint checkov ## cfn-lint over build/ (plus a local-TemplateURL variant for nested parameter checks), then checkov

cfn-lint: $(VENV)/.dev ## The first half of make lint: cfn-lint over build/ and its local-TemplateURL variant (CONFIG=, OUT=)
	$(PY) scripts/lint.py $(CONFIG_ARG) $(if $(OUT),--build $(OUT))

checkov: $(CHECKOV_VENV)/.installed ## The second half of make lint: checkov over build/ (OUT=dir)
	$(CHECKOV_VENV)/bin/checkov --directory $(or $(OUT),build) --framework cloudformation --quiet --compact --skip-download

test: ## The whole suite (installs included): lint, unit tests, emulated deploys, AWS CLI, taskcat; prints its times
	@start=$$(date +%s); $(MAKE) --no-print-directory check; status=$$?; \
	echo "make test: $$(( $$(date +%s) - start )) s in all, exit $$status"; exit $$status

ENVIRONMENTS := $(VENV)/.dev $(TASKCAT_VENV)/.installed $(CHECKOV_VENV)/.installed
# A phase of `make check`: its command, then the seconds it took (and its exit code when it failed).
PHASE = start=$$(date +%s); $(2); status=$$?; \
	echo "make test: $(1) $$(( $$(date +%s) - start )) s$$([ $$status = 0 ] || echo ", exit $$status")"; exit $$status

# Four workers on two cores: a worker often waits (on a `make deploy` it started, a Lambda function, a
# retry's backoff), and the others keep both cores busy meanwhile. pytest took 382 s on two workers, 295-332 s
# on three, 279 s on four (each measured as the suite got quicker).
# worksteal: the workers take tests from each other's queues until all are done, so one slow test
# (a lifecycle under faults, the config fuzz) does not leave a worker idle while another works through a
# queue fixed at the start. --durations lists the slowest, the first place to look when the suite slows.
# checkov runs as soon as its environment is made, beside the last of the installs and `compiled`; cfn-lint
# comes after, on the bytecode `compiled` wrote.
check: ## What `make test` times: the environments (in parallel) and checkov, cfn-lint, then pytest on four workers
	@$(call PHASE,installs and checkov,$(MAKE) --no-print-directory -j3 --output-sync $(ENVIRONMENTS) checkov compiled)
	@$(call PHASE,cfn-lint,$(MAKE) --no-print-directory cfn-lint)
	@$(call PHASE,pytest,env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -n 4 --dist worksteal --durations 10)

# Bytecode for what the suite imports, written once before anything runs it. The suite starts hundreds of
# processes (each make deploy, status, cleanup, cfn-lint...): where PYTHONDONTWRITEBYTECODE is set, none would
# keep what it compiles (a cfn-lint process compiling its 1,300 modules takes 6.4 CPU-s instead of 1.3).
# Written here: the project's modules; what pytest's collection imports, with the assertion-rewritten test
# modules only a collection writes (four workers each rewriting them took 4.7 s each, not 2.4); what the
# emulator, the lifecycle's commands and cfn-lint's rules import: some 2,400 modules. uv's --compile-bytecode
# compiled all 7,700 of the environment: the installs and cfn-lint phases took 36-39 s then (63-66 CPU-s), and
# 30-33 s (45-51 CPU-s) this way, on a slow day. pytest then runs with bytecode written, so a module first
# imported there is compiled once, not by every process that imports it. A module that does not compile or
# collect is left for pytest to report, in full, in its own phase.
WARM = import emulator, lint, lifecycle, pkgutil; emulator.Emulator().start().stop(); lint.findings('Resources: {}'); \
	[__import__(f'lifecycle.{m.name}') for m in pkgutil.iter_modules(lifecycle.__path__) if m.name[0] != '_']
compiled: $(VENV)/.dev
	@unset PYTHONDONTWRITEBYTECODE; $(PY) -m compileall -q templates_src scripts tests >/dev/null; \
	$(PY) -m pytest --collect-only -q -p no:cacheprovider >/dev/null 2>&1; \
	PYTHONPATH=tests:scripts:. $(PY) -c "$(WARM)" >/dev/null 2>&1; true

emulator: $(VENV)/.dev ## Run the local AWS emulator standalone on 127.0.0.1:PORT (default 5000) until Ctrl-C
	PYTHONPATH=tests $(PY) -m emulator --port $(PORT)

taskcat: $(TASKCAT_VENV)/.installed ## taskcat test run against real AWS (needs an account and credentials)
	$(TASKCAT_VENV)/bin/taskcat test run --input-file taskcat.yml

strictness: $(VENV)/.dev ## Deploy each mutation of tests/mutations.py on the emulator; prints how many are refused
	$(PY) -m pytest tests/emulator/tests/test_strictness.py -q -p no:randomly -p no:cacheprovider -s

bench: $(VENV)/.dev ## Render times (default app, 1-200 services), stack sizes against quotas, cfn-lint time -> docs/performance.md
	$(PY) scripts/bench.py --write docs/performance.md

diagram: $(VENV)/.runtime ## Draw docs/architecture.{dot,svg,png} from build/, or OUT/architecture.* from OUT= (Graphviz)
	$(PY) scripts/diagram.py $(if $(OUT),--build $(OUT) --out $(OUT))

deploy: $(VENV)/.ops ## Deploy STACK= (default: app name) [REGION= BUCKET= CONFIG= SKIP_IMAGES=1 IMAGE_TAG= PARAMS="K=V ..."]; follows the rollout until steady (ROLLOUT_WAIT=600)
	@$(CLI) deploy

diff: $(VENV)/.ops ## What deploy would change in STACK=, per nested stack, replacements called out; changes nothing
	@$(CLI) diff

images: $(VENV)/.ops ## Copy Docker Hub images into STACK's ECR, build and push the app's own (DKS_API_DIR=, DKS_UI_DIR= or pinned clones)
	@$(CLI) images

verify: $(VENV)/.ops ## Check STACK= is up: hosts, steady services, healthy targets, Cloud Map, HTTP 200 (exit 3: not observable)
	@$(CLI) verify

status: $(VENV)/.ops ## STACK='s stacks, services (desired/running), targets and URLs in one table
	@$(CLI) status

logs: $(VENV)/.ops ## STACK='s service logs interleaved by time [SERVICE= SINCE=10m FOLLOW=1 FILTER=pattern]
	@$(CLI) logs

exec: $(VENV)/.ops ## A shell in a running task of STACK='s SERVICE= (its config: exec: true) [CMD=/bin/sh] (ECS Exec; needs session-manager-plugin)
	@$(CLI) exec

rollback: $(VENV)/.ops ## Put STACK='s services (or SERVICE=) back on their previous task definition and follow the rollout (YES=1: no prompt)
	@$(CLI) rollback

cleanup: $(VENV)/.ops ## Delete STACK='s stacks and templates bucket, fix known delete traps, delete the data (file system, key, secrets) unless KEEP_DATA=1, list leftovers (YES=1: no prompt)
	@$(CLI) cleanup

clean: ## Remove the virtual environment and caches (build/ is committed and stays)
	rm -rf $(VENV) $(TASKCAT_VENV) $(CHECKOV_VENV) $(UV_HOME) .pytest_cache .hypothesis
