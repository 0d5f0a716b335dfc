# Two entry points for a fresh machine (see README):
#   make run   - install everything into .venv, then `kedro run` (every pipeline, embedded synthetic market)
#   make test  - install everything into .venv, then run the test suite
#   make clean-data [ENV=test] - delete the outputs of one environment's pipelines (default: local),
#                  i.e. the files its catalog writes under its data root; input folders are kept
PYTHON ?= python3
ENV ?= local
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test clean-data

install: $(STAMP)

# torch is installed first and pinned: 2.13.0 is the CPU build available on this machine
# (an open range would pull a multi-GB CUDA build).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: install
	$(BIN)/kedro run

test: install
	$(BIN)/python -m pytest

clean-data: install
	$(BIN)/python -m atft_kedro.clean_data --env $(ENV)
