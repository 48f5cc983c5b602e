"""Run as a script (its own process: the JAX backend, two CPU devices fixed before JAX starts):

    python -m tests.mlpf.train.jax_check

Exercises the JAX engine on a small model and reports what it found in a file
(tests/worker_results.py); tests/mlpf/train/test_jax_engine.py asserts on it.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys

import numpy as np

from tests.worker_results import report

STEPS = 3
EVENTS = [20, 7, 31, 0]  # an all-padding event too; mirrored: replica r gets events 2r, 2r+1
LENGTH = 32


def max_difference(a: list, b: list) -> float:
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))) for x, y in zip(a, b))


def main() -> dict:
    from hepbench.mlpf.engines.backends import make_engine

    # JAX fixes its CPU devices on its first operation: the mirrored engine is configured first.
    mirrored = make_engine("jax", kind="mirrored", device="cpu", replicas=2)
    mirrored.configure()

    import jax

    from hepbench.mlpf.config import ModelConfig, TrainConfig
    from hepbench.mlpf.engines.base import MissingDevices
    from hepbench.mlpf.engines.jax import JaxEngine
    from tests.mlpf.train.distributed_check import combined_batch

    small = ModelConfig(
        bin_size=16,
        distance_dim=8,
        ffn_dist_hidden_dim=8,
        output_dim=16,
        decoder_hidden_dim=16,
        num_graph_layers_id=1,
        num_graph_layers_reg=1,
    )
    cfg = TrainConfig(learning_rate=1e-3, seed=3)
    batch = combined_batch(EVENTS, LENGTH, seed=1)
    out: dict = {"devices": mirrored.devices(), "backend": mirrored.backend(), "software": mirrored.software()}

    # train.fp32_matmul: each build sets JAX's default matmul precision, read after it.
    JaxEngine(device="cpu").build(small, dataclasses.replace(cfg, fp32_matmul="tf32"))
    out["matmul_precision_tf32"] = jax.config.jax_default_matmul_precision

    # One device: trace, train, evaluate.
    single = JaxEngine(device="cpu")
    single.configure()
    single.build(small, cfg)
    out["parameters"] = list(single.parameter_counts())
    out["matmul_precision"] = jax.config.jax_default_matmul_precision
    initial = single.state()
    out["state_length"] = len(initial)
    out["variables"] = len(single.model.variables) + len(single.optimizer.variables)
    single.trace_train(batch)
    single.trace_eval(batch)
    out["trace_changed_nothing"] = max_difference(initial, single.state()) == 0.0
    first_eval = single.eval_step(batch)
    results = [single.train_step(b) for b in itertools.islice(single.train_batches(itertools.repeat(batch)), STEPS)]
    out["compiled_shapes"] = single._train.shapes  # traced once, then every step reused it
    out["eval_before"] = first_eval.loss
    out["losses"] = [r.loss for r in results]
    out["parts"] = [dataclasses.asdict(p) for p in results[0].parts]
    model_variables = len(single.model.variables)  # the rest: the optimizer's (its step counter moves)
    out["weights_moved"] = max_difference(initial[:model_variables], single.state()[:model_variables])
    after = single.state()
    out["eval_after"] = single.eval_step(next(single.eval_batches([batch]))).loss
    out["eval_changed_nothing"] = max_difference(after, single.state()) == 0.0

    # Mirrored over the two CPU devices, from the same seed: k steps equal the single steps
    # on the combined batch; an odd batch is padded with an empty event for the second replica.
    mirrored.build(small, cfg)
    parallel = [
        mirrored.train_step(b) for b in itertools.islice(mirrored.train_batches(itertools.repeat(batch)), STEPS)
    ]
    out["mirrored_losses"] = [r.loss for r in parallel]
    out["mirrored_parts"] = [dataclasses.asdict(p) for p in parallel[0].parts]
    out["mirrored_weight_difference"] = max_difference(single.state(), mirrored.state())
    out["mirrored_eval"] = mirrored.eval_step(next(mirrored.eval_batches([batch]))).loss
    odd = {k: v[:3] for k, v in batch.items()}
    out["odd_parts"] = [dataclasses.asdict(p) for p in mirrored.train_step(odd).parts]

    # The state round trip, dropout seed states included: the same loss and masks again.
    dropout = JaxEngine(device="cpu")
    dropout.configure()
    dropout.build(dataclasses.replace(small, dropout=0.3), cfg)
    saved = dropout.state()
    once = dropout.train_step(batch).loss
    twice = dropout.train_step(batch).loss
    dropout.load_state(saved)
    out["reloaded_losses"] = [once, twice, dropout.train_step(batch).loss, dropout.train_step(batch).loss]
    try:
        dropout.load_state(saved[:1])
    except ValueError as e:
        out["short_state_error"] = str(e)

    # fp16: dynamic loss scaling through LossScaleOptimizer.stateless_apply.
    fp16 = JaxEngine(device="cpu")
    fp16.configure()
    fp16.build(small, dataclasses.replace(cfg, precision="fp16"))
    start = fp16.state()
    scale = next(i for i, v in enumerate(fp16.optimizer.variables) if "dynamic_scale" in v.path)
    offset = len(fp16.model.variables)
    out["fp16_optimizer"] = type(fp16.optimizer).__name__
    out["fp16_initial_scale"] = float(start[offset + scale])
    out["fp16_losses"] = [fp16.train_step(batch).loss for _ in range(6)]
    end = fp16.state()
    out["fp16_final_scale"] = float(end[offset + scale])
    out["fp16_weights_moved"] = max_difference(start[:offset], end[:offset])

    # Too few devices.
    errors = []
    for engine in (JaxEngine(device="gpu"), JaxEngine(kind="mirrored", device="cpu", replicas=4)):
        try:
            engine.configure()
        except MissingDevices as e:
            errors.append(str(e))
    out["missing_devices"] = errors
    out["tensorflow_imported"] = "tensorflow" in sys.modules
    out["finite"] = all(math.isfinite(v) for v in out["losses"] + out["mirrored_losses"] + out["fp16_losses"])
    return out


if __name__ == "__main__":
    report("jax_check", main())
