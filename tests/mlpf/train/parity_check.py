"""Run as a script, one backend per process (Keras picks its backend once per process):

    python -m tests.mlpf.train.parity_check tensorflow|jax|torch|torch-inductor [fp32 bf16 ...]

torch-inductor: the PyTorch engine with its step compiled (train.compile=true, inductor: the fused
kernels Inductor generates, not eager PyTorch's).

For each precision: the default model through the backend's engine (make_engine, on the CPU) on one
fixed batch of two events padded to one 640-element bin, seed SEED, dropout 0. Reports a result file
per precision (tests/worker_results.py): a digest of the initial weights (by Keras variable path:
the torch engine's native module carries them), the initial loss and the global norm of its
gradient (the backend's own autodiff, before any update), the losses of STEPS
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


def weights_digest(named: dict) -> str:
    """SHA-256 of the weights as float32 bytes, by Keras variable path (no seed states)."""
    h = hashlib.sha256()
    for path in sorted(named):
        h.update(path.encode())
        h.update(np.ascontiguousarray(np.asarray(named[path], np.float32)).tobytes())
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

        loss, grads = jax.jit(jax.value_and_grad(f))(
            [v.value for v in model.trainable_variables],
            [v.value for v in model.non_trainable_variables],
            b["X"],
            b["y"],
        )
        grads = [np.asarray(g) for g in grads]
    else:  # the native module (hepbench.mlpf.engines.torch_model), as the engine runs it
        import torch

        from hepbench.mlpf.engines.torch_model import mlpf_losses as torch_losses

        X, y = torch.from_numpy(b["X"]), torch.from_numpy(b["y"])
        loss = torch_losses(X, y, model(X, training=True), train_cfg.loss_weights)["loss"]
        loss.backward()
        grads = [p.grad.detach().cpu().numpy() for p in model.parameters()]
        model.zero_grad(set_to_none=True)  # the engine's steps start from no gradient
        loss = loss.detach().cpu()
    norm = float(np.sqrt(sum(float(np.sum(np.square(g.astype(np.float64)))) for g in grads)))
    return float(np.asarray(loss)), norm


def run(name: str, precision: str) -> dict:
    from hepbench.mlpf.config import ModelConfig, TrainConfig
    from hepbench.mlpf.engines.backends import make_engine

    backend, _, compiler = name.partition("-")
    engine = make_engine(backend, device="cpu")
    engine.configure()
    compiled = {"compile": True, "compile_backend": compiler} if compiler else {}
    train_cfg = TrainConfig(learning_rate=LEARNING_RATE, seed=SEED, precision=precision, **compiled)
    engine.build(dataclasses.replace(ModelConfig(), dropout=0.0), train_cfg)
    model, b = engine.model, batch()
    digest = weights_digest(_weights(model))
    loss0, grad_norm = loss_and_gradient_norm(backend, model, b, train_cfg)
    train = next(iter(engine.train_batches([b])))
    engine.trace_train(train)
    losses = [engine.train_step(next(iter(engine.train_batches([b])))).loss for _ in range(STEPS)]
    evaluation = next(iter(engine.eval_batches([b])))
    engine.trace_eval(evaluation)
    return {
        "backend": name,
        "precision": precision,
        "weights_sha256": digest,
        "initial_loss": loss0,
        "gradient_norm": grad_norm,
        "losses": losses,
        "eval_loss": engine.eval_step(evaluation).loss,
        "engine": engine.backend(),
    }


def _weights(model) -> dict[str, np.ndarray]:
    """{Keras variable path: value} of the Keras model's weights, or of the native torch module's."""
    if hasattr(model, "keras_named_tensors"):  # the torch engine's module: its tensors carry Keras's paths
        return {path: t.detach().cpu().numpy() for path, t in model.keras_named_tensors()}
    import keras

    return {w.path: keras.ops.convert_to_numpy(w.value) for w in model.weights}


def main(argv: list[str]) -> None:
    backend, precisions = argv[0], argv[1:] or ["fp32"]
    for precision in precisions:
        report(f"{backend}-{precision}", run(backend, precision))


if __name__ == "__main__":
    main(sys.argv[1:])
