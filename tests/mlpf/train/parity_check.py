"""Run as a script, one backend per process (Keras picks its backend once per process):

    python -m tests.mlpf.train.parity_check tensorflow|jax|torch [fp32 bf16 ...]

For each precision: the default model through the backend's engine (make_engine, on the CPU) on one
fixed batch of two events padded to one 640-element bin, seed SEED, dropout 0. Reports a result file
per precision (tests/worker_results.py): a digest of the initial weights, the initial loss and the
global norm of its gradient (the backend's own autodiff, before any update), the losses of STEPS
train steps through the engine, and the eval loss after them. tests/mlpf/train/test_parity.py
compares the backends.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import sys

import numpy as np

from tests.worker_results import report

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SEED, STEPS, LEARNING_RATE = 7, 5, 1e-4
EVENTS, LENGTH = [430, 610], 640


def batch() -> dict:
    from tests.mlpf.train.distributed_check import combined_batch

    return combined_batch(EVENTS, LENGTH, seed=SEED)


def weights_digest(arrays) -> str:
    """SHA-256 of the weights as float32 bytes, in model.weights order (no seed states)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(np.asarray(a, np.float32)).tobytes())
    return h.hexdigest()


def loss_and_gradient_norm(backend: str, model, b: dict, train_cfg) -> tuple[float, float]:
    """The training-mode loss of the model's current weights and its gradient's global norm."""
    from hepbench.mlpf.model.losses import mlpf_losses

    def total(outputs, X, y):
        return mlpf_losses(X, y, outputs, train_cfg.loss_weights)["loss"]

    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = total(model(b["X"], training=True), b["X"], b["y"])
        grads = tape.gradient(loss, model.trainable_variables)
        grads = [np.asarray(g) for g in grads]
    elif backend == "jax":
        import jax

        def f(trainable, non_trainable, X, y):
            outputs, _ = model.stateless_call(trainable, non_trainable, X, training=True)
            return total(outputs, X, y)

        loss, grads = jax.jit(jax.value_and_grad(f))([v.value for v in model.trainable_variables],
                                                    [v.value for v in model.non_trainable_variables], b["X"], b["y"])
        grads = [np.asarray(g) for g in grads]
    else:
        import keras

        X, y = keras.ops.convert_to_tensor(b["X"]), keras.ops.convert_to_tensor(b["y"])
        loss = total(model(X, training=True), X, y)
        loss.backward()
        grads = [v.value.grad.detach().cpu().numpy() for v in model.trainable_variables]
        for v in model.trainable_variables:
            v.value.grad = None  # the engine's steps start from no gradient
        loss = loss.detach().cpu()
    norm = float(np.sqrt(sum(float(np.sum(np.square(g.astype(np.float64)))) for g in grads)))
    return float(np.asarray(loss)), norm


def run(backend: str, precision: str) -> dict:
    from hepbench.mlpf.config import ModelConfig, TrainConfig
    from hepbench.mlpf.engines.backends import make_engine

    engine = make_engine(backend, device="cpu")
    engine.configure()
    train_cfg = TrainConfig(learning_rate=LEARNING_RATE, seed=SEED, precision=precision)
    engine.build(dataclasses.replace(ModelConfig(), dropout=0.0), train_cfg)
    model, b = engine.model, batch()
    digest = weights_digest(_weights(model))
    loss0, grad_norm = loss_and_gradient_norm(backend, model, b, train_cfg)
    train = next(iter(engine.train_batches([b])))
    engine.trace_train(train)
    losses = [engine.train_step(next(iter(engine.train_batches([b])))).loss for _ in range(STEPS)]
    evaluation = next(iter(engine.eval_batches([b])))
    engine.trace_eval(evaluation)
    return {"backend": backend, "precision": precision, "weights_sha256": digest, "initial_loss": loss0,
            "gradient_norm": grad_norm, "losses": losses, "eval_loss": engine.eval_step(evaluation).loss,
            "engine": engine.backend()}


def _weights(model) -> list[np.ndarray]:
    import keras

    return [keras.ops.convert_to_numpy(w.value) for w in model.weights]


def main(argv: list[str]) -> None:
    backend, precisions = argv[0], argv[1:] or ["fp32"]
    for precision in precisions:
        report(f"{backend}-{precision}", run(backend, precision))


if __name__ == "__main__":
    main(sys.argv[1:])
