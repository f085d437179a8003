# Two entry points: `make demo` (the main job, offline, embedded default) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_REQUEST ?= the semiaquatic egg-laying mammal endemic to eastern Australia, swimming in a creek at dawn
export LANGGRAPH_CLI_NO_ANALYTICS=1
export LANGGRAPH_NO_VERSION_CHECK=true
export LANGSMITH_TRACING=false

.PHONY: setup demo test lint clean

setup: $(VENV)/.installed

# torch is pinned to the CPU build for the embedded default; see README for GPUs.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[cpu,corpus,embedded-llm,embedded-llm-small,dev]"
	touch $@

demo: setup
	$(BIN)/contextgen corpus seed
	$(BIN)/contextgen generate "$(DEMO_REQUEST)" --out outputs/demo

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) outputs .pytest_cache
