# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format screenshot bench bench-smoke

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever a requirements file changes.
$(STAMP): $(BIN)/python requirements/base.txt requirements/dev.txt
	$(BIN)/pip install --disable-pip-version-check -q -r requirements/dev.txt
	touch $(STAMP)

# The benchmark's plotting and profiling tools, only for `make bench`.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP) requirements/bench.txt
	$(BIN)/pip install --disable-pip-version-check -q -r requirements/bench.txt
	touch $(BENCH_STAMP)

run: $(STAMP)
	$(BIN)/python -m config.run

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Retake the README's picture of the demo page (docs/screenshot.png) in the test browser.
screenshot: $(STAMP)
	UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest tests/test_browser.py -k demo_page

# The benchmark (bench/README.md): full sizes, results JSON and plots into docs/.
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.run --out bench/results/full.json --plots docs $(BENCH_ARGS)

# The CI size: under a minute.
bench-smoke: $(STAMP)
	$(BIN)/python -m bench.run --smoke $(BENCH_ARGS)
