# The front door: `make run` paper-trades the demo bundle; `make test` lints and tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-slow lint format bench bench-full compat clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/rustybt live -f examples/quickstart.py --broker paper --bundle demo --speed max

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

# Long trial counts (the full crash harness, chaos suites): tests marked `slow`.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# quick (under 20 minutes on 2 cores): ratios table first, 3 runs of every backtest job
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all --runs 3 --only backtest,history,live,journal,risk_gate,checkpoint,shadow,streaming

# everything: every section (restart, reconcile, soak, venues), 5 runs per backtest job
bench-full: $(STAMP)
	$(BIN)/python -m benchmarks.run_all --runs 5

# zipline-reloaded's own examples (from the peer venv, imports renamed) through `rustybt run`.
compat: $(STAMP)
	$(BIN)/python -m benchmarks.zipline_compat

clean:
	rm -rf $(VENV) .pytest_cache
