# Fanhub developer commands. `make run` and `make test` work on a fresh clone with nothing but
# Python 3.11+: without DATABASE_URL / REDIS_URL they start an embedded PostgreSQL and Redis.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.9
PYTEST_ARGS ?=

.PHONY: help install run test bench screens lint embedded-status embedded-stop clean

help:
	@echo "make run     start web + worker + beat with demo data on http://127.0.0.1:8000/"
	@echo "make test    run the whole test suite"
	@echo "make bench   benchmarks into bench/results.json (BENCH=search for one)"
	@echo "make screens screenshots of the main pages into bench/screens/"
	@echo "make lint    ruff: lint rules and formatting"

$(VENV)/.installed: pyproject.toml uv.lock
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv sync --frozen --inexact --python $(PY)
	touch $@

install: $(VENV)/.installed

run: install
	bin/run

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

screens: install
	SCREENS_DIR=$(CURDIR)/bench/screens $(PY) -m pytest -p no:cacheprovider -n 0 tests/e2e/test_screens.py
	@echo "screenshots in bench/screens/"

bench: install
	$(PY) -m bench.runner $(BENCH)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

embedded-status: install
	$(PY) -m config.embedded status

embedded-stop: install
	$(PY) -m config.embedded stop

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
