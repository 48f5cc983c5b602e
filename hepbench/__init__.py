"""hepbench: the MLPF training benchmark (throughput on CPU, GPU and Horovod) for HEPscore."""

__version__ = "0.1.0"
