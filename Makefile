# Two entry points for a fresh machine: `make demo` and `make test`. Both create or update
# .venv from the pinned requirements (a stamp file makes re-runs a no-op) and then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint setup clean

setup: $(STAMP)

# Makefile is a prerequisite: the --no-deps pin below lives here.
$(STAMP): requirements.txt requirements-dev.txt setup.py setup.cfg package.xml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	# Type stubs only (test/test_typing.py); --no-deps: their tensorrt dependency cannot download.
	$(BIN)/python -m pip install --quiet --no-deps tensorrt-stubs==10.13.0.35.1
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/siftrain demo

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info
