"""Run as a script (its own process): k data-parallel steps against k single-process steps on the
combined batch, printing the largest weight difference as JSON.

    python -m tests.mlpf.train.distributed_check mirrored      # 2 logical CPU devices, one process
    horovodrun -np 2 --gloo python -m tests.mlpf.train.distributed_check horovod
"""
from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
STEPS, LEARNING_RATE = 3, 1e-3
EVENTS = [20, 7, 31, 12]  # the combined batch: replica r gets events r*2, r*2+1


def main(mode: str) -> None:
    import numpy as np
    import tensorflow as tf

    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    from hepbench.mlpf.config import TrainConfig
    from hepbench.mlpf.model.mlpf import build_model
    from hepbench.mlpf.train.distributed import HorovodTrainStep, MirroredTrainStep
    from hepbench.mlpf.train.step import TrainStep
    from tests.mlpf.model.test_model import SMALL, events_batch

    X, y = events_batch(EVENTS, 32)
    cfg = TrainConfig(learning_rate=LEARNING_RATE)
    keras.utils.set_random_seed(1)
    reference = build_model(SMALL)
    step = TrainStep(reference, cfg)
    for _ in range(STEPS):
        expected_loss = float(step(X, y)["loss"])

    if mode == "mirrored":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        keras.utils.set_random_seed(1)  # the reference's initial weights
        dataset = tf.data.Dataset.from_tensor_slices({"X": X, "y": y}).batch(len(EVENTS)).repeat()
        distributed = strategy.experimental_distribute_dataset(dataset)  # splits each batch in two
        with strategy.scope():
            model = build_model(SMALL)
            parallel = MirroredTrainStep(model, cfg, strategy, distributed.element_spec)
        batches = iter(distributed)
        for _ in range(STEPS):
            batch = next(batches)
            loss = float(parallel(batch["X"], batch["y"])["loss"])
        info = {"replicas": strategy.num_replicas_in_sync}
    else:
        import horovod.tensorflow as hvd

        hvd.init()
        # Rank 0 starts from the reference's initial weights, the others from other weights:
        # the broadcast must make them equal.
        keras.utils.set_random_seed(1 if hvd.rank() == 0 else 100 + hvd.rank())
        model = build_model(SMALL)
        parallel = HorovodTrainStep(model, cfg, hvd)
        parallel.broadcast_from_root()
        share = len(EVENTS) // hvd.size()
        mine = slice(hvd.rank() * share, (hvd.rank() + 1) * share)
        for _ in range(STEPS):
            loss = float(parallel(X[mine], y[mine])["loss"])
        info = {"rank": hvd.rank(), "size": hvd.size()}

    diff = max(float(np.max(np.abs(a.numpy() - b.numpy())))
               for a, b in zip(model.trainable_variables, reference.trainable_variables))
    print(json.dumps({**info, "max_weight_difference": diff, "loss": loss, "expected_loss": expected_loss}))


if __name__ == "__main__":
    main(sys.argv[1])
