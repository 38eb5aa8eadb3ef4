# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint format bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall whenever a requirements file changes.
$(STAMP): $(BIN)/python requirements/base.txt requirements/dev.txt
	$(BIN)/pip install --disable-pip-version-check -q -r requirements/dev.txt
	touch $(STAMP)

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
