# The two set-up commands of README.md: `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: install demo test lint bench-ingest bench-train bench-real bench-intervals bench-evaluate bench-serve bench-serve-floor bench-scale clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

install: $(INSTALLED)

## The main job on the embedded default (SQLite in var/): schema, a synthetic market, four
## trained families, an evaluated out-of-sample history, then the API on 127.0.0.1:8000.
demo: $(INSTALLED)
	$(BIN)/cryptopredict demo

test: $(INSTALLED)
	$(BIN)/pytest

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy config cryptopredict db models store cluster training serving

bench-ingest: $(INSTALLED)
	$(BIN)/python benchmarks/ingest.py

bench-train: $(INSTALLED)
	$(BIN)/python benchmarks/train.py

bench-real: $(INSTALLED)
	$(BIN)/python benchmarks/real_data.py

bench-intervals: $(INSTALLED)
	$(BIN)/python benchmarks/intervals.py

bench-evaluate: $(INSTALLED)
	$(BIN)/python benchmarks/evaluate.py

bench-serve: $(INSTALLED)
	$(BIN)/python benchmarks/serve.py

bench-serve-floor: $(INSTALLED)
	$(BIN)/python benchmarks/serve_floor.py

bench-scale: $(INSTALLED)
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf var mlruns .pytest_cache .ruff_cache .mypy_cache
