"""The engine seam: everything the training loop (hepbench.mlpf.train.loop) needs from a framework.

An engine is one object per process. In the order the loop calls it:

    configure()                 threads, visible devices, logical devices: before the framework starts
    devices(), software()       what the report says it ran on; backend(): which framework and how
                                its steps are compiled (the report's `backend` block)
    build(model_cfg, train_cfg) seeded model, optimizer, train and eval steps (inside a strategy scope
                                where the framework needs one)
    train_batches(dataset)      the data pipeline's batches, prepared for the train step (on the
    eval_batches(dataset)       device, split per replica, the next one's copy issued before the
                                current one is handed out: one_ahead); the loop iterates each result
                                once, and calls each again for all-padding batches of every shape
    trace_train(batch), trace_eval(batch)
                                compile the steps for these shapes without running them
    loss_and_gradient(batch), host_loss_and_gradient(batch), from_rank0(flag)
                                the numerics check before the clock (hepbench.mlpf.train.numerics):
                                the first batch's loss and gradient norm on the device and on the
                                host CPU in float32, nothing updated; rank 0's verdict for every rank
    train_step(batch), eval_step(batch) -> StepResult
                                one step; returns only once its loss is on the host
    state(), load_state(arrays) the loop runs one train step per shape before the clock starts
                                (its first execution) and puts the state back after
    peak_device_memory(), parameter_counts()

Everything an engine returns is plain Python or NumPy, so the loop and the HPO trial never touch
a framework tensor. A batch is the data pipeline's dict (hepbench.mlpf.data.pipeline: X, y,
n_elements, ...) as `train_batches`/`eval_batches` hand it out.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from hepbench.core.errors import HepbenchError
from hepbench.mlpf.config import ModelConfig, TrainConfig


class MissingDevices(HepbenchError):
    """The framework sees fewer devices of the requested kind than the run needs."""


@dataclass(frozen=True)
class Part:
    """One replica's share of a batch (the whole batch without data parallelism)."""

    events: int  # real events (rows of the batch)
    padded_length: int  # element slots per event, padding included
    real_elements: int  # detector elements, after truncation


@dataclass(frozen=True)
class StepResult:
    """What a train or eval step did, on the host: the batch's loss and its work per replica."""

    loss: float
    parts: tuple[Part, ...]

    @property
    def events(self) -> int:
        return sum(p.events for p in self.parts)

    @property
    def real_elements(self) -> int:
        return sum(p.real_elements for p in self.parts)

    @property
    def padded_elements(self) -> int:
        return sum(p.events * p.padded_length for p in self.parts)


@dataclass(frozen=True)
class LossAndGradient:
    """A batch's training-mode loss and the global L2 norm of its gradient over every trainable
    variable (unscaled), on the host; `loss_scale`: what the loss was multiplied by before it was
    differentiated (fp16), the norm divided by after."""

    loss: float
    grad_norm: float
    loss_scale: float = 1.0


def unscaled_gradient(compute: Callable[[float], tuple[float, float]], scale: float) -> LossAndGradient:
    """compute(scale) -> (loss, norm of the gradient of loss x scale, divided by scale): fp16's
    scaled gradient, with `scale` halved (down to 1) while its norm overflows, as a loss-scaling
    optimizer answers an overflow, though without touching the optimizer's state."""
    while True:
        loss, norm = compute(scale)
        if math.isfinite(norm) or scale <= 1.0:
            return LossAndGradient(loss, norm, scale)
        scale = max(scale / 2, 1.0)


def one_ahead(items: Iterable) -> Iterator:
    """`items` in order, each next one fetched before the current one is handed out.

    An engine whose batches start their copy to the device as they are fetched (an asynchronous
    copy: PyTorch's from pinned memory on a stream of its own, JAX's device_put) thereby has the
    next batch travelling while the current step computes, off the step's critical path. A wait
    for it, if the copy is slower than the step, still falls inside the next timed step."""
    it = iter(items)
    for current in it:
        for following in it:  # fetched (its copy issued) before `current` is handed out
            yield current
            current = following
        yield current


class Engine(ABC):
    """A framework behind the training loop (see the module docstring for the call order)."""

    replicas: int = 1  # devices one train step runs on; a train batch holds `replicas` x batch_size events

    @abstractmethod
    def configure(self) -> None:
        """Set up the framework for this process (threads, visible devices, logical devices).
        Must run before the framework's first operation."""

    @abstractmethod
    def devices(self) -> list[dict]:
        """One {"type": "cpu"|"gpu", "name": ...} per replica, in replica order."""

    @abstractmethod
    def software(self) -> dict:
        """Framework versions and the CUDA/cuDNN build (None where not built with them)."""

    @abstractmethod
    def backend(self) -> dict:
        """{"name": tensorflow|jax|torch, "version": the framework's, "keras": ..., "compile": how the
        train step runs (tf.function, tf.function+xla, jax.jit, eager, torch.compile), plus the
        versions of the framework's other packages (jaxlib)}."""

    @abstractmethod
    def build(self, model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
        """Seed with train_cfg.seed, then build the model, the optimizer and both steps."""

    @abstractmethod
    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, non-trainable) parameters of the built model."""

    @abstractmethod
    def train_batches(self, dataset: Iterable) -> Iterator:
        """The dataset's batches as the train step takes them (a mirrored step: split per replica),
        on the device, each next one on its way there before the current one is handed out (one_ahead)."""

    @abstractmethod
    def eval_batches(self, dataset: Iterable) -> Iterator:
        """The dataset's batches as the eval step takes them (never split: one device evaluates)."""

    @abstractmethod
    def trace_train(self, batch) -> None:
        """Compile the train step for this batch's shapes without training on it."""

    @abstractmethod
    def trace_eval(self, batch) -> None:
        """Compile the eval step for this batch's shapes."""

    @abstractmethod
    def train_step(self, batch) -> StepResult:
        """One optimisation step; the loss is the combined batch's (the same on every rank)."""

    @abstractmethod
    def eval_step(self, batch) -> StepResult:
        """The model in inference mode on one batch: its loss, no update."""

    @abstractmethod
    def loss_and_gradient(self, batch) -> LossAndGradient:
        """The training-mode loss of the current weights on `batch` (a pipeline batch) and its
        gradient's norm, on the run's (first) device in the run's precision, through the train
        step's own forward pass and loss, compiled as the step is (one process on one device: the
        step itself); no collective, and the run's state left as it was. fp16: the loss scaled as
        the step scales it (unscaled_gradient)."""

    @abstractmethod
    def host_loss_and_gradient(self, batch) -> LossAndGradient:
        """The same on the host CPU in float32 from the same weights: a fresh float32 copy of the
        model, plain forward and backward passes of the framework (the reference)."""

    def from_rank0(self, flag: bool) -> bool:
        """Rank 0's `flag` on every rank of a job (a collective every rank calls at the same point);
        in one process, the flag itself."""
        return flag

    @abstractmethod
    def peak_device_memory(self) -> int | None:
        """Peak bytes allocated on the (first) accelerator so far; None on a CPU or when unknown."""

    @abstractmethod
    def state(self) -> list[np.ndarray]:
        """Every model and optimizer variable (dropout seed states and the optimizer's iteration
        count included), in a fixed order, then any random generator state dropout draws from
        (PyTorch's): after load_state(state()) the next steps are the same."""

    @abstractmethod
    def load_state(self, arrays: Sequence[np.ndarray]) -> None:
        """Assign what `state()` returned; ValueError naming both counts when they differ."""
