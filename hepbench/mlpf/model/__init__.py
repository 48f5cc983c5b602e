"""The MLPF PFNetDense graph network in Keras 3 (written with keras.ops: backend-neutral)."""
