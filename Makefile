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
PYTEST_ARGS  ?=

# Horovod (multi-rank runs) is compiled in a second step; WITH_HOROVOD=0 skips it.
WITH_HOROVOD    ?= 1
HOROVOD_VERSION := 0.28.1

PY       := $(VENV)/bin/python
HEPBENCH := $(VENV)/bin/hepbench
STAMP    := $(VENV)/.hepbench-installed
HOROVOD  := $(VENV)/.horovod-installed
MANUAL   := $(WORK)/manual-s$(SEED)
TFDS     := $(WORK)/tfds-s$(SEED)
BUILT    := $(TFDS)/delphes_pf/1.1.0/dataset_info.json

.PHONY: setup data run test image clean

setup: $(STAMP) $(if $(filter 1,$(WITH_HOROVOD)),$(HOROVOD))

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "hepbench needs Python 3.11; run make PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# One resolver run for everything (TensorFlow, TFDS, the qsvr and hpo extras and their pins solved together).
	$(PY) -m pip install --quiet -e '.[cpu,test,qsvr,hpo]'
	touch $@

# Second step: Horovod compiled against the TensorFlow just installed, hence no build isolation
# (a few minutes). Gloo always; MPI too where OpenMPI's compiler wrapper is installed. Rebuilt
# only when it no longer imports (a new TensorFlow breaks its extension). No pip cache: a cached
# wheel would not notice that MPI has appeared or gone since it was built.
$(HOROVOD): $(STAMP)
	@command -v cmake >/dev/null || $(PY) -m pip install --quiet 'cmake>=3.13,<4'
	$(PY) -c 'import horovod.tensorflow' 2>/dev/null || { $(PY) -m pip uninstall --quiet --yes horovod; \
	  env HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
	  $$(command -v mpicxx >/dev/null && echo HOROVOD_WITH_MPI=1 || echo HOROVOD_WITHOUT_MPI=1) \
	  PATH="$(abspath $(VENV))/bin:$$PATH" MAKEFLAGS=-j$(JOBS) \
	  $(PY) -m pip install --quiet --no-build-isolation --no-cache-dir horovod==$(HOROVOD_VERSION); }
	@$(PY) -c 'import horovod, horovod.tensorflow as h; print(f"Horovod {horovod.__version__}: gloo {h.gloo_built()}, mpi {h.mpi_built()}")'
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
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The container on a machine without a Docker engine (container/dev.sh); elsewhere: docker build -t mlpf-bmk .
IMAGE ?= localhost/mlpf-bmk:latest
image:
	container/dev.sh tools
	container/dev.sh base
	container/dev.sh build $(IMAGE)

clean:
	rm -rf $(WORK) .pytest_cache
