# Grantline: `make up` / `make down` run the embedded stack (no Docker), `make test` the whole suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.grantline-installed
PYTEST_ARGS ?=
# Two workers, a test file each at a time (its module fixtures stay whole): most of the suite waits on
# servers and brokers, so two cores run it in about half the time. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2

.PHONY: up down status test bench bench-tools lint install clean clean-all browser

# The virtualenv is created once; the project is (re)installed whenever pyproject.toml changes.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/python -m tools.stack.cli up

down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m tools.stack.cli down; else echo "nothing to stop (no $(VENV))"; fi

status: $(STAMP)
	@$(BIN)/python -m tools.stack.cli status || true

# Browser tests drive Debian's Chromium through Playwright (never `playwright install`: no
# downloads here). Installed when missing and we may; the browser tests skip, saying why, otherwise.
browser:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian chromium + a CJK font for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null) \
	    || echo "could not install chromium; browser tests will be skipped"; \
	fi

test: $(STAMP) browser
	$(BIN)/pytest -q -p no:cacheprovider -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# wrk drives the intake baseline (the Python load generator saturates before a hello-world server).
bench-tools:
	@if ! command -v wrk >/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) \
	    || echo "could not install wrk; the bench falls back to its Python load generator"; \
	fi

bench: $(STAMP) bench-tools
	$(BIN)/python -m tools.bench

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/mypy shared services tools && $(BIN)/lint-imports

clean:
	rm -rf build test-artifacts .pytest_cache .mypy_cache .ruff_cache *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

# Also stops the stack and deletes its data (.grantline/) and the virtualenv.
clean-all: down clean
	rm -rf .grantline $(VENV)
