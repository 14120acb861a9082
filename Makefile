# isobench - the two commands a user needs are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
ISOBENCH := $(VENV)/bin/isobench
OUT ?= isobench-runs/demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: setup venv demo test lint unit bench clean

setup:
	@bash scripts/setup-host.sh

# The Python environment alone (no root, no apt, no dockerd): what `make unit` needs.
# The stamp is the one scripts/setup-host.sh keeps, so either refreshes it when pyproject.toml changes.
venv: $(VENV)/.isobench-installed

$(VENV)/.isobench-installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $@

demo: setup
	$(ISOBENCH) doctor || true
	$(ISOBENCH) run --precision 3% --out $(OUT)
	@echo "report: $(OUT)/report.html (open it in a browser; CSV beside it)"

test: setup
	$(PY) -m ruff check isobench tests benchmarks
	$(PY) -m mypy isobench
	$(PY) -m pytest -q -p no:cacheprovider --timeout=900 --durations=15 tests

unit: venv
	$(PY) -m pytest -q -p no:cacheprovider -m "not integration" tests

lint:
	$(PY) -m ruff check isobench tests benchmarks
	$(PY) -m ruff format --check isobench tests benchmarks
	$(PY) -m mypy isobench

bench: setup
	$(PY) benchmarks/loadgen.py
	$(PY) benchmarks/telemetry.py

clean:
	$(ISOBENCH) clean
