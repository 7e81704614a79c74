# Two commands for a new user: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9

# The demo company `make run` simulates (see README: size and run time).
DEMO_CUSTOMERS ?= 10000
DEMO_DAYS ?= 730
DEMO_SEED ?= 7
DEMO_START ?= 2024-01-01
DOCS_PORT ?= 8080

# Small numpy operations run faster single-threaded than through OpenBLAS threads on 2 cores.
export OPENBLAS_NUM_THREADS ?= 1
# Idle OpenMP threads of LightGBM spin by default; when another process holds one of the two
# cores every boosting round waits out time slices (fits ten times slower). OpenMP reads this
# once when it loads, so it belongs in the environment, not in the code.
export OMP_WAIT_POLICY ?= PASSIVE

# One configuration: crm_warehouse/settings.py reads the CRM_* variables and holds every
# default, the folder layout included; recipes ask it for resolved values.
SETTING := $(CURDIR)/$(BIN)/python -m crm_warehouse.settings
HOME_DIR := $$($(SETTING) dagster_home)
RUN_ENV := DAGSTER_HOME=$(HOME_DIR) CRM_WAREHOUSE_PATH=$$($(SETTING) warehouse_path)
# The Dagster instance settings (concurrency pool of the one warehouse writer) come from the repo.
PREPARE_HOME := mkdir -p $(HOME_DIR) && cp config/dagster.yaml $(HOME_DIR)/dagster.yaml
LANDING := $$($(SETTING) landing_dir)
MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project -path dbt_project/target -prune -o -path dbt_project/logs -prune -o \
	-type f \( -name '*.sql' -o -name '*.yml' -o -name '*.csv' -o -name '*.md' \) -print 2>/dev/null)

.PHONY: help install run test test-spark lint lint-python dev data manifest docs docs-serve sql bench postgres spark screenshots lock clean

help:
	@echo "make run    set up, generate the demo company, build the whole warehouse, print a summary"
	@echo "make test   set up, lint and run the test suite"
	@echo "make test-spark  ingest and build on a local Spark and compare every table with DuckDB's"
	@echo "make lint   ruff (rules in pyproject.toml), ruff format --check, sqlfluff on the dbt models"
	@echo "make dev    open the Dagster UI (http://127.0.0.1:3000) on the same configuration"
	@echo "make data   (re)generate only the demo landing files"
	@echo "make docs   dbt docs (models, columns, lineage, exposures) for the built warehouse"
	@echo "make docs-serve  browse them on http://127.0.0.1:$(DOCS_PORT)"
	@echo "make sql    a read-only SQL shell on the serving file (DuckDB)"
	@echo "make bench  the whole pipeline at several sizes against DuckDB's own floor, and on a local Spark"
	@echo "make postgres  install and start PostgreSQL on 127.0.0.1 (optional serving target)"
	@echo "make spark  start a local Spark (Thrift server + Spark Connect) for CRM_ENGINE=spark"
	@echo "make screenshots  refresh docs/screenshots from a real Dagster UI in headless Chromium"
	@echo "make lock   re-resolve requirements.lock from pyproject.toml"

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (as on CI
# machines), Python would otherwise compile every imported module from source in every
# process, doubling the code location's load time (docs/performance.md).
$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

install: $(VENV)/.installed

# dbt parse writes the manifest the Dagster definitions load (never parsed at import).
$(MANIFEST): $(VENV)/.installed $(DBT_SOURCES)
	cd dbt_project && CRM_WAREHOUSE_PATH=$${CRM_WAREHOUSE_PATH:-/tmp/crm_parse.duckdb} \
		../$(BIN)/dbt parse --profiles-dir . --quiet
	touch $@

manifest: $(MANIFEST)

data: $(VENV)/.installed
	$(RUN_ENV) $(BIN)/python -m crm_simulator --customers $(DEMO_CUSTOMERS) --days $(DEMO_DAYS) \
		--seed $(DEMO_SEED) --start-date $(DEMO_START) --out $(LANDING)

# CRM_ENGINE=spark: scripts/spark.sh starts the local Spark (a configured server that answers,
# e.g. a cluster's, is used as it is) and, without CRM_POSTGRES_DSN, scripts/postgres.sh the
# local PostgreSQL that the job on Spark publishes to (demo passwords; it listens on 127.0.0.1 only).
SPARK_SERVICES := if [ "$${CRM_ENGINE:-duckdb}" = spark ]; then \
	spark_env=$$(bash scripts/spark.sh) || exit 1; export $$(echo "$$spark_env" | tail -n 1); \
	if [ -z "$${CRM_POSTGRES_DSN:-}" ]; then \
		dsn=$$(bash scripts/postgres.sh) || exit 1; export CRM_POSTGRES_DSN=$$(echo "$$dsn" | tail -n 1); \
		export CRM_POSTGRES_BI_PASSWORD=$${CRM_POSTGRES_BI_PASSWORD:-bi-reader-demo}; \
	fi; \
fi

# --demo: the demo company is simulated only into the project's own data/landing, and
# only when it holds no files (never into a folder named by CRM_LANDING_DIR/CRM_DATA_DIR).
run: $(VENV)/.installed $(MANIFEST)
	@$(PREPARE_HOME)
	@$(SPARK_SERVICES); $(RUN_ENV) $(BIN)/python -m orchestration.run --demo $(DEMO_CUSTOMERS) $(DEMO_DAYS) $(DEMO_SEED) $(DEMO_START)

# The test command lints first; sqlfluff runs inside the suite (tests/dbt/test_marts.py).
test: lint-python $(MANIFEST)
	$(BIN)/python -m pytest

# dbt on a local Spark, compared table by table with DuckDB (starts its own Spark; needs Java).
test-spark: $(MANIFEST)
	$(BIN)/python -m pytest -m spark tests/dbt/test_spark.py tests/dbt/test_spark_ingest.py

lint-python: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lint: lint-python $(MANIFEST)
	cd dbt_project && CRM_WAREHOUSE_PATH=$${CRM_WAREHOUSE_PATH:-/tmp/crm_parse.duckdb} ../$(BIN)/sqlfluff lint models tests

dev: $(VENV)/.installed $(MANIFEST)
	@$(PREPARE_HOME)
	$(RUN_ENV) $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

docs: $(VENV)/.installed $(MANIFEST)
	cd dbt_project && $(RUN_ENV) ../$(BIN)/dbt docs generate --profiles-dir . --quiet
	@echo "dbt docs written to dbt_project/target/ (index.html, catalog.json)."
	@echo "Browse them: make docs-serve   (http://127.0.0.1:$(DOCS_PORT), Ctrl-C stops)"

docs-serve: $(VENV)/.installed $(MANIFEST)
	cd dbt_project && $(RUN_ENV) ../$(BIN)/dbt docs serve --profiles-dir . --host 127.0.0.1 --port $(DOCS_PORT) --no-browser

# A read-only SQL shell on the serving file (the project's DuckDB command line).
sql: $(VENV)/.installed
	@$(RUN_ENV) $(BIN)/python -m crm_warehouse.sql $${CRM_SERVING_PATH:-$(CRM_DATA_DIR)/serving/crm_serving.duckdb}

bench: $(VENV)/.installed $(MANIFEST)
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/pipeline.py --engine spark --sizes 100000

postgres:
	@bash scripts/postgres.sh

spark: $(VENV)/.installed
	@bash scripts/spark.sh

screenshots: $(VENV)/.installed $(MANIFEST)
	@bash scripts/browser.sh >/dev/null
	$(RUN_ENV) $(BIN)/python -m tests.ui_screenshots

lock: $(VENV)/.installed
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --no-header -o requirements.lock

clean:
	rm -rf $(VENV) dbt_project/target dbt_project/logs
