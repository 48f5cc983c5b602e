"""Data-parallel training steps: Horovod (one process per device) and MirroredStrategy (one process,
several devices).

Both give exactly the step of one process on the combined batch. The loss of each replica is
normalised by the real-element count of the *combined* batch (an allreduce of a scalar), so the
replicas' gradients add up to the combined batch's gradient: Horovod averages gradients, hence
the count over all ranks divided by their number; MirroredStrategy sums them, hence the count.
"""
from __future__ import annotations

import keras
import tensorflow as tf

from hepbench.mlpf.config import TrainConfig
from hepbench.mlpf.model.losses import real_elements
from hepbench.mlpf.train.step import TrainStep


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
    `strategy.experimental_distribute_dataset`, whose `element_spec` fixes the step's signature
    (dynamic axes: no retracing inside the timed windows). Returns the combined batch's losses.
    """

    def __init__(self, model: keras.Model, cfg: TrainConfig, strategy: tf.distribute.Strategy, element_spec=None):
        self.strategy = strategy
        super().__init__(model, cfg)
        signature = None if element_spec is None else (element_spec["X"], element_spec["y"])
        self._step = tf.function(self._distributed_step, input_signature=signature,
                                 reduce_retracing=signature is None)

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
