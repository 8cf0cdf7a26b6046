# Every target sets itself up: a virtualenv in .venv with the package and its
# dev extra installed. The stamp file is rebuilt whenever pyproject.toml changes.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG := config/aggregator.toml

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/aggregator --config $(CONFIG) ingest
	$(BIN)/aggregator --config $(CONFIG) clusters
	$(BIN)/aggregator --config $(CONFIG) duplicates

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check aggregator tests bench
	$(BIN)/ruff format --check aggregator tests bench
	$(BIN)/mypy aggregator

bench: $(STAMP)
	$(BIN)/python -m bench.ingest --sizes 1000,10000

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
