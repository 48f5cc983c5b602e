"""The PyTorch train and eval steps: the Keras model on the torch backend, in one process or as one
rank of a DistributedDataParallel job.

A train step is what Keras's own TorchTrainer does: the forward pass (training=True) and the MLPF
loss, `loss.backward()`, then the Keras optimizer's update from the variables' `.grad`. With fp16
the loss is scaled before `backward` and LossScaleOptimizer.apply unscales (and skips the update
when a gradient is not finite), as on TensorFlow.

`train.compile=true` runs the forward pass and the loss through torch.compile (its backward pass
is compiled with them by AOTAutograd); the optimizer update stays eager. `train.compile_backend`
picks torch.compile's backend: inductor (code generation, the default), aot_eager (the same graphs
and AOTAutograd, run by eager kernels), or one an accelerator vendor's package registers. Keras
breaks the graph in several places (its layers' input-structure traversal, ops.split's host list
of sizes), so the compiled step is many graphs with eager Python between them. Shapes are
torch.compile's default: the first batch shape compiles static graphs and a second shape compiles
dynamic ones (`dynamic=True` from the start took about twice as long to trace the test's small
model on the CPU: 238 s against 122 s). Each (events, padded length) the run will see is traced before the timed windows
(train/loop.py), and a run has one padded length with data.pad_to_max=true.

The DDP step gives exactly the step of one process on the combined batch. Each rank's loss is
normalised by the real elements of the *combined* batch divided by the number of ranks (an
all-reduce of a scalar), so DDP's averaging of the gradients gives the combined batch's gradient;
its losses are the mean over ranks of the ranks' terms, the combined batch's losses, the same on
every rank (see HorovodTrainStep in tensorflow_steps.py).
"""
from __future__ import annotations

import keras
import torch

from hepbench.core.errors import UsageError
from hepbench.mlpf.config import TrainConfig
from hepbench.mlpf.model.losses import mlpf_losses, real_elements
from hepbench.mlpf.train.optimizer import make_optimizer


# Dynamo's limit of compiled variants per code object. Keras's Layer.__call__ breaks the graph, so
# Dynamo resumes its code (and the torch layer's `forward`) once per layer type and grad mode: at the
# default limit of 8 most layers of the model would silently stay eager.
_RECOMPILE_LIMIT = 64


def compile_backends() -> list[str]:
    """The torch.compile backends this PyTorch has: its own and those installed packages register
    (a vendor's, for its accelerator)."""
    import torch._dynamo  # noqa: F401  (imported by torch.compile anyway)

    return sorted(torch._dynamo.list_backends(exclude_tags=()))


def check_compile_backend(cfg: TrainConfig) -> None:
    """A UsageError naming train.compile_backend when torch.compile would not know the name."""
    if cfg.compile and cfg.compile_backend not in compile_backends():
        raise UsageError(f"train.compile_backend={cfg.compile_backend!r} is not a torch.compile backend of this "
                         f"PyTorch; it has {', '.join(compile_backends())}")


def _keep_setattr_hook_eager() -> None:
    """Keras's torch layers route every attribute assignment through `TorchLayer._setattr_hook`
    (Layer.__call__ sets `self._called` on each call). Dynamo compiled it as a frame of its own per
    layer type, attribute name and grad mode: a quarter of the recompiles and most of the tracing
    time of a small model (trace train + eval: 48 s instead of 122 s). It holds no tensor
    arithmetic, so it runs eagerly. Applied once per process, to Keras's class."""
    from keras.src.backend.torch.layer import TorchLayer

    if not getattr(TorchLayer._setattr_hook, "_torchdynamo_disable", False):  # torch.compiler.disable's mark
        TorchLayer._setattr_hook = torch.compiler.disable(TorchLayer._setattr_hook)


def _compiled(function, cfg: TrainConfig):
    if not cfg.compile:
        return function
    import torch._dynamo  # noqa: F401  (its config; imported by torch.compile anyway)

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, _RECOMPILE_LIMIT)
    _keep_setattr_hook_eager()
    return torch.compile(function, backend=cfg.compile_backend)


class TrainStep:
    """`step(X, y)` (torch tensors on the model's device) runs one optimisation step and returns the
    batch's losses (float32 scalar tensors, detached)."""

    def __init__(self, model: keras.Model, cfg: TrainConfig, module: torch.nn.Module | None = None):
        self.model, self.cfg = model, cfg
        self.module = model if module is None else module  # what the forward pass calls (DDP wraps the model)
        self.optimizer = make_optimizer(cfg)
        self.optimizer.build(model.trainable_variables)
        self.variables = list(model.trainable_variables)
        self.compiled = cfg.compile
        self._losses = _compiled(self._forward, cfg)

    def _forward(self, X, y, normalizer):
        return mlpf_losses(X, y, self.module(X, training=True), self.cfg.loss_weights, normalizer=normalizer)

    def normalizer(self, X):
        """The loss's divisor; None: the batch's own real-element count."""
        return None

    def combine(self, losses: dict) -> dict:
        """The losses to report (the combined batch's under DDP)."""
        return {k: v.detach() for k, v in losses.items()}

    def _clear_gradients(self) -> None:
        for v in self.variables:
            v.value.grad = None

    def backward(self, X, y) -> dict:
        """The batch's gradients into the variables' `.grad`; returns its losses."""
        self._clear_gradients()
        losses = self._losses(X, y, self.normalizer(X))
        loss = losses["loss"]
        if isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer):
            loss = self.optimizer.scale_loss(loss)
        loss.backward()
        return losses

    def __call__(self, X, y) -> dict:
        losses = self.backward(X, y)
        with torch.no_grad():
            self.optimizer.apply([v.value.grad for v in self.variables], self.variables)
        return self.combine(losses)

    def trace(self, X, y) -> None:
        """Compile the step for these shapes without training on it: a forward and backward pass
        whose gradients are discarded, no optimizer update. Eager: nothing to compile."""
        if not self.compiled:
            return
        # The forward pass advances dropout's seed states and torch's generators (which Keras's
        # torch dropout draws from): put them back, so that tracing leaves the run where it was.
        saved = [v.value.detach().clone() for v in self.model.non_trainable_variables]
        gpus = [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []
        with torch.random.fork_rng(devices=gpus):
            self.backward(X, y)
        self._clear_gradients()
        with torch.no_grad():
            for v, value in zip(self.model.non_trainable_variables, saved):
                v.value.copy_(value)


class DdpTrainStep(TrainStep):
    """TrainStep of one DDP rank: `module` is the model wrapped in DistributedDataParallel, whose
    backward pass averages the gradients over the ranks; returns the combined batch's losses."""

    def __init__(self, model: keras.Model, cfg: TrainConfig, module: torch.nn.Module, dist):
        self.dist = dist
        super().__init__(model, cfg, module)

    def normalizer(self, X):
        count = real_elements(X)
        self.dist.all_reduce(count, op=self.dist.ReduceOp.SUM)
        return count / self.dist.get_world_size()

    def combine(self, losses: dict) -> dict:
        # Each rank's terms are its share of the combined batch's terms times the number of ranks:
        # their mean is the combined batch's loss, the same number on every rank.
        names = sorted(losses)
        stacked = torch.stack([losses[n].detach().float() for n in names])
        self.dist.all_reduce(stacked, op=self.dist.ReduceOp.SUM)
        stacked /= self.dist.get_world_size()
        return {n: stacked[i] for i, n in enumerate(names)}

    def broadcast_from_root(self) -> None:
        """Every rank starts from rank 0's weights and optimizer state."""
        with torch.no_grad():
            for v in [*self.model.variables, *self.optimizer.variables]:
                self.dist.broadcast(v.value.detach(), src=0)


class EvalStep:
    """`step(X, y)` runs the model in inference mode and returns the batch's losses (no gradients,
    no update)."""

    def __init__(self, model: keras.Model, cfg: TrainConfig):
        self.model, self.cfg = model, cfg
        self.compiled = cfg.compile
        self._losses = _compiled(self._forward, cfg)

    def _forward(self, X, y):
        return mlpf_losses(X, y, self.model(X, training=False), self.cfg.loss_weights)

    def __call__(self, X, y) -> dict:
        with torch.no_grad():
            return self._losses(X, y)

    def trace(self, X, y) -> None:
        """Compile the step for these shapes (inference changes no state). Eager: nothing to do."""
        if self.compiled:
            self(X, y)
