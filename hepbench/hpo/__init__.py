"""Hyperparameter optimisation of MLPF with Ray Tune (the `hpo` extra): the study's search space,
a trainable, ASHA / Hyperband / BOHB / a prediction-based scheduler, replay of recorded learning
curves, and the hpo-bmk workload. Ray is imported only by the modules that need it.
"""
