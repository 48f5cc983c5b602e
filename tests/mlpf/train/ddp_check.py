"""Run under torchrun (each rank its own process, Gloo on the CPU): k DDP steps of the PyTorch engine
against k single-process steps on the combined batch, reporting per rank (a file each:
tests/worker_results.py) the largest difference of its weights and optimizer state from the
single-process ones and from rank 0's, and both losses.

    torchrun --standalone --nproc-per-node 2 -m tests.mlpf.train.ddp_check [COMPILE_BACKEND]

With a torch.compile backend (aot_eager), both the single process and the ranks compile their steps.

Rank r trains events r*share .. (r+1)*share-1 of the combined batch. Ranks other than 0 build
their model from another seed: the engine's broadcast must give every rank rank 0's weights.
"""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np

from tests.worker_results import report

os.environ["KERAS_BACKEND"] = "torch"  # before anything imports keras

STEPS, LEARNING_RATE = 3, 1e-3
EVENTS = [20, 7, 31, 12]  # the combined batch: replica r gets events r*2, r*2+1


def main(compile_backend: str | None) -> None:
    import torch.distributed as dist

    from hepbench.mlpf.config import ModelConfig, TrainConfig
    from hepbench.mlpf.engines.torch import TorchEngine
    from tests.mlpf.train.distributed_check import combined_batch

    dist.init_process_group(backend="gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    small = ModelConfig(
        bin_size=16,
        distance_dim=8,
        ffn_dist_hidden_dim=8,
        output_dim=16,
        decoder_hidden_dim=16,
        num_graph_layers_id=2,
        num_graph_layers_reg=2,
    )
    compiled = {"compile": True, "compile_backend": compile_backend} if compile_backend else {}
    cfg = TrainConfig(learning_rate=LEARNING_RATE, seed=1, **compiled)
    batch = combined_batch(EVENTS, 32)

    reference = TorchEngine(device="cpu", threads=1)
    reference.configure()
    reference.build(small, cfg)
    for _ in range(STEPS):
        expected_loss = reference.train_step(batch).loss

    parallel = TorchEngine(kind="ddp", device="cpu", threads=1)
    parallel.configure()
    parallel.build(small, dataclasses.replace(cfg, seed=1 if rank == 0 else 100 + rank))
    share = len(EVENTS) // size
    mine = {k: v[rank * share : (rank + 1) * share] for k, v in batch.items()}
    for _ in range(STEPS):
        result = parallel.train_step(mine)

    # The model's tensors and the optimizer's state; state() ends with torch's generator state, which
    # differs between the ranks (their seeds differ, and dropout masks need not agree).
    variables = len(parallel.model.keras_named_tensors()) + len(parallel.optimizer.state_names())
    state = parallel.state()[:variables]
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(state, reference.state()[:variables]))
    root = [state]
    dist.broadcast_object_list(root, src=0)  # rank 0's state: DDP keeps every rank's equal
    between = max(float(np.max(np.abs(a - b))) for a, b in zip(state, root[0]))
    report(
        f"rank-{rank}",
        {
            "rank": rank,
            "size": size,
            "events": result.events,
            "max_weight_difference": diff,
            "max_rank_difference": between,
            "loss": result.loss,
            "expected_loss": expected_loss,
            "compile": parallel.backend()["compile"],
        },
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
