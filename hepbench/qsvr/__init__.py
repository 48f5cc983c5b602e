"""Performance prediction: SVR and quantum SVR (the SVR dual as a QUBO) of MLPF learning curves."""
