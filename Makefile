# Two commands on a fresh machine:  `make demo`  and  `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOOKALIKE_SAMPLE_CATALOG ?= ../shared/datasets/fashion-products-dev
CATALOG := $(if $(wildcard $(LOOKALIKE_SAMPLE_CATALOG)/labels.csv),$(LOOKALIKE_SAMPLE_CATALOG)/labels.csv,$(LOOKALIKE_SAMPLE_CATALOG))
QUERY ?= $(firstword $(wildcard $(LOOKALIKE_SAMPLE_CATALOG)/images/*.jpg) $(wildcard $(LOOKALIKE_SAMPLE_CATALOG)/*/*.jpg))

HOST ?= 127.0.0.1
PORT ?= 8000
DEMO_KEY ?= demo-key

.PHONY: install web demo test screenshots lint format clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Re-install only when the project's dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The React front end: web/dist, served by the API at /.
web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

web/dist/index.html: web/node_modules/.installed $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/scripts/docs-assets.mjs web/openapi.json
	cd web && npm run build

web: web/dist/index.html

demo: install web
	@test -e "$(LOOKALIKE_SAMPLE_CATALOG)" || { echo "sample catalog not found at $(LOOKALIKE_SAMPLE_CATALOG); set LOOKALIKE_SAMPLE_CATALOG"; exit 1; }
	$(BIN)/lookalike ingest "$(CATALOG)"
	$(BIN)/lookalike search "$(QUERY)" -k 5
	@echo
	@echo "  Open http://$(HOST):$(PORT)/  (API docs: http://$(HOST):$(PORT)/docs)"
	@echo "  Writes (Manage page) use the API key '$(DEMO_KEY)'; Ctrl+C stops the server."
	@echo
	LOOKALIKE_HOST=$(HOST) LOOKALIKE_PORT=$(PORT) LOOKALIKE_API_KEYS=$(DEMO_KEY) $(BIN)/python app.py

test: install web
	$(BIN)/python -m pytest

# The README's pictures: the browser tests photograph the pages; those of catalog pages
# come from public-domain clip art (apt-get install openclipart-png), as the dev set's
# photos may not be republished.
screenshots: install web
	$(BIN)/python -m pytest -q tests/web/test_public_screenshots.py tests/web/test_e2e.py
	cp reports/screenshots/public/*.png reports/screenshots/home.png reports/screenshots/import.png docs/screenshots/

lint: install
	$(BIN)/ruff check src tests benchmarks app.py train.py
	$(BIN)/ruff format --check src tests benchmarks app.py train.py
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --fix src tests benchmarks app.py train.py
	$(BIN)/ruff format src tests benchmarks app.py train.py

clean:
	rm -rf $(VENV) .lookalike .pytest_cache .mypy_cache .ruff_cache web/node_modules web/dist
