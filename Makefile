# hepbench: `make run` sets up, builds the default data subset, runs the benchmark and prints the
# score (results/mlpf_summary.json); `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
WORK   ?= work
# Default data subset, as in CERN's containers (delphes_pf 1.1.0 subset): 2,000 ttbar + 200 QCD events.
SEED         ?= 0
TRAIN_EVENTS ?= 2000
TEST_EVENTS  ?= 200
JOBS         ?= $(shell nproc 2>/dev/null || echo 1)
RESULTS      ?= results
RUN_ARGS     ?=

PY       := $(VENV)/bin/python
HEPBENCH := $(VENV)/bin/hepbench
STAMP    := $(VENV)/.hepbench-installed
MANUAL   := $(WORK)/manual-s$(SEED)
TFDS     := $(WORK)/tfds-s$(SEED)
BUILT    := $(TFDS)/delphes_pf/1.1.0/dataset_info.json

.PHONY: setup data run test image clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "hepbench needs Python 3.11; run make PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# One resolver run for everything (TensorFlow, TFDS and their pins must be solved together).
	$(PY) -m pip install --quiet -e '.[cpu,test]'
	touch $@

$(MANUAL)/.complete: $(STAMP)
	$(HEPBENCH) data synth --process ttbar --events $(TRAIN_EVENTS) --seed $(SEED) --out $(MANUAL) --jobs $(JOBS)
	$(HEPBENCH) data synth --process qcd --events $(TEST_EVENTS) --seed $(SEED) --out $(MANUAL) --jobs $(JOBS)
	touch $@

$(BUILT): $(MANUAL)/.complete
	$(HEPBENCH) data build --manual-dir $(MANUAL) --data-dir $(TFDS)

data: $(BUILT)

run: data
	$(HEPBENCH) run --data-dir $(TFDS) --resultsdir $(RESULTS) $(RUN_ARGS)

test: setup
	$(PY) -m pytest -q

# The container on a machine without a Docker engine (container/dev.sh); elsewhere: docker build -t mlpf-bmk .
IMAGE ?= localhost/mlpf-bmk:latest
image:
	container/dev.sh tools
	container/dev.sh base
	container/dev.sh build $(IMAGE)

clean:
	rm -rf $(WORK) .pytest_cache
