# cdpd: `make run` builds the default workspace, `make test` runs the tests. Both set up .venv first if needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE := 1

.PHONY: setup run test app benchmark clean-workspace

setup: $(STAMP)

# torch first, pinned, so that nothing resolves an unpinned torch (and its GBs of CUDA packages) later.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

# the main job: build or update the default workspace, then open the app on it (CDPD_NO_APP=1: stop after the job)
run: setup
	$(BIN)/cdpd run
	@if [ -z "$$CDPD_NO_APP" ]; then $(BIN)/cdpd app; fi

test: setup
	$(BIN)/python -m pytest -q

app: setup
	$(BIN)/cdpd app

benchmark: setup
	$(BIN)/python benchmarks/tagging.py

clean-workspace:
	rm -rf workspace
