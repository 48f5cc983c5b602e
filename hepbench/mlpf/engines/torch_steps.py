"""The PyTorch train and eval steps of the native module (hepbench.mlpf.engines.torch_model), in one
process or as one rank of a DistributedDataParallel job.

A train step: the forward pass (training=True) and the MLPF loss, `loss.backward()`, then the
multi-tensor Adam update (hepbench.mlpf.engines.torch_optimizer). With fp16 the loss is scaled
before `backward` and the update unscales (and skips a step whose gradients are not finite).

`train.compile=true` hands the forward pass and the loss to `torch.compile(fullgraph=True,
dynamic=False)`: one graph per padded length, or an error, never a silent graph break; AOTAutograd
compiles its backward pass with it, so forward, loss and backward run as compiled code and only the
update (a few multi-tensor kernels) stays eager. `train.compile_backend` picks the backend:
inductor (code generation, the default), aot_eager (the same graphs run by eager kernels), or one
an accelerator vendor's package registers. On an NVIDIA GPU, inductor's steps are also captured as
CUDA graphs (mode "reduce-overhead"), replayed with one launch instead of one per kernel. A DDP
rank compiles the DDP-wrapped module instead (Dynamo cannot trace DDP's forward inside a function;
it splits the module's graph at DDP's gradient buckets), its loss eager, in inductor's default mode
(the gradient all-reduce runs between the backward's kernels).
Each (events, padded length) the run will see is traced before the timed windows (train/loop.py).

The DDP step gives exactly the step of one process on the combined batch. Each rank's loss is
normalised by the real elements of the *combined* batch divided by the number of ranks (an
all-reduce of a scalar), so DDP's averaging of the gradients gives the combined batch's gradient;
its losses are the mean over ranks of the ranks' terms, the combined batch's losses, the same on
every rank (see HorovodTrainStep in tensorflow_steps.py).
"""

from __future__ import annotations

import torch

from hepbench.core.errors import UsageError
from hepbench.mlpf.config import TrainConfig
from hepbench.mlpf.engines.torch_model import PFNetDense, mlpf_losses, real_elements
from hepbench.mlpf.engines.torch_optimizer import LossScale, make_optimizer

CUDA_GRAPHS_MODE = "reduce-overhead"  # inductor's mode that replays each compiled graph as a CUDA graph


def compile_backends() -> list[str]:
    """The torch.compile backends this PyTorch has: its own and those installed packages register
    (a vendor's, for its accelerator)."""
    import torch._dynamo  # noqa: F401  (imported by torch.compile anyway)

    return sorted(torch._dynamo.list_backends(exclude_tags=()))


def check_compile_backend(cfg: TrainConfig) -> None:
    """A UsageError naming train.compile_backend when torch.compile would not know the name."""
    if cfg.compile and cfg.compile_backend not in compile_backends():
        raise UsageError(
            f"train.compile_backend={cfg.compile_backend!r} is not a torch.compile backend of this "
            f"PyTorch; it has {', '.join(compile_backends())}"
        )


def compile_mode(cfg: TrainConfig, device: torch.device, distributed: bool) -> str | None:
    """torch.compile's mode for the steps: CUDA graphs for inductor on an NVIDIA GPU (not under DDP,
    not on ROCm, whose graphs PyTorch treats apart), else the backend's default (None)."""
    nvidia = device.type == "cuda" and torch.version.hip is None
    if cfg.compile and cfg.compile_backend == "inductor" and nvidia and not distributed:
        return CUDA_GRAPHS_MODE
    return None


# Compiled variants per code object: one per padded length (static shapes) and grad mode. A run's
# lengths are at most a few dozen; past the limit, Dynamo would silently run the step eagerly, so
# reaching it is made an error instead.
_RECOMPILE_LIMIT = 64


def _compiled(function, cfg: TrainConfig, mode: str | None, fullgraph: bool = True):
    if not cfg.compile:
        return function
    import torch._dynamo  # noqa: F401  (its config; imported by torch.compile anyway)

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, _RECOMPILE_LIMIT)
    torch._dynamo.config.fail_on_recompile_limit_hit = True
    return torch.compile(function, backend=cfg.compile_backend, fullgraph=fullgraph, dynamic=False, mode=mode)


class TrainStep:
    """`step(X, y)` (tensors on the model's device) runs one optimisation step and returns the
    batch's losses (float32 scalar tensors, detached)."""

    def __init__(
        self, model: PFNetDense, cfg: TrainConfig, module: torch.nn.Module | None = None, mode: str | None = None
    ):
        self.model, self.cfg, self.mode = model, cfg, mode
        self.module = model if module is None else module  # what the forward pass calls (DDP wraps the model)
        self.parameters = list(model.parameters())
        self.optimizer = make_optimizer(self.parameters, cfg)
        self.compiled = cfg.compile
        self._losses = self._compile_losses(cfg, mode)

    def _compile_losses(self, cfg: TrainConfig, mode: str | None):
        """What computes the losses of a batch: the forward pass and loss, compiled whole."""
        return _compiled(self._forward, cfg, mode)

    def _forward(self, X, y, normalizer):
        return mlpf_losses(X, y, self.module(X, training=True), self.cfg.loss_weights, normalizer=normalizer)

    def normalizer(self, X):
        """The loss's divisor; None: the batch's own real-element count."""
        return None

    def combine(self, losses: dict) -> dict:
        """The losses to report (the combined batch's under DDP)."""
        return {k: v.detach() for k, v in losses.items()}

    def _clear_gradients(self) -> None:
        for p in self.parameters:
            p.grad = None

    def backward(self, X, y) -> dict:
        """The batch's gradients into the parameters' `.grad`; returns its losses."""
        self._clear_gradients()
        if self.mode == CUDA_GRAPHS_MODE:
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's outputs are read already
        losses = self._losses(X, y, self.normalizer(X))
        loss = losses["loss"]
        if isinstance(self.optimizer, LossScale):
            loss = self.optimizer.scale_loss(loss)
        loss.backward()
        return losses

    def __call__(self, X, y) -> dict:
        losses = self.combine(self.backward(X, y))
        self.optimizer.apply([p.grad for p in self.parameters])
        return losses

    def trace(self, X, y) -> None:
        """Compile the step for these shapes without training on it: a forward and backward pass
        whose gradients are discarded, no optimizer update. Eager: nothing to compile."""
        if not self.compiled:
            return
        # The forward pass draws dropout's masks from torch's generators: put them back, so that
        # tracing leaves the run where it was.
        with torch.random.fork_rng(devices=_gpus_in_use()):
            self.backward(X, y)
        self._clear_gradients()

    def local_losses(self, X, y) -> dict:
        """This process's losses of its own batch, no collective: the step's compiled forward pass."""
        if self.mode == CUDA_GRAPHS_MODE:
            torch.compiler.cudagraph_mark_step_begin()
        return self._losses(X, y, None)

    def loss_and_gradient_norm(self, X, y, scale: float) -> tuple[float, float]:
        """(loss, global norm of the gradient of loss x scale, divided by scale) of the batch: the
        step's forward pass and loss (local_losses) and backward pass, no update; the gradients and
        the generators dropout draws from are left as they were."""
        with torch.random.fork_rng(devices=_gpus_in_use()):
            self._clear_gradients()
            loss = self.local_losses(X, y)["loss"]
            (loss * scale).backward()
            grads = [p.grad for p in self.parameters if p.grad is not None]
            norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) / scale
            result = float(loss.detach()), float(norm)
        self._clear_gradients()
        return result


def _gpus_in_use() -> list[int]:
    """The CUDA device whose generator a step draws from, where CUDA has started."""
    return [torch.cuda.current_device()] if torch.cuda.is_available() and torch.cuda.is_initialized() else []


class DdpTrainStep(TrainStep):
    """TrainStep of one DDP rank: `module` is the model wrapped in DistributedDataParallel, whose
    backward pass averages the gradients over the ranks; returns the combined batch's losses."""

    def __init__(self, model: PFNetDense, cfg: TrainConfig, module: torch.nn.Module, dist, mode: str | None = None):
        self.dist = dist
        super().__init__(model, cfg, module, mode)

    def _compile_losses(self, cfg: TrainConfig, mode: str | None):
        # Dynamo cannot trace DDP's own forward (its logger) inside a function: the DDP module is
        # compiled itself, as PyTorch documents it, which splits its graph at the gradient buckets so
        # that each bucket's all-reduce starts as soon as its gradients are ready; the loss (a few
        # element-wise operations) stays eager.
        self.module = _compiled(self.module, cfg, mode, fullgraph=False)
        return self._forward

    def local_losses(self, X, y) -> dict:
        # The model itself, eager: the DDP module's forward and backward passes are collectives.
        return mlpf_losses(X, y, self.model(X, training=True), self.cfg.loss_weights)

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
        """Every rank starts from rank 0's weights and optimizer state (the update count is the same
        on every rank: none yet)."""
        with torch.no_grad():
            for t in [*self.model.parameters(), *self.model.buffers(), *self.optimizer_tensors()]:
                self.dist.broadcast(t, src=0)

    def optimizer_tensors(self) -> list[torch.Tensor]:
        inner = self.optimizer.inner if isinstance(self.optimizer, LossScale) else self.optimizer
        return inner.state_tensors()


class EvalStep:
    """`step(X, y)` runs the model in inference mode and returns the batch's losses (no gradients,
    no update)."""

    def __init__(self, model: PFNetDense, cfg: TrainConfig, mode: str | None = None):
        self.model, self.cfg, self.mode = model, cfg, mode
        self.compiled = cfg.compile
        self._losses = _compiled(self._forward, cfg, mode)

    def _forward(self, X, y):
        return mlpf_losses(X, y, self.model(X, training=False), self.cfg.loss_weights)

    def __call__(self, X, y) -> dict:
        with torch.no_grad():
            if self.mode == CUDA_GRAPHS_MODE:
                torch.compiler.cudagraph_mark_step_begin()
            return self._losses(X, y)

    def trace(self, X, y) -> None:
        """Compile the step for these shapes (inference changes no state). Eager: nothing to do."""
        if self.compiled:
            self(X, y)
