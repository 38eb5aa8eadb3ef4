# The README's commands: `make run`, `make test` (fast tier), `make test-all`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-all flake-check matrix messages lint format screenshot bench bench-smoke

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

# Two pytest processes (pytest-xdist); a module's tests stay together, so a
# stack a module starts is started once. PYTEST_WORKERS=0 runs in one process.
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadscope

# The fast tier, after each change: real Redis, Daphne, Celery and Chromium on
# the core path; the tests marked slow, bench or package wait for test-all.
test: $(STAMP)
	$(PYTEST) -m "not slow and not bench and not package" $(PYTEST_ARGS)

# Everything: what .ci/run runs on SQLite and on PostgreSQL.
test-all: $(STAMP)
	$(PYTEST) $(PYTEST_ARGS)

# Rerun FLAKE_TESTS FLAKE_RUNS times in a row; stops at the first failure. Run
# it with load beside it (README, "Tests"). The default is the whole suite but the
# package builds: every test that starts processes or a browser, and the unit
# tests, which cost little beside them.
FLAKE_RUNS ?= 10
FLAKE_TESTS ?= tests -m "not package"
flake-check: $(STAMP)
	@for run in $$(seq $(FLAKE_RUNS)); do \
		echo "flake-check: run $$run of $(FLAKE_RUNS)"; \
		$(PYTEST) -q -p no:cacheprovider $(FLAKE_TESTS) $(PYTEST_ARGS) || exit 1; \
	done; echo "flake-check: $(FLAKE_RUNS) of $(FLAKE_RUNS) passed"

# The version matrix (noxfile.py; README, "Supported versions"). The other
# Pythons come from PATH or pyenv's versions; SESSIONS picks some (nox -s).
PYENV_PYTHONS := $(wildcard $(HOME)/.pyenv/versions/3.1[123]*/bin)
empty :=
MATRIX_PATH := $(subst $(empty) $(empty),:,$(strip $(PYENV_PYTHONS) $(PATH)))
SESSIONS ?=
matrix: $(STAMP)
	PATH="$(MATRIX_PATH)" $(BIN)/nox $(if $(SESSIONS),-s $(SESSIONS)) $(NOX_ARGS)

# The app's catalogues (notifications/locale): collect the strings of the code,
# templates and notifications/text.py, then compile. Needs Debian's gettext.
messages: $(STAMP)
	cd notifications && export PYTHONPATH=.. DJANGO_SETTINGS_MODULE=config.settings DJANGO_DEBUG=true && \
		../$(BIN)/django-admin makemessages -l en -l zh_Hans --no-location && \
		../$(BIN)/django-admin compilemessages

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
