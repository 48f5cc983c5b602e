"""The Ray Tune trainable: one trial trains the project's MLPF model with the trial's hyperparameters
on the built data set, and reports the validation loss after every epoch.

An epoch is a fixed list of batches: the first `train_events` events of the train split (all of it
by default), in file order; validation uses the first `val_events` events of the test split. So a
trial's data do not depend on the epoch it resumed from, and Hyperband/BOHB can pause a trial (a
checkpoint every epoch: weights, optimizer state, epoch) and resume it where it stopped.

A trial is set up as a benchmark copy is (hepbench.mlpf.train.loop: the engine builds the model,
optimizer and steps; the data source; tracing), on the TensorFlow engine of one process. A loss
that becomes NaN or infinite raises hepbench.mlpf.train.throughput.NonFiniteLoss.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hepbench.core.errors import HepbenchError
from hepbench.mlpf.config import config_from_dict, with_hyperparameters
from hepbench.mlpf.engines.backends import DEFAULT_BACKEND, backend, make_engine

CHECKPOINT_STATE = "state.npz"  # model and optimizer variables, and the number of epochs done


@dataclass(frozen=True)
class TrialSetup:
    """Everything a trial needs besides its sampled hyperparameters (pickled to the Ray workers)."""

    data_dir: str
    config: dict  # hepbench configuration as a dict (hepbench.mlpf.config.config_to_dict)
    space: object  # hepbench.hpo.space.SearchSpace
    train_events: int | None = None  # events per epoch (None: the whole train split)
    val_events: int | None = None  # validation events (None: the whole test split)
    threads: int = 1  # the framework's threads (the trial's CPUs)
    max_epochs: int = 100  # a trial that no scheduler stops ends here (FIFO runs every trial this far)
    # TensorFlow's graph optimiser (Grappler) runs on a step's first call: ~20 s for MLPF on 2 CPU
    # cores, a large part of a short trial. Off: steps start at once and may run slower.
    graph_optimizer: bool = True
    backend: str = DEFAULT_BACKEND  # the engine the trials train on (--backend)


class Trial:
    """One trial's engine (model, optimizer, steps) and data; `epoch()` trains one epoch and returns its metrics."""

    def __init__(self, setup: TrialSetup, config: dict):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # Here, not at the top: the search's driver imports this module (TrialSetup, train_mlpf) and
        # must not start TensorFlow; only a trial's process trains.
        from hepbench.mlpf.train import loop

        self.setup = setup
        self.hyperparameters = setup.space.to_hyperparameters(config)
        cfg = with_hyperparameters(config_from_dict(setup.config, "hpo base configuration"), **self.hyperparameters)
        self.cfg, self._loop = cfg, loop
        start = time.perf_counter()
        # The trial's devices are what Ray gave its process (device None); a reused Ray actor keeps
        # the threads of its first trial, and starts each trial from a clean graph.
        # make_engine selects the backend: before this process imports Keras (the search also sets
        # $KERAS_BACKEND for its Ray workers); Grappler's switch goes to the engine that has one.
        wanted = {"graph_optimizer": setup.graph_optimizer}
        options = {k: v for k, v in wanted.items() if k in backend(setup.backend).engine_options}
        self.engine = make_engine(setup.backend, threads=setup.threads, **options)
        loop.set_up(self.engine, cfg)
        source = loop.DataSource(setup.data_dir)
        # The same batches every epoch: cached after the first pass, so later epochs time the training.
        self.train_data = source.epoch(cfg, "train", setup.train_events)
        self.val_data = source.epoch(cfg, "test", setup.val_events)
        # Trace both steps now (seconds for MLPF's graph), so that epoch times and rates are training only.
        first = next(self.engine.train_batches(self.train_data))
        loop.trace(self.engine, first, eval_batch=first)
        self.setup_seconds = time.perf_counter() - start
        self.epochs_done = 0

    def _mean_loss(self, step, batches) -> tuple[float, int, float]:
        """(event-weighted mean loss, events, seconds) of `step` over `batches`."""
        start = time.perf_counter()
        where = f"epoch {self.epochs_done + 1} (hyperparameters {self.hyperparameters})"
        loss, events = self._loop.mean_loss(step, batches, where)
        if events == 0:
            raise HepbenchError(f"no events to run in {self.setup.data_dir}")
        return loss, events, time.perf_counter() - start

    def epoch(self) -> dict:
        engine = self.engine
        train_loss, events, seconds = self._mean_loss(engine.train_step, engine.train_batches(self.train_data))
        val_loss, _, _ = self._mean_loss(engine.eval_step, engine.eval_batches(self.val_data))
        self.epochs_done += 1
        return {
            "val_loss": val_loss,
            "train_loss": train_loss,
            "epoch": self.epochs_done,
            "events_per_second": events / seconds if seconds > 0 else None,
            "epoch_seconds": seconds,
            "train_events": events,
            "setup_seconds": self.setup_seconds,
        }

    def save(self, directory: Path) -> None:
        # Every model and optimizer variable, dropout seed-generator states included: a resumed
        # trial draws the same dropout masks as an uninterrupted one.
        arrays = {f"v{i}": a for i, a in enumerate(self.engine.state())}
        np.savez(directory / CHECKPOINT_STATE, epochs_done=self.epochs_done, **arrays)

    def restore(self, directory: Path) -> None:
        with np.load(directory / CHECKPOINT_STATE) as state:
            try:
                self.engine.load_state([state[f"v{i}"] for i in range(len(state.files) - 1)])
            except ValueError as e:
                raise HepbenchError(f"checkpoint {directory} {e}") from None
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
    where = {
        "node_id": ray.get_runtime_context().get_node_id(),
        "hostname": socket.gethostname(),
        "backend": trial.engine.backend()["name"],
    }
    while trial.epochs_done < setup.max_epochs:
        metrics = {**trial.epoch(), **where}
        with tempfile.TemporaryDirectory(prefix="hepbench-trial-") as directory:
            trial.save(Path(directory))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
