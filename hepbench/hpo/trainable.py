"""The Ray Tune trainable: one trial trains the project's MLPF model with the trial's hyperparameters
on the built data set, and reports the validation loss after every epoch.

An epoch is a fixed list of batches: the first `train_events` events of the train split (all of it
by default), in file order; validation uses the first `val_events` events of the test split. So a
trial's data do not depend on the epoch it resumed from, and Hyperband/BOHB can pause a trial (a
checkpoint every epoch: weights, optimizer state, epoch) and resume it where it stopped.
"""
from __future__ import annotations

import math
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hepbench.core.errors import HepbenchError

CHECKPOINT_STATE = "state.npz"  # model and optimizer variables, and the number of epochs done


class DivergedTrial(HepbenchError):
    """A trial whose loss became NaN or infinite (a learning rate too high, say)."""


@dataclass(frozen=True)
class TrialSetup:
    """Everything a trial needs besides its sampled hyperparameters (pickled to the Ray workers)."""

    data_dir: str
    config: dict  # hepbench configuration as a dict (hepbench.mlpf.config.config_to_dict)
    space: object  # hepbench.hpo.space.SearchSpace
    train_events: int | None = None  # events per epoch (None: the whole train split)
    val_events: int | None = None  # validation events (None: the whole test split)
    threads: int = 1  # TensorFlow threads (the trial's CPUs)
    max_epochs: int = 100  # a trial that no scheduler stops ends here (FIFO runs every trial this far)
    # TensorFlow's graph optimiser (Grappler) runs on a step's first call: ~20 s for MLPF on 2 CPU
    # cores, a large part of a short trial. Off: steps start at once and may run slower.
    graph_optimizer: bool = True


def _batches(n_events: int | None, batch_size: int) -> int | None:
    return None if n_events is None else math.ceil(n_events / batch_size)


def _configure(threads: int, graph_optimizer: bool):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not graph_optimizer})

    try:  # only possible before TensorFlow's first op; a reused Ray actor keeps its first setting
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass
    keras.backend.clear_session()  # a reused actor starts each trial from a clean graph
    return tf, keras


class Trial:
    """One trial's model, data and steps; `epoch()` trains one epoch and returns its metrics."""

    def __init__(self, setup: TrialSetup, config: dict):
        from hepbench.mlpf.config import config_from_dict, with_hyperparameters

        self.setup = setup
        self.hyperparameters = setup.space.to_hyperparameters(config)
        cfg = with_hyperparameters(config_from_dict(setup.config, "hpo base configuration"), **self.hyperparameters)
        self.cfg = cfg
        self.tf, self.keras = _configure(setup.threads, setup.graph_optimizer)
        from hepbench.mlpf.data.pipeline import make_dataset
        from hepbench.mlpf.model.mlpf import build_model
        from hepbench.mlpf.train.step import EvalStep, TrainStep

        start = time.perf_counter()
        self.keras.utils.set_random_seed(cfg.train.seed)
        self.model = build_model(cfg.model, cfg.train.precision)
        self.train_step, self.eval_step = TrainStep(self.model, cfg.train), EvalStep(self.model, cfg.train)
        train = make_dataset(setup.data_dir, "train", cfg.data, bin_size=cfg.model.bin_size)
        test = make_dataset(setup.data_dir, "test", cfg.data, bin_size=cfg.model.bin_size)
        n_train, n_val = _batches(setup.train_events, cfg.data.batch_size), _batches(setup.val_events, cfg.data.batch_size)
        # The same batches every epoch: cached after the first pass, so later epochs time the training.
        self.train_data = (train.take(n_train) if n_train else train).cache()
        self.val_data = (test.take(n_val) if n_val else test).cache()
        # Trace both steps now (seconds for MLPF's graph), so that epoch times and rates are training only.
        first = next(iter(self.train_data))
        self.train_step.trace(first["X"], first["y"])
        self.eval_step.trace(first["X"], first["y"])
        self.setup_seconds = time.perf_counter() - start
        self.epochs_done = 0

    def _mean_losses(self, step, data) -> tuple[float, int, float]:
        """(event-weighted mean loss, events, seconds) of `step` over `data`."""
        from hepbench.mlpf.data.pipeline import events_in_batch

        total, events, start = 0.0, 0, time.perf_counter()
        for batch in data:
            n = int(events_in_batch(batch))
            loss = float(step(batch["X"], batch["y"])["loss"])
            if not math.isfinite(loss):
                raise DivergedTrial(f"loss became {loss} at epoch {self.epochs_done + 1} "
                                    f"(hyperparameters {self.hyperparameters})")
            total, events = total + loss * n, events + n
        if events == 0:
            raise HepbenchError(f"no events to run in {self.setup.data_dir}")
        return total / events, events, time.perf_counter() - start

    def epoch(self) -> dict:
        train_loss, events, seconds = self._mean_losses(self.train_step, self.train_data)
        val_loss, _, _ = self._mean_losses(self.eval_step, self.val_data)
        self.epochs_done += 1
        return {"val_loss": val_loss, "train_loss": train_loss, "epoch": self.epochs_done,
                "events_per_second": events / seconds if seconds > 0 else None, "epoch_seconds": seconds,
                "train_events": events, "setup_seconds": self.setup_seconds}

    def _state(self) -> list:
        # model.variables includes the dropout layers' seed-generator states, which save_weights
        # leaves out: with them, a resumed trial draws the same dropout masks as an uninterrupted one.
        return [*self.model.variables, *self.train_step.optimizer.variables]

    def save(self, directory: Path) -> None:
        arrays = {f"v{i}": np.asarray(v) for i, v in enumerate(self._state())}
        np.savez(directory / CHECKPOINT_STATE, epochs_done=self.epochs_done, **arrays)

    def restore(self, directory: Path) -> None:
        with np.load(directory / CHECKPOINT_STATE) as state:
            variables = self._state()
            if len(state.files) != len(variables) + 1:
                raise HepbenchError(f"checkpoint {directory} holds {len(state.files) - 1} variables, "
                                    f"the trial's model and optimizer {len(variables)}")
            for i, v in enumerate(variables):
                v.assign(state[f"v{i}"])
            self.epochs_done = int(state["epochs_done"])


def train_mlpf(config: dict, setup: TrialSetup) -> None:
    """The function trainable (wrap with tune.with_parameters(train_mlpf, setup=...))."""
    import ray
    from ray import tune

    trial = Trial(setup, config)
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            trial.restore(Path(directory))
    where = {"node_id": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname()}
    while trial.epochs_done < setup.max_epochs:
        metrics = {**trial.epoch(), **where}
        with tempfile.TemporaryDirectory(prefix="hepbench-trial-") as directory:
            trial.save(Path(directory))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))

