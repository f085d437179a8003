# Two entry points: `make demo` (the main job, offline, embedded default) and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_REQUEST ?= the semiaquatic egg-laying mammal endemic to eastern Australia, swimming in a creek at dawn
export LANGGRAPH_CLI_NO_ANALYTICS=1
export LANGGRAPH_NO_VERSION_CHECK=true
export LANGSMITH_TRACING=false

.PHONY: setup demo test lint clean browser postgres

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

test: setup $(VENV)/.edit-path browser postgres
	$(BIN)/python -m pytest

# The edit pipeline (Qwen-Image-Edit's QwenImageEditPlusPipeline) takes a Qwen2VLProcessor,
# whose video half needs torchvision, and no torchvision loads with CPU torch 2.13. Tests run
# on this pair instead (CUDA builds that also run on a CPU: about 2 minutes and 4.6 GB more).
EDIT_PATH_TORCH := torch==2.14.1 torchvision==0.29.1
$(VENV)/.edit-path: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet $(EDIT_PATH_TORCH)
	touch $@

# The report test opens report.html in headless Chromium: Debian's `chromium` package.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ if command -v apt-get >/dev/null 2>&1; then \
	    $(SUDO) apt-get update -qq && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "No chromium: the report-in-browser test will be skipped."; fi; }

# The checkpoint tests start a throwaway PostgreSQL cluster: Debian's `postgresql` package.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	{ if command -v apt-get >/dev/null 2>&1; then \
	    $(SUDO) apt-get update -qq && \
	    $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; \
	  else echo "No PostgreSQL: the Postgres checkpoint tests will be skipped."; fi; }

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) outputs .pytest_cache
