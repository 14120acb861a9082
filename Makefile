# isobench - the two commands a user needs are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
ISOBENCH := $(VENV)/bin/isobench
OUT ?= isobench-runs/demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: setup demo test lint unit bench clean

setup:
	@bash scripts/setup-host.sh

demo: setup
	$(ISOBENCH) doctor || true
	$(ISOBENCH) run --precision 3% --out $(OUT)
	@echo "report: $(OUT)/report.html (open it in a browser; CSV beside it)"

test: setup
	$(PY) -m ruff check isobench tests benchmarks
	$(PY) -m mypy isobench
	$(PY) -m pytest -q -p no:cacheprovider --timeout=900 tests

unit: setup
	$(PY) -m pytest -q -m "not integration" tests

lint:
	$(PY) -m ruff check isobench tests benchmarks
	$(PY) -m ruff format --check isobench tests benchmarks
	$(PY) -m mypy isobench

bench: setup
	$(PY) benchmarks/loadgen.py
	$(PY) benchmarks/telemetry.py

clean:
	$(ISOBENCH) clean
