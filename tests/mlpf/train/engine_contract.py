"""Run as a script, one backend per process (Keras picks its backend once per process):

    python -m tests.mlpf.train.engine_contract tensorflow|jax|torch

What tests/mlpf/train/test_engine_contract.py holds every engine to, found through nothing but the
backend's descriptor (hepbench.mlpf.engines.backends): make_engine builds it, it is an Engine whose
kinds are the descriptor's strategies, it trains and evaluates a small model on the CPU, hands out
its batches one ahead and in order, says which backend it is, and refuses the strategies it lacks.
The result goes to a file (tests/worker_results.py).
"""

from __future__ import annotations

import importlib
import math
import sys

import numpy as np

from tests.worker_results import report

KINDS = ("single", "mirrored", "horovod", "ddp")  # every strategy `hepbench run` knows (run/plan.py)


def main(name: str) -> None:
    from hepbench.mlpf.engines.backends import backend, select_backend

    select_backend(name)  # before anything imports keras
    from hepbench.core.errors import UsageError
    from hepbench.mlpf.config import ModelConfig, TrainConfig
    from hepbench.mlpf.data.format import YCol
    from hepbench.mlpf.engines.backends import make_engine
    from hepbench.mlpf.engines.base import Engine
    from tests.mlpf.train.distributed_check import combined_batch

    facts = backend(name)
    small = ModelConfig(
        bin_size=16,
        distance_dim=8,
        ffn_dist_hidden_dim=8,
        output_dim=16,
        decoder_hidden_dim=16,
        num_graph_layers_id=1,
        num_graph_layers_reg=1,
    )
    data = combined_batch([12, 5], 16, seed=3)
    # The numerics check's two sides in fp16 (the loss scale's path), on an engine of its own.
    half = make_engine(name, device="cpu", threads=1)
    half.configure()
    half.build(small, TrainConfig(learning_rate=1e-3, seed=2, precision="fp16"))
    # Targets far off (regression columns x 100): a loss whose gradient overflows at the initial scale.
    far = data["y"].copy()
    far[..., YCol.TYPE + 1 :] *= 100
    fp16 = check_sides(half, {**data, "y": far})
    engine = make_engine(name, device="cpu", threads=1)
    engine.configure()
    engine.build(small, TrainConfig(learning_rate=1e-3, seed=2))
    fp32 = check_sides(engine, data)
    train = next(iter(engine.train_batches([data])))
    engine.trace_train(train)
    losses = [engine.train_step(train).loss for _ in range(3)]
    evaluation = next(iter(engine.eval_batches([data])))
    engine.trace_eval(evaluation)
    # Batches handed out one ahead (their copy to the device issued early), in the source's order.
    fetched = []

    def source():
        for extra in range(3):
            fetched.append(extra)
            yield combined_batch([12, 5 + extra], 16, seed=3)

    handed_out = engine.eval_batches(source())
    first = next(handed_out)
    fetched_at_first = len(fetched)
    order = [engine.eval_step(b).real_elements for b in (first, *handed_out)]
    refusals = {}
    for kind in KINDS:
        if kind not in facts.strategies:
            try:
                make_engine(name, kind=kind)
            except UsageError as e:
                refusals[kind] = str(e)
    # The kinds the engine class itself takes (constructed only: nothing configured).
    module, _, cls = facts.engine.partition(":")
    engine_class, taken = getattr(importlib.import_module(module), cls), []
    for kind in KINDS:
        try:
            engine_class(kind=kind, device="cpu")
            taken.append(kind)
        except ValueError:
            pass
    report(
        name,
        {
            "numerics": {"fp32": fp32, "fp16": fp16},
            "is_engine": isinstance(engine, Engine),
            "engine_kinds": taken,
            "backend": engine.backend(),
            "losses": losses,
            "eval_loss": engine.eval_step(evaluation).loss,
            "finite": all(math.isfinite(v) for v in losses),
            "devices": engine.devices(),
            "refusals": refusals,
            "fetched_at_first": fetched_at_first,
            "order": order,
        },
    )


def check_sides(engine, batch: dict) -> dict:
    """The numerics check's device and host sides of `batch` as {"device", "host": [loss, gradient
    norm, loss scale]}, and whether they left the engine's state as it was."""
    before = engine.state()
    device, host = engine.loss_and_gradient(batch), engine.host_loss_and_gradient(batch)
    after = engine.state()
    unchanged = len(before) == len(after) and all(np.array_equal(a, b) for a, b in zip(before, after))
    return {
        "device": [device.loss, device.grad_norm, device.loss_scale],
        "host": [host.loss, host.grad_norm, host.loss_scale],
        "state_unchanged": unchanged,
    }


if __name__ == "__main__":
    main(sys.argv[1])
