"""The MLPF training benchmark (mlpf-bmk), the main workload.

config      typed configuration from YAML; defaults.yaml holds the reference values
config_cli  --config, --set, --precision and the study hyperparameters as options
data/       the Delphes data set: format, reader, generator, TFDS builder (array_record), host input
            pipeline (NumPy, no TensorFlow)
model/      the PFNetDense graph network (Keras 3) and its loss
engines/    the engine seam (base), the backends and their engines: TensorFlow, JAX, PyTorch
train/      the training loop, optimizer and throughput timing
run/        `hepbench run` and `hepbench scale`: the benchmark's phases, copies, Horovod and DDP ranks
report/     mlpf_summary.json, its text view, plots and MLLOG lines
cli         register(subparsers): the run, scale, data, model and report groups
"""
