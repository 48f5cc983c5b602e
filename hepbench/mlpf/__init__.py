"""The MLPF training benchmark (mlpf-bmk), the main workload."""
