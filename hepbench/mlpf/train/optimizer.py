"""The optimizer recipe (backend-neutral): Adam with staircase exponential decay, AdamW with weight
decay, dynamic loss scaling for fp16."""

from __future__ import annotations

import keras

from hepbench.mlpf.config import TrainConfig


def make_optimizer(cfg: TrainConfig) -> keras.optimizers.Optimizer:
    schedule = keras.optimizers.schedules.ExponentialDecay(
        cfg.learning_rate, cfg.lr_decay_steps, cfg.lr_decay_rate, staircase=True
    )
    if cfg.weight_decay > 0:
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=cfg.weight_decay)
    else:
        optimizer = keras.optimizers.Adam(schedule)
    if cfg.precision == "fp16":  # float16 gradients underflow without a loss scale
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
