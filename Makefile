# hepbench: `make run` sets up, builds the default data subset, runs the benchmark and prints the
# score (results/mlpf_summary.json); `make test` runs the tests. `make run` installs only what the
# reference (TensorFlow) run needs, '.[cpu]', unless `make setup` has installed everything already;
# `make setup` and `make test` install everything (the jax and torch engines, Horovod, the extras).
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

# Horovod (multi-rank runs) is installed in a second step; WITH_HOROVOD=0 skips it. Its compiled
# wheels are kept in WHEELS, one folder per build key (container/install.sh: horovod_key), which
# the image builds share (container/dev.sh).
WITH_HOROVOD    ?= 1
WHEELS          ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/hepbench/wheels

PY       := $(VENV)/bin/python
HEPBENCH := $(VENV)/bin/hepbench
STAMP    := $(VENV)/.hepbench-installed
RUNSTAMP := $(VENV)/.hepbench-run-installed
HOROVOD  := $(VENV)/.horovod-installed
# The reference environment's engine versions (the TensorFlow extras hold TensorFlow's own pins).
CONSTRAINTS := container/constraints.txt
MANUAL   := $(WORK)/manual-s$(SEED)
TFDS     := $(WORK)/tfds-s$(SEED)
# The last file a build writes (after the element counts): its presence means a complete, verifiable build.
BUILT    := $(TFDS)/delphes_pf/1.1.0/checksums.json

.PHONY: setup data run test lint image image-gpu clean

setup: $(STAMP) $(if $(filter 1,$(WITH_HOROVOD)),$(HOROVOD))

PYTHON_CHECK := $(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "the reference environment (make setup, make run) is Python 3.11; run make PYTHON=/path/to/python3.11 (pip installs hepbench itself into 3.11-3.13: docs/installing.md)")'

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@$(PYTHON_CHECK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# One resolver run for everything (TensorFlow, TFDS, the qsvr and hpo extras and their pins solved
	# together), the JAX and PyTorch engines at the reference's versions.
	$(PY) -m pip install --quiet --constraint $(CONSTRAINTS) -e '.[cpu,jax,torch,test,qsvr,hpo]'
	touch $@

# `make run`'s own set-up: the TensorFlow reference engine alone, '.[cpu]' (no Horovod, JAX,
# PyTorch, qsvr or hpo extras: 1.9 GB of site-packages instead of 3.6 GB, docs/containers.md),
# unless `make setup` already installed everything for this pyproject.toml: that venv is reused.
$(RUNSTAMP): pyproject.toml $(CONSTRAINTS)
	@$(PYTHON_CHECK)
	@if [ -f $(STAMP) ] && [ ! pyproject.toml -nt $(STAMP) ] && [ ! $(CONSTRAINTS) -nt $(STAMP) ]; then \
	  echo "make run: reusing the venv of make setup"; else \
	  set -e; $(PYTHON) -m venv $(VENV); $(PY) -m pip install --quiet --upgrade pip; \
	  $(PY) -m pip install --quiet --constraint $(CONSTRAINTS) -e '.[cpu]'; fi
	touch $@

# Second step: Horovod by the image's own install phase, compiled against the TensorFlow just
# installed (a few minutes), or installed from the wheel an earlier build left under the same key
# (Horovod, TensorFlow, Python, libc, MPI or nompi: a wheel built without MPI is never installed
# where OpenMPI's compiler wrapper is). Gloo always; MPI too where mpicxx is installed. Reinstalled
# only when it no longer imports (a new TensorFlow breaks its extension).
$(HOROVOD): $(STAMP)
	@command -v cmake >/dev/null || $(PY) -m pip install --quiet 'cmake>=3.13,<4'
	$(PY) -c 'import horovod.tensorflow' 2>/dev/null || { $(PY) -m pip uninstall --quiet --yes horovod; \
	  env HEPBENCH_VENV="$(abspath $(VENV))" HEPBENCH_WHEELS="$(WHEELS)" \
	  HEPBENCH_PIP_CACHE="$$($(PY) -m pip cache dir 2>/dev/null)" PATH="$(abspath $(VENV))/bin:$$PATH" \
	  sh container/install.sh horovod; }
	@$(PY) -c 'import horovod, horovod.tensorflow as h; print(f"Horovod {horovod.__version__}: gloo {h.gloo_built()}, mpi {h.mpi_built()}")'
	touch $@

$(MANUAL)/.complete: $(RUNSTAMP)
	$(HEPBENCH) data synth --process ttbar --events $(TRAIN_EVENTS) --seed $(SEED) --out $(MANUAL) --jobs $(JOBS)
	$(HEPBENCH) data synth --process qcd --events $(TEST_EVENTS) --seed $(SEED) --out $(MANUAL) --jobs $(JOBS)
	touch $@

$(BUILT): $(MANUAL)/.complete
	$(HEPBENCH) data build --manual-dir $(MANUAL) --data-dir $(TFDS)

data: $(BUILT)

run: data
	$(HEPBENCH) run --data-dir $(TFDS) --resultsdir $(RESULTS) $(RUN_ARGS)

# The plugin prints each test module's total time at the end (tests/plugins/module_durations.py).
# -rs: every skip with its reason in the summary (a missing shared folder, tests/shared_folder.py).
# TEST_JOBS pytest-xdist workers, each taking one test module at a time (tests/plugins/xdist_units.py:
# a module's fixtures are built once; the image package, whose modules share one image build, is
# one unit): most tests wait on child processes, imports and image builds that use one core, so
# two workers keep CI's two cores busy (docs/development.md). At most 4: each worker and its
# children hold TensorFlow in memory. TEST_JOBS=0: one process.
TEST_JOBS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 4 ? n : 4 )))
test: setup lint
	$(PY) -m pytest -q -rs -p tests.plugins.module_durations $(if $(filter-out 0,$(TEST_JOBS)),-n $(TEST_JOBS) -p tests.plugins.xdist_units) $(PYTEST_ARGS)

# ruff's checks and formatter (configured in pyproject.toml) over hepbench/, tests/ and benchmarks/:
# make test fails on a violation; `.venv/bin/ruff format` and `ruff check --fix` repair most.
lint: setup
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check

# The container on a machine without a Docker engine (container/dev.sh); elsewhere: docker build -t mlpf-bmk .
IMAGE ?= localhost/mlpf-bmk:latest
image:
	container/dev.sh tools
	container/dev.sh base
	container/dev.sh build $(IMAGE)

# The GPU flavour (tensorflow[and-cuda], jax[cuda13], PyTorch's CUDA build, Horovod with NCCL;
# docs/containers.md, "The GPU flavour"): not in `make test` (about 11 GB; the figures of the run
# here are on that page too). BACKENDS_GPU: the engines it holds.
IMAGE_GPU    ?= localhost/mlpf-bmk:gpu
BACKENDS_GPU ?= tensorflow,jax,torch
image-gpu:
	container/dev.sh tools
	container/dev.sh base
	container/dev.sh build $(IMAGE_GPU) --build-arg FLAVOUR=gpu --build-arg BACKENDS=$(BACKENDS_GPU)

clean:
	rm -rf $(WORK) .pytest_cache
