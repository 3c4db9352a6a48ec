# The README's commands: `make run` (the whole pipeline locally) and `make test` (what CI runs).
# Everything else is the set-up they share. `make help` lists the targets.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# The environment is pinned for Python 3.11 (requirements*.txt are compiled for it): the first
# of these that runs and is 3.11 (a pyenv shim may exist without working).
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in python3.11 python3 /usr/bin/python3.11 /usr/bin/python3; do \
  if "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' >/dev/null 2>&1; then \
    command -v "$$p"; break; fi; done)
endif
UV_STAMP := $(VENV)/.uv-$(UV_VERSION)
VENV_STAMP := $(VENV)/.installed
# The infrastructure repository's validation tools (helm, jsonnet, terraform, the deployer's
# requirements), kept apart from .venv: `make reference`.
REFERENCE_HOME ?= $(ROOT)/.cache/reference
REFERENCE_STAMP := $(REFERENCE_HOME)/.installed
PYTEST_ARGS ?=

# --- The embedded environment: mirrors scripts/env.sh (tests/test_compose.py checks both). --
export AIRFLOW_HOME := $(ROOT)/.airflow
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN := sqlite:///$(AIRFLOW_HOME)/airflow.db
export AIRFLOW__CORE__DAGS_FOLDER := $(ROOT)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(ROOT)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION := False
export AIRFLOW_API_PORT ?= 8080
export AIRFLOW__API__HOST ?= 127.0.0.1
export AIRFLOW__API__PORT := $(AIRFLOW_API_PORT)
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL := http://127.0.0.1:$(AIRFLOW_API_PORT)/execution/
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT ?= 8793
export AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT ?= 8794
export ENGAGEMENTS_OUTBOX_PORT ?= 8025
export ENGAGEMENTS_POKE_INTERVAL ?= 30
export ENGAGEMENTS_ARTIFACTS_DIR := $(ROOT)/artifacts
export ENGAGEMENTS_STORE_PATH := $(AIRFLOW_HOME)/engagements.sqlite
export ENGAGEMENTS_OUTBOX_DIR := $(ROOT)/outbox
export AIRFLOW_CONN_SMTP_DEFAULT ?= {"conn_type":"smtp","host":"127.0.0.1","port":$(ENGAGEMENTS_OUTBOX_PORT),"extra":{"disable_tls":true,"disable_ssl":true,"from_email":"engagements@2i2c.org","timeout":10,"retry_limit":2}}
ifneq ($(firstword $(subst :, ,$(PATH))),$(BIN))
export PATH := $(BIN):$(PATH)
endif

.PHONY: help run test venv reference airflow-home seed outbox browser lint format pin clean distclean print-env
.PHONY: topology-up topology-down topology-status bench-parse bench-waits bench-topology bench-fanout
.PHONY: bench-portfolio

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

run: venv airflow-home  ## start Airflow (each component watched) + the SMTP outbox (Ctrl-C stops)
	bash scripts/run.sh

test: venv reference browser  ## the whole test suite, then lint (what CI runs)
	@# Tests make their own AIRFLOW_HOME; nothing of the run environment may leak into them.
	unset $$(compgen -e | grep -E '^(AIRFLOW_|ENGAGEMENTS_)' || true); \
	  ENGAGEMENTS_REFERENCE_TOOLS=$(REFERENCE_HOME) $(BIN)/pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory lint

venv: $(VENV_STAMP)  ## .venv with the pinned requirements and this package (editable)

$(UV_STAMP):
	@if [[ -z "$(PYTHON)" ]]; then echo "No Python 3.11 found; set PYTHON=/path/to/python3.11" >&2; exit 1; fi
	@v=$$("$(PYTHON)" -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  if [[ "$$v" != 3.11 ]]; then \
	    echo "Python 3.11 is required; $(PYTHON) is $$v (set PYTHON=/path/to/python3.11)" >&2; \
	    exit 1; \
	  fi
	if [[ ! -x $(BIN)/python ]]; then "$(PYTHON)" -m venv $(VENV); fi
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	rm -f $(VENV)/.uv-*
	touch $@

$(VENV_STAMP): $(UV_STAMP) requirements.txt requirements-dev.txt pyproject.toml
	$(BIN)/uv pip install --python $(BIN)/python -r requirements.txt -r requirements-dev.txt
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $@

reference: $(REFERENCE_STAMP)  ## helm, jsonnet, terraform and the deployer's requirements, pinned

$(REFERENCE_STAMP): $(UV_STAMP) requirements-reference.txt $(wildcard scripts/reference/*)
	rm -rf $(REFERENCE_HOME)
	$(BIN)/uv venv --quiet --python "$(PYTHON)" $(REFERENCE_HOME)/venv
	$(BIN)/uv pip install --quiet --python $(REFERENCE_HOME)/venv/bin/python -r requirements-reference.txt
	mkdir -p $(REFERENCE_HOME)/bin
	for tool in helm jsonnet terraform; do \
	  printf '#!/bin/sh\n[ -f "$${TF_CLI_CONFIG_FILE:-}" ] || export TF_CLI_CONFIG_FILE="%s"\nexec "%s" "%s" "$$@"\n' \
	    $(ROOT)/scripts/reference/terraformrc $(REFERENCE_HOME)/venv/bin/python \
	    $(ROOT)/scripts/reference/$$tool.py > $(REFERENCE_HOME)/bin/$$tool; \
	  chmod +x $(REFERENCE_HOME)/bin/$$tool; \
	done
	$(REFERENCE_HOME)/bin/helm version
	$(REFERENCE_HOME)/bin/jsonnet --version
	$(REFERENCE_HOME)/bin/terraform version
	touch $@

airflow-home: $(AIRFLOW_HOME)/.migrated  ## .airflow/ with a migrated SQLite metadata DB

$(AIRFLOW_HOME)/.migrated: $(VENV_STAMP)
	mkdir -p $(AIRFLOW_HOME)/logs
	airflow db migrate
	$(BIN)/python -c 'from importlib.metadata import version; print(version("apache-airflow-core"))' > $@

seed: venv  ## (re)load include/communities/*.yaml into the embedded store
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/engagements seed include/communities/*.yaml

browser:  ## Debian's chromium and chromedriver for the portfolio's browser test (apt-get if missing)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi; \
	if [[ $$EUID -ne 0 ]]; then \
	  echo "chromium/chromedriver missing: run 'sudo make browser' (apt-get install chromium" \
	    "chromium-driver); until then the browser test is skipped" >&2; exit 0; \
	fi; \
	echo "installing Debian's chromium and chromium-driver (apt-get)"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	  --no-install-recommends chromium chromium-driver >/dev/null

outbox: venv  ## only the SMTP outbox, in the foreground
	$(BIN)/python -m engagements.outbox --host 127.0.0.1 --port $(ENGAGEMENTS_OUTBOX_PORT) \
	  --dir $(ENGAGEMENTS_OUTBOX_DIR)

# --- The production topology without Docker (scripts/topology.sh; its own environment). ---
topology-up: venv  ## Postgres + Redis + CeleryExecutor Airflow + outbox on loopback (.topology/)
	bash scripts/topology.sh up

topology-down:  ## stop everything topology-up started (by process id)
	bash scripts/topology.sh down

topology-status:  ## which topology processes are running
	bash scripts/topology.sh status

bench-parse: venv  ## parse cost of each DAG file and of the DagBag (README "Performance")
	$(BIN)/python scripts/bench_parse.py

bench-waits: venv  ## 1,000 deferred milestone waits in virtual time, production settings
	$(BIN)/python scripts/bench_waits.py --reschedule

bench-topology: venv  ## 200 deferred waits and their triggerer on a private Celery topology
	$(BIN)/python scripts/bench_topology.py

bench-fanout: venv  ## check-in and renewal over 500 communities: store requests per community
	$(BIN)/python scripts/bench_fanout.py

bench-portfolio: venv  ## the portfolio page for 500 engagements, SQLite and Airtable
	$(BIN)/python scripts/bench_portfolio.py

lint: venv  ## ruff check + ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv  ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

pin: $(UV_STAMP)  ## recompile requirements*.txt from requirements*.in
	$(BIN)/uv pip compile --python-version 3.11 requirements.in -o requirements.txt
	$(BIN)/uv pip compile --python-version 3.11 requirements-dev.in -o requirements-dev.txt

clean:  ## remove local state (.airflow with the embedded store, outbox, artifacts) and caches
	rm -rf .airflow outbox artifacts logs test-artifacts .pytest_cache .ruff_cache build plugins/*.egg-info
	find . -path ./.venv -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean  ## clean, and remove .venv too
	rm -rf .venv

print-env:  ## the environment above, as the scripts get it (`source scripts/env.sh` in a shell)
	@env | grep -E '^(AIRFLOW_|AIRFLOW__|ENGAGEMENTS_|PATH=)' | sort
