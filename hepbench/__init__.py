"""hepbench: the MLPF training benchmark (throughput on CPU, GPU and Horovod) for HEPscore.

core   what every workload shares (errors, files, the HEPscore envelope, CLI types, host info)
mlpf   the main workload, mlpf-bmk: data, model, training loop, engines, run, report
qsvr   SVR / quantum-SVR performance prediction and the qsvr-bmk workload
hpo    Ray Tune searches of MLPF and the hpo-bmk workload
cli    the `hepbench` command, which registers each workload's commands
"""

import os

__version__ = "0.1.0"

# TensorFlow turns its oneDNN CPU kernels on by default only on some x86 CPUs; on the AMD EPYC
# development machines they make a plain fp32 matmul 1.8x and a training step ~10 % faster.
# This must be set before TensorFlow is imported; an explicit TF_ENABLE_ONEDNN_OPTS=0 still wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
