"""The JAX train and eval steps: pure functions of the model's state, compiled with jax.jit.

The state is three lists of arrays, in the order Keras's stateless API takes them:
(model.trainable_variables, model.non_trainable_variables, optimizer.variables). A train step is

    (loss, (losses, non_trainable)), grads = value_and_grad(forward, has_aux=True)(trainable, ...)
    trainable, optimizer_vars = optimizer.stateless_apply(optimizer_vars, grads, trainable)

with forward = model.stateless_call(..., training=True) followed by the MLPF loss
(hepbench.mlpf.model.losses). The non-trainable variables carry the dropout seed states, which
the forward pass advances. The train step donates its state: XLA updates the weights in place.

jax.jit compiles once per input shape. `CompiledStep` keeps one executable per (X, y) shape and
compiles ahead of time (`compile`: lower(...).compile(), nothing runs), so that tracing a batch's
shape before the timed windows leaves no compilation inside them.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import keras

from hepbench.mlpf.config import TrainConfig
from hepbench.mlpf.model.losses import mlpf_losses

State = tuple[list, list, list]  # (trainable, non_trainable, optimizer variables) as jax arrays


def training_losses(model: keras.Model, cfg: TrainConfig) -> Callable:
    """losses(trainable, non_trainable, X, y) -> (the batch's losses, the new non-trainable state):
    the forward pass in training mode and the MLPF loss, what the train step differentiates."""

    def losses(trainable, non_trainable, X, y):
        outputs, non_trainable = model.stateless_call(trainable, non_trainable, X, training=True)
        return mlpf_losses(X, y, outputs, cfg.loss_weights), non_trainable

    return losses


def train_function(model: keras.Model, optimizer: keras.optimizers.Optimizer, cfg: TrainConfig) -> Callable:
    """step(state, X, y) -> (new state, losses): one optimisation step on the batch; the losses
    include `grad_norm`, the global norm of its (unscaled) gradient."""
    scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    training = training_losses(model, cfg)

    def forward(trainable, non_trainable, optimizer_vars, X, y):
        losses, non_trainable = training(trainable, non_trainable, X, y)
        loss = losses["loss"]
        if scaled:  # fp16: differentiate the scaled loss; stateless_apply unscales the gradients
            with keras.StatelessScope(state_mapping=list(zip(optimizer.variables, optimizer_vars))):
                loss = optimizer.scale_loss(loss)
        return loss, (losses, non_trainable)

    gradient = jax.value_and_grad(forward, has_aux=True)

    def step(state: State, X, y):
        trainable, non_trainable, optimizer_vars = state
        (_, (losses, non_trainable)), grads = gradient(trainable, non_trainable, optimizer_vars, X, y)
        # The unscaled gradient's norm, for the numerics check (the scale before the update changes it).
        scale = 1.0
        if scaled:
            with keras.StatelessScope(state_mapping=list(zip(optimizer.variables, optimizer_vars))):
                scale = optimizer.dynamic_scale.value
        losses = {**losses, "grad_norm": global_norm(grads) / scale}
        # A LossScaleOptimizer skips the update (and lowers its scale) when a gradient is not finite.
        trainable, optimizer_vars = optimizer.stateless_apply(optimizer_vars, grads, trainable)
        return (trainable, non_trainable, optimizer_vars), losses

    return step


def gradient_norm_function(model: keras.Model, cfg: TrainConfig) -> Callable:
    """check(trainable, non_trainable, X, y, scale) -> (loss, global norm of the gradient of loss x
    scale, divided by scale): the train step's forward pass and loss differentiated, no update: the
    numerics check's device side where the step itself cannot serve (a mirrored step takes the
    whole global batch); fp16 gives its scale."""
    training = training_losses(model, cfg)

    def scaled(trainable, non_trainable, X, y, scale):
        loss = training(trainable, non_trainable, X, y)[0]["loss"]
        return loss * scale, loss

    gradient = jax.grad(scaled, has_aux=True)

    def check(trainable, non_trainable, X, y, scale):
        grads, loss = gradient(trainable, non_trainable, X, y, scale)
        return loss, global_norm(grads) / scale

    return check


def global_norm(arrays) -> jax.Array:
    """The L2 norm of all the arrays' elements together, in float32."""
    return jnp.sqrt(sum(jnp.sum(jnp.square(a.astype(jnp.float32))) for a in jax.tree.leaves(arrays)))


def eval_function(model: keras.Model, cfg: TrainConfig) -> Callable:
    """step(trainable, non_trainable, X, y) -> losses: the model in inference mode, no update."""

    def step(trainable, non_trainable, X, y):
        outputs, _ = model.stateless_call(trainable, non_trainable, X, training=False)
        return mlpf_losses(X, y, outputs, cfg.loss_weights)

    return step


class CompiledStep:
    """A jax.jit function with one ahead-of-time compiled executable per shape of its data arguments
    (the arguments after the first `state_args`)."""

    def __init__(self, function: Callable, state_args: int, **jit_options):
        self._jit = jax.jit(function, **jit_options)
        self._state_args = state_args
        self._executables: dict[tuple, object] = {}

    def _key(self, args) -> tuple:
        return tuple((tuple(a.shape), str(a.dtype)) for a in args[self._state_args :])

    def compile(self, *args) -> None:
        """Compile for these arguments' shapes (arrays or jax.ShapeDtypeStruct), running nothing."""
        key = self._key(args)
        if key not in self._executables:
            self._executables[key] = self._jit.lower(*args).compile()

    def __call__(self, *args):
        self.compile(*args)  # a shape not traced ahead compiles here, once
        return self._executables[self._key(args)](*args)

    @property
    def shapes(self) -> int:
        """How many shapes have an executable."""
        return len(self._executables)
