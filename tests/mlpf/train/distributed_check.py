"""Run as a script (its own process): k data-parallel steps of the TensorFlow engine against k
single-process steps on the combined batch, reporting the largest weight difference and both losses
(a file per process: tests/worker_results.py).

    python -m tests.mlpf.train.distributed_check mirrored      # 2 logical CPU devices, one process
    horovodrun -np 2 --gloo python -m tests.mlpf.train.distributed_check horovod
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import sys

import numpy as np

from tests.worker_results import report

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
STEPS, LEARNING_RATE = 3, 1e-3
EVENTS = [20, 7, 31, 12]  # the combined batch: replica r gets events r*2, r*2+1


def combined_batch(n_real: list[int], length: int, seed: int = 0) -> dict:
    """A padded batch as the data pipeline hands it out: random towers and tracks, random targets."""
    from hepbench.mlpf.data.format import ElementType, XCol, YCol

    rng = np.random.default_rng(seed)
    X = np.zeros((len(n_real), length, 12), np.float32)
    y = np.zeros((len(n_real), length, 7), np.float32)
    for i, n in enumerate(n_real):
        X[i, :n] = rng.normal(size=(n, 12))
        X[i, :n, XCol.TYPE] = rng.choice([ElementType.TOWER, ElementType.TRACK], size=n)
        y[i, :n] = rng.normal(size=(n, 7))
        y[i, :n, YCol.TYPE] = rng.integers(0, 6, size=n)
        y[i, :n][y[i, :n, YCol.TYPE] == 0] = 0.0
    return {"X": X, "y": y, "n_elements": np.array(n_real, np.int32)}


def main(mode: str) -> None:
    from hepbench.mlpf.config import ModelConfig, TrainConfig
    from hepbench.mlpf.engines.tensorflow import TensorFlowEngine

    small = ModelConfig(
        bin_size=16,
        distance_dim=8,
        ffn_dist_hidden_dim=8,
        output_dim=16,
        decoder_hidden_dim=16,
        num_graph_layers_id=1,
        num_graph_layers_reg=1,
    )
    cfg = TrainConfig(learning_rate=LEARNING_RATE, seed=1)
    batch = combined_batch(EVENTS, 32)
    parallel = None
    if mode == "mirrored":  # logical devices must exist before TensorFlow starts
        parallel = TensorFlowEngine(kind="mirrored", device="cpu", replicas=2)
        parallel.configure()
    reference = TensorFlowEngine()  # shares the process: not configured again
    reference.build(small, cfg)
    for _ in range(STEPS):
        expected_loss = reference.train_step(batch).loss

    if mode == "mirrored":
        parallel.build(small, cfg)  # the reference's seed: its initial weights
        batches = parallel.train_batches(itertools.repeat(batch))  # NumPy batches, each split in two
        for _ in range(STEPS):
            result = parallel.train_step(next(batches))
        assert [p.events for p in result.parts] == [2, 2], result
        info = {"replicas": parallel.strategy.num_replicas_in_sync}
    else:
        import horovod.tensorflow as hvd

        hvd.init()
        # Rank 0 starts from the reference's initial weights, the others from other weights:
        # the broadcast must make them equal.
        parallel = TensorFlowEngine(kind="horovod", device="cpu")
        parallel.configure()
        parallel.build(small, dataclasses.replace(cfg, seed=1 if hvd.rank() == 0 else 100 + hvd.rank()))
        share = len(EVENTS) // hvd.size()
        mine = {k: v[hvd.rank() * share : (hvd.rank() + 1) * share] for k, v in batch.items()}
        for _ in range(STEPS):
            result = parallel.train_step(mine)
        info = {"rank": hvd.rank(), "size": hvd.size()}

    diff = max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
        for a, b in zip(parallel.model.trainable_variables, reference.model.trainable_variables)
    )
    report(
        f"rank-{info['rank']}" if "rank" in info else mode,
        {**info, "max_weight_difference": diff, "loss": result.loss, "expected_loss": expected_loss},
    )


if __name__ == "__main__":
    main(sys.argv[1])
