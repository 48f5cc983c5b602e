"""The TensorFlow train and eval steps: one process, Horovod (one process per device) and
MirroredStrategy (one process, several devices).

A step is one tf.function over (X, y) (NumPy arrays or tensors) with dynamic batch and element
axes, so batches of any padded length share one graph; `jit_compile` compiles the single-process
and Horovod steps with XLA (one compilation per distinct shape). The mirrored step cannot be
compiled: its optimizer update is a cross-replica merge call, which XLA does not take, so
MirroredTrainStep refuses jit_compile.

The data-parallel steps give exactly the step of one process on the combined batch. The loss of
each replica is normalised by the real-element count of the *combined* batch (an allreduce of a
scalar), so the replicas' gradients add up to the combined batch's gradient: Horovod averages
gradients, hence the count over all ranks divided by their number; MirroredStrategy sums them,
hence the count.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from hepbench.core.errors import UsageError
from hepbench.mlpf.config import TrainConfig
from hepbench.mlpf.data.format import NUM_X_FEATURES, NUM_Y_FEATURES
from hepbench.mlpf.model.losses import mlpf_losses, real_elements
from hepbench.mlpf.train.optimizer import make_optimizer

# Dynamic batch and element axes: every padded length shares one graph.
_SIGNATURE = (
    tf.TensorSpec((None, None, NUM_X_FEATURES), tf.float32),
    tf.TensorSpec((None, None, NUM_Y_FEATURES), tf.float32),
)


class TrainStep:
    """`step(X, y)` runs one optimisation step and returns the batch's losses (float32 scalars) and
    `grad_norm`, its unscaled gradient's global norm (the numerics check's device side)."""

    def __init__(self, model: keras.Model, cfg: TrainConfig):
        self.model, self.cfg = model, cfg
        self.optimizer = make_optimizer(cfg)
        self.optimizer.build(model.trainable_variables)
        self._step = tf.function(self._train_step, input_signature=_SIGNATURE, jit_compile=cfg.jit_compile)
        self._check = None  # loss_and_gradient_norm's, traced on its first use

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
        # The unscaled gradient's norm, for the numerics check (read before apply changes the scale).
        losses = {**losses, "grad_norm": _global_norm(grads) / self.loss_scale()}
        # LossScaleOptimizer.apply unscales, and skips the update when a gradient is not finite.
        self.optimizer.apply(grads, variables)
        return losses

    def loss_scale(self):
        """What forward() multiplied the loss by: the fp16 optimizer's current scale, else 1."""
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            return tf.cast(tf.convert_to_tensor(self.optimizer.dynamic_scale), tf.float32)
        return tf.constant(1.0)

    def __call__(self, X, y) -> dict:
        return self._step(X, y)

    def trace(self, X, y):
        """Compile the step for these shapes without running it (tracing is not training)."""
        return self._step.get_concrete_function(X, y)

    def loss_and_gradient_norm(self, X, y, scale: float) -> tuple[float, float]:
        """(loss, global norm of the gradient of loss x scale, divided by scale) of this process's
        batch: the step's forward pass and loss compiled as the step is (XLA with jit_compile), no
        collective (a Horovod or mirrored step's base forward), no update. For the steps that do
        not report their gradient's norm themselves (the single step's output `grad_norm` does)."""
        if self._check is None:
            signature = (*_SIGNATURE, tf.TensorSpec((), tf.float32))
            self._check = tf.function(
                self._loss_and_gradient_norm, input_signature=signature, jit_compile=self.cfg.jit_compile
            )
        loss, norm = self._check(X, y, tf.constant(scale, tf.float32))
        return float(loss), float(norm)

    def _loss_and_gradient_norm(self, X, y, scale):
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            losses, _ = self.forward(X, y)
            loss = losses["loss"]
            scaled = tf.cast(loss, tf.float32) * scale
        return loss, _global_norm(tape.gradient(scaled, variables)) / scale


def _global_norm(grads) -> tf.Tensor:
    """The L2 norm of every gradient's elements together (float32)."""
    return tf.linalg.global_norm([tf.cast(g, tf.float32) for g in grads if g is not None])


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


class HorovodTrainStep(TrainStep):
    """TrainStep whose gradients are averaged over Horovod ranks; returns the combined batch's losses."""

    def __init__(self, model: keras.Model, cfg: TrainConfig, hvd):
        self.hvd = hvd
        super().__init__(model, cfg)

    def _train_step(self, X, y):
        hvd = self.hvd
        normalizer = hvd.allreduce(real_elements(X), op=hvd.Sum) / hvd.size()
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            losses, loss = self.forward(X, y, normalizer)
        # Horovod keys gradients by tf.Variable; a Keras 3 variable keeps its tf.Variable in `.value`.
        grads = hvd.DistributedGradientTape(tape, op=hvd.Average).gradient(loss, [v.value for v in variables])
        self.optimizer.apply(grads, variables)
        # Each rank's terms are its share of the combined batch's terms: the mean over ranks is the
        # combined batch's loss, the same number on every rank (so all ranks see a NaN together).
        names = sorted(losses)
        combined = hvd.allreduce(tf.stack([losses[n] for n in names]), op=hvd.Average)
        return {n: combined[i] for i, n in enumerate(names)}

    def broadcast_from_root(self) -> None:
        """Every rank starts from rank 0's weights and optimizer state."""
        # hvd.broadcast_variables only takes tf.Variables, not Keras 3 variables: one broadcast each.
        for i, v in enumerate([*self.model.variables, *self.optimizer.variables]):
            v.assign(self.hvd.broadcast(tf.convert_to_tensor(v), root_rank=0, name=f"hepbench.broadcast.{i}"))


class MirroredTrainStep(TrainStep):
    """One step of MirroredStrategy over the global batch, split along the batch axis.

    The model and this object must be created inside `strategy.scope()`; batches come from
    `strategy.experimental_distribute_dataset`, whose `element_spec` (given here or later to
    `fix_signature`) fixes the step's signature: dynamic axes, so no retracing inside the timed
    windows. Returns the combined batch's losses.
    """

    def __init__(self, model: keras.Model, cfg: TrainConfig, strategy: tf.distribute.Strategy, element_spec=None):
        if cfg.jit_compile:
            raise UsageError(
                "train.jit_compile=true is not supported with the mirrored strategy: its optimizer "
                "update is a cross-replica merge call, which XLA cannot compile "
                "(set train.jit_compile=false, or use the single or horovod strategy)"
            )
        self.strategy = strategy
        super().__init__(model, cfg)
        self.fix_signature(element_spec)

    def fix_signature(self, element_spec) -> None:
        """Trace for the distributed dataset's element spec (None: retrace per new shape, relaxed)."""
        signature = None if element_spec is None else (element_spec["X"], element_spec["y"])
        self._step = tf.function(self._distributed_step, input_signature=signature, reduce_retracing=signature is None)

    def _replica_step(self, X, y):
        context = tf.distribute.get_replica_context()
        normalizer = context.all_reduce(tf.distribute.ReduceOp.SUM, real_elements(X))
        variables = self.model.trainable_variables
        with tf.GradientTape() as tape:
            losses, loss = self.forward(X, y, normalizer)
        grads = tape.gradient(loss, variables)
        self.optimizer.apply(grads, variables)  # sums the replicas' gradients
        return losses

    def _distributed_step(self, X, y):
        per_replica = self.strategy.run(self._replica_step, args=(X, y))
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

    def local_parts(self, value) -> tuple:
        """The per-replica tensors of a distributed value (the value itself with one replica)."""
        return self.strategy.experimental_local_results(value)
