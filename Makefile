# `make demo` and `make test` set everything up on a fresh machine: they create
# .venv when missing, install with constraints.txt (once: the stamp file makes a
# second run skip the install unless pyproject.toml or constraints.txt changed).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := runs/demo

.PHONY: install demo lint docs test test-slow bench transcripts compatibility clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[all,dev]"
	$(BIN)/python -m compileall -q cnnspec backends  # start-up speed where PYTHONDONTWRITEBYTECODE is set
	touch $(STAMP)

demo: $(STAMP)
	for spec in specs/*.yaml; do $(BIN)/cnnspec validate $$spec || exit 1; done
	$(BIN)/cnnspec summary specs/digits_cnn.yaml
	rm -rf $(DEMO)
	$(BIN)/cnnspec train specs/digits_cnn.yaml --backend torch --out $(DEMO)/torch
	$(BIN)/cnnspec evaluate $(DEMO)/torch
	$(BIN)/cnnspec train specs/digits_cnn.yaml --backend keras --out $(DEMO)/keras
	$(BIN)/cnnspec evaluate $(DEMO)/keras --backend torch
	$(BIN)/cnnspec export onnx $(DEMO)/torch --output $(DEMO)/digits_cnn.onnx
	$(BIN)/cnnspec evaluate $(DEMO)/digits_cnn.onnx
	$(BIN)/cnnspec report $(DEMO)/torch
	$(BIN)/cnnspec parity specs/every_layer.yaml

# Keras-involving tests (marked `keras` by tests/conftest.py) again on TensorFlow's stock kernels: CPUs
# without AVX-512 VNNI/BF16 or AMX run those by default (oneDNN off), and they refuse things oneDNN accepts.

# Lint, format and types first: they take seconds, the suite minutes.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# One pytest-xdist worker a core, at most 4 (each holds TensorFlow and torch, about 2 GB), each with
# its share of threads (tests/conftest.py); whole files per worker, so module fixtures train once.
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count(); print(max(1, min(cores or 1, 4)))")
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# The documentation site, its reference pages generated from the code (docs/hooks.py); --strict fails on any
# warning (a broken link, a missing page, an unresolved API reference).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# `make test` stays under 30 minutes on 2 cores; the slow tests (long training runs, the large keras.applications
# models) run in CI after it (`.ci/run`: `make test test-slow`).
test: lint docs
	$(PYTEST) -m "not slow"
	TF_ENABLE_ONEDNN_OPTS=0 $(PYTEST) -q -m "keras and not slow"

test-slow: $(STAMP)
	$(PYTEST) -m slow

bench: $(STAMP)
	$(BIN)/python -m compileall -q cnnspec backends  # fresh bytecode: start-up is part of what is measured
	$(BIN)/python benchmarks/run_all.py

# The console examples of README.md and docs/, run for real (tests/docs/test_readme.py checks the copies)
transcripts: $(STAMP)
	$(BIN)/python docs/transcripts.py

# The keras.applications table of README.md and docs/compatibility.md, measured (about 10 minutes)
compatibility: $(STAMP)
	$(BIN)/python docs/compatibility.py

clean:
	rm -rf $(VENV) runs site .pytest_cache .hypothesis .mypy_cache .ruff_cache
