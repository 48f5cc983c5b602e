"""The compiled training step (TensorFlow backend), with the optimizer of hepbench.mlpf.train.optimizer.

The step is one tf.function over
(X, y) with dynamic batch and element axes, so batches of any padded length share one graph;
`jit_compile` compiles it with XLA (one compilation per distinct shape).
"""
from __future__ import annotations

import keras
import tensorflow as tf

from hepbench.mlpf.config import TrainConfig
from hepbench.mlpf.data.format import NUM_X_FEATURES, NUM_Y_FEATURES
from hepbench.mlpf.model.losses import mlpf_losses
from hepbench.mlpf.train.optimizer import make_optimizer


# Dynamic batch and element axes: every padded length shares one graph.
_SIGNATURE = (
    tf.TensorSpec((None, None, NUM_X_FEATURES), tf.float32),
    tf.TensorSpec((None, None, NUM_Y_FEATURES), tf.float32),
)


class TrainStep:
    """`step(X, y)` runs one optimisation step and returns the batch's losses (float32 scalars)."""

    def __init__(self, model: keras.Model, cfg: TrainConfig):
        self.model, self.cfg = model, cfg
        self.optimizer = make_optimizer(cfg)
        self.optimizer.build(model.trainable_variables)
        self._step = tf.function(self._train_step, input_signature=_SIGNATURE, jit_compile=cfg.jit_compile)

    def forward(self, X, y, normalizer=None):
        """(losses, the loss to differentiate): the latter scaled when fp16 uses loss scaling."""
        losses = mlpf_losses(X, y, self.model(X, training=True), self.cfg.loss_weights, normalizer=normalizer)
        loss = losses["loss"]
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            loss = self.optimizer.scale_loss(loss)
        return losses, loss

    def _train_step(self, X, y):
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            losses, loss = self.forward(X, y)
        grads = tape.gradient(loss, variables)
        # LossScaleOptimizer.apply unscales, and skips the update when a gradient is not finite.
        self.optimizer.apply(grads, variables)
        return losses

    def __call__(self, X, y) -> dict:
        return self._step(X, y)

    def trace(self, X, y):
        """Compile the step for these shapes without running it (tracing is not training)."""
        return self._step.get_concrete_function(X, y)


class EvalStep:
    """`step(X, y)` runs the model in inference mode and returns the batch's losses (no update)."""

    def __init__(self, model: keras.Model, cfg: TrainConfig):
        self.model, self.cfg = model, cfg
        self._step = tf.function(self._eval_step, input_signature=_SIGNATURE, jit_compile=cfg.jit_compile)

    def _eval_step(self, X, y):
        return mlpf_losses(X, y, self.model(X, training=False), self.cfg.loss_weights)

    def __call__(self, X, y) -> dict:
        return self._step(X, y)

    def trace(self, X, y):
        return self._step.get_concrete_function(X, y)
