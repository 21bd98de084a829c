# Set-up and the two commands the README gives. Everything installs into .venv from the project's own files.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The pinned CPU build of PyTorch (an unpinned torch pulls a multi-GB CUDA build).
TORCH := torch==2.13.0

.PHONY: setup demo test bench clean

$(BIN)/crossfuse: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/crossfuse

setup: $(BIN)/crossfuse

demo: setup
	$(BIN)/crossfuse demo --out demo_out --overwrite

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo_out
