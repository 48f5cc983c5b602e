"""The MLPF PFNetDense graph network in Keras 3 (written with keras.ops: backend-neutral).

layers    input encoding, feed-forward blocks, GHConvDense and the LSH graph layer
decoding  the point-wise heads that turn node embeddings into particle predictions
mlpf      PFNetDense and build_model(ModelConfig)
init      initial weights drawn with NumPy from the seed (identical on every backend), set_random_seed
losses    the MLPF training loss
flops     analytic FLOP count per event (no TensorFlow)
cli       `hepbench model summary`
"""
