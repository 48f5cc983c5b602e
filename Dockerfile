# mlpf-bmk: MLPF training-throughput workload for HEPscore (see README.md, "The container").
#
#   docker build -t mlpf-bmk .                                      # CPU flavour, generated data
#   docker build --build-arg FLAVOUR=gpu -t mlpf-bmk:gpu .          # tensorflow[and-cuda]
#   docker build --build-arg BACKENDS=tensorflow,jax,torch -t mlpf-bmk:all .   # the JAX and PyTorch engines too
#   docker build --build-arg DATA_SOURCE=zenodo -t mlpf-bmk .       # the published files (network)
#   docker build --secret id=pipcert,src=/path/ca.pem ...           # a site proxy's CA, for pip only
#
# Both this file and Singularity.def run container/install.sh, phase by phase.
ARG BASE_IMAGE=debian:bookworm-slim

# Three stages before the image, each a layer-cache unit (a build's --target can name one): `deps`
# (the big layers: every requirement, Horovod) and `runtime` (the run-time OS and deps' venv)
# depend only on pyproject.toml, container/constraints.txt and install.sh; `build` adds hepbench and its data. In this order,
# because a builder that builds every stage up to its --target then builds no more than it needs.
FROM ${BASE_IMAGE} AS deps
ARG FLAVOUR=cpu
ARG BACKENDS=tensorflow
ENV HEPBENCH_FLAVOUR=${FLAVOUR} HEPBENCH_BACKENDS=${BACKENDS}
COPY container/install.sh /opt/hepbench/install.sh
RUN sh /opt/hepbench/install.sh system-build
# The requirements and Horovod from pyproject.toml and the reference constraints alone, before the
# source is copied (README.md, which only hepbench's own metadata reads, comes with the source: an
# edit of it leaves this layer in the cache).
COPY pyproject.toml /opt/hepbench/src/
COPY container/constraints.txt /opt/hepbench/src/container/constraints.txt
RUN --mount=type=secret,id=pipcert sh /opt/hepbench/install.sh deps horovod

# Runtime packages, no compilers or headers, and the venv as deps left it (without hepbench): a code
# change leaves this copy, the image's biggest layer, in the cache.
FROM ${BASE_IMAGE} AS runtime
ARG FLAVOUR=cpu
ARG BACKENDS=tensorflow
ENV HEPBENCH_FLAVOUR=${FLAVOUR} HEPBENCH_BACKENDS=${BACKENDS}
COPY container/install.sh /opt/hepbench/install.sh
RUN sh /opt/hepbench/install.sh system-runtime \
 && useradd --uid 1000 --user-group --no-create-home --home-dir /tmp hepbench \
 && mkdir -p /results && chmod 1777 /results
COPY --from=deps /opt/hepbench/venv /opt/hepbench/venv

FROM deps AS build
COPY README.md /opt/hepbench/src/README.md
COPY results_schema /opt/hepbench/src/results_schema
COPY hepbench /opt/hepbench/src/hepbench
RUN --mount=type=secret,id=pipcert sh /opt/hepbench/install.sh python
# The data settings only here, so that a smaller subset (the image test's) shares the layers above.
ARG DATA_SOURCE=synthetic
ARG TRAIN_EVENTS=2000
ARG TEST_EVENTS=200
ARG SEED=0
ENV HEPBENCH_DATA_SOURCE=${DATA_SOURCE} HEPBENCH_TRAIN_EVENTS=${TRAIN_EVENTS} HEPBENCH_TEST_EVENTS=${TEST_EVENTS} \
    HEPBENCH_SEED=${SEED}
# Then what python and data added (hepbench's installed files, the data, the source), in one folder.
RUN sh /opt/hepbench/install.sh data layer

# The image: the runtime stage, and hepbench and its data on top.
FROM runtime
ARG FLAVOUR=cpu
ARG BACKENDS=tensorflow
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="mlpf-bmk" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.description="MLPF (CMS machine-learned particle flow) training throughput benchmark for HEPscore; flavour ${FLAVOUR}, engines ${BACKENDS}" \
      org.opencontainers.image.source="https://github.com/hepbench/hepbench" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/hepbench-layer/ /
COPY entrypoint.sh /entrypoint.sh
RUN sh /opt/hepbench/install.sh verify
# `docker run --entrypoint ...`, `apptainer exec` and mpirun/srun start hepbench without the driver:
# hepbench and the data in reach, and Keras's and matplotlib's files under /tmp as the driver puts
# them, not in $HOME (a site's shared home under `apptainer exec` without --contain). The driver
# names the folder by uid (/tmp may be the host's, shared by users); an ENV value cannot, so it
# names the image's user's (1000): other uids set KERAS_HOME/MPLCONFIGDIR or start the driver.
ENV PATH=/opt/hepbench/venv/bin:/usr/local/bin:/usr/bin:/bin HEPBENCH_DATA_DIR=/opt/hepbench/data/tfds \
    KERAS_HOME=/tmp/mlpf-bmk-home-1000/.keras MPLCONFIGDIR=/tmp/mlpf-bmk-home-1000/.matplotlib
USER 1000:1000
WORKDIR /tmp
ENTRYPOINT ["/entrypoint.sh"]
