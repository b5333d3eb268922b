# ctq: `make run` starts the whole stack, `make test` runs every test. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUM := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# `make run` installs what running needs; test and lint tools come with `make test`/`lint`.
RUN_STAMP := $(VENV)/.installed-run-$(SUM)
STAMP := $(VENV)/.installed-test-$(SUM)
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: run test unit integration lint bench bench-small clean

$(RUN_STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "ctq needs Python 3.11+; set PYTHON=python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) -e .
	@rm -f $(VENV)/.installed-* && touch $@

$(STAMP): $(RUN_STAMP)
	$(PIP) -e '.[test]'
	@touch $@

run: $(RUN_STAMP)
	$(BIN)/ctq up

test: $(STAMP)
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy config worker tasks scheduler cli sandbox api benchmarks

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

bench-small: $(STAMP)
	$(BIN)/python -m benchmarks.run --small

clean:
	rm -rf $(VENV) .ctq .pytest_cache .mypy_cache .ruff_cache
