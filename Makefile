# Two commands on a fresh machine:  `make demo`  and  `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOOKALIKE_SAMPLE_CATALOG ?= ../shared/datasets/fashion-products-dev
CATALOG := $(if $(wildcard $(LOOKALIKE_SAMPLE_CATALOG)/labels.csv),$(LOOKALIKE_SAMPLE_CATALOG)/labels.csv,$(LOOKALIKE_SAMPLE_CATALOG))
QUERY ?= $(firstword $(wildcard $(LOOKALIKE_SAMPLE_CATALOG)/images/*.jpg) $(wildcard $(LOOKALIKE_SAMPLE_CATALOG)/*/*.jpg))

.PHONY: install demo test lint format bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install only when the project's dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	@test -e "$(LOOKALIKE_SAMPLE_CATALOG)" || { echo "sample catalog not found at $(LOOKALIKE_SAMPLE_CATALOG); set LOOKALIKE_SAMPLE_CATALOG"; exit 1; }
	$(BIN)/lookalike ingest "$(CATALOG)"
	$(BIN)/lookalike stats
	$(BIN)/lookalike search "$(QUERY)" -k 8

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) .lookalike .pytest_cache .mypy_cache .ruff_cache
