# The two set-up commands of the README: `make demo` and `make test`. Both create .venv and install
# what they need from this repository's own files.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU build from the package index; never an unpinned torch (it would pull several GB of CUDA wheels).
TORCH_SPEC ?= torch==2.13.0
STAMP  := $(VENV)/.installed

.PHONY: setup test test-fast demo lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip check
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

# The demo: the bundled checkpoint, synthetic data made on the fly, every CPU target and the TensorRT-RTX engines,
# into rfdeploy-bundle/ (a second run skips every unchanged step).
demo: setup
	$(BIN)/rfdeploy pipeline

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) demo-out rfdeploy-bundle .pytest_cache
