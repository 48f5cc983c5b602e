"""The JAX engine (hepbench.mlpf.engines.base.Engine): the Keras model on the JAX backend, its train
step a jax.jit-compiled pure function (hepbench.mlpf.engines.jax_steps). Kinds: "single" (one
device) and "mirrored" (keras.distribution.DataParallel over several local devices, one process:
the batch split along its first axis, the variables replicated, XLA's SPMD partitioner inserting
the gradient all-reduce).

JAX fixes its devices when its first operation runs, so `configure` must come first: it selects
the platform (cpu or gpu), creates `replicas` CPU devices for a mirrored CPU run
(jax_num_cpu_devices) and limits the CPU threads. XLA sizes its CPU thread pool by the CPUs the
process may run on and has no thread-count option, so `threads` narrows the process's CPU
affinity to that many of its CPUs.

XLA compiles one executable per batch shape; `trace_train`/`trace_eval` compile a batch's shape
ahead of time (nothing runs); the loop traces every shape the run will see, and runs each once,
before the clock starts; a shape first seen by a step would compile there, once.

The weights live in the engine as JAX arrays (the state), not in the Keras variables, which keep
their initial values; `state()`/`load_state()` convert to and from NumPy in TensorFlow's order.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence

import jax
import jaxlib
import keras
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from hepbench.core.devices import runtime_from_platform_version
from hepbench.core.hostinfo import cpu_model
from hepbench.mlpf.config import ModelConfig, TrainConfig
from hepbench.mlpf.engines.backends import JAX
from hepbench.mlpf.engines.base import (
    Engine,
    LossAndGradient,
    MissingDevices,
    Part,
    StepResult,
    one_ahead,
    unscaled_gradient,
)
from hepbench.mlpf.engines.jax_steps import CompiledStep, eval_function, gradient_norm_function, train_function
from hepbench.mlpf.model.init import assign_initial_weights, set_random_seed
from hepbench.mlpf.model.losses import mlpf_losses
from hepbench.mlpf.model.mlpf import build_model, parameter_counts
from hepbench.mlpf.train.optimizer import make_optimizer

KINDS = JAX.strategies
_PLATFORMS = {"cpu": "cpu", "gpu": "gpu"}  # our device names → jax.devices() backend names
_MATMUL_PRECISION = {"highest": "highest", "tf32": "tensorfloat32"}  # train.fp32_matmul → JAX's name


class JaxEngine(Engine):
    """`kind`: single or mirrored. `device`: "cpu" or "gpu", or None for JAX's default device (an
    HPO trial). `threads`: CPUs the process keeps (None: all it has). `replicas`: mirrored devices."""

    def __init__(self, kind: str = "single", device: str | None = None, threads: int | None = None, replicas: int = 1):
        if kind not in KINDS:
            raise ValueError(f"engine kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if kind != "mirrored" and replicas != 1:
            raise ValueError(f"{replicas} replicas need the mirrored kind, not {kind!r}")
        if kind == "mirrored" and device not in _PLATFORMS:
            raise ValueError(f"the mirrored kind needs device cpu or gpu, not {device!r}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, not {threads}")
        self.kind, self.device, self.threads, self.replicas = kind, device, threads, replicas
        self._devices: list = []
        self.distribution: keras.distribution.DataParallel | None = None
        self.model: keras.Model | None = None
        self.optimizer: keras.optimizers.Optimizer | None = None
        self._state = None  # (trainable, non_trainable, optimizer variables): jax arrays
        self._train: CompiledStep | None = None
        self._eval: CompiledStep | None = None
        self._check: CompiledStep | None = None  # the numerics check's device side in a mirrored run
        self._configs: tuple[ModelConfig, TrainConfig] | None = None  # build's (the check's host model)

    # -- the process ------------------------------------------------------------------------------

    def configure(self) -> None:
        if self.threads is not None:
            _keep_cpus(self.threads)
        if self.device == "cpu":
            # No GPU client at all (nor its memory reservation); no effect once JAX has started,
            # which jax.devices("cpu") below copes with.
            jax.config.update("jax_platforms", "cpu")
        if self.kind == "mirrored" and self.device == "cpu" and self.replicas > 1:
            try:
                jax.config.update("jax_num_cpu_devices", self.replicas)
            except RuntimeError:  # JAX has started in this process: its CPU devices are fixed
                pass  # (enough of them, or MissingDevices below)
        self._devices = self._select_devices()
        keras.backend.clear_session()  # a reused process starts each run with fresh layer names
        if self.kind == "mirrored":
            self.distribution = keras.distribution.DataParallel(devices=self._devices)
        else:
            jax.config.update("jax_default_device", self._devices[0])

    def _select_devices(self) -> list:
        if self.device is None:
            return jax.devices()[:1]
        try:
            found = jax.devices(_PLATFORMS[self.device])
        except RuntimeError:  # no such backend: a CPU-only jaxlib, or no GPU driver
            found = []
        if len(found) < self.replicas:
            hint = (
                " (JAX had started before the engine was configured: its CPU devices were fixed)"
                if self.device == "cpu"
                else ""
            )
            raise MissingDevices(f"JAX sees {len(found)} {self.device.upper()} device(s), {self.replicas} needed{hint}")
        return found[: self.replicas]

    def devices(self) -> list[dict]:
        out = []
        for d in self._devices:
            if d.platform == "cpu":
                out.append({"type": "cpu", "name": cpu_model()})
            else:
                out.append({"type": "gpu", "name": d.device_kind})
        return out

    def software(self) -> dict:
        cuda, cudnn = _cuda_versions()
        return {
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "keras": keras.__version__,
            "cuda": cuda,
            "cudnn": cudnn,
        }

    def backend(self) -> dict:
        out = {
            "name": JAX.name,
            "version": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "keras": keras.__version__,
            "compile": "jax.jit",
        }
        if self._devices and self._devices[0].platform != "cpu":  # CUDA or ROCm, as its GPU client says
            found = runtime_from_platform_version(self._devices[0].client.platform_version)
            out.update(found.to_backend() if found else {})
        return out

    def peak_device_memory(self) -> int | None:
        if not self._devices or self._devices[0].platform == "cpu":
            return None
        stats = self._devices[0].memory_stats() or {}
        peak = stats.get("peak_bytes_in_use")
        return int(peak) if peak is not None else None

    # -- model, optimizer, steps ------------------------------------------------------------------

    def build(self, model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
        if not self._devices:
            self._devices = jax.devices()[:1]  # not configured (a test process): JAX's default device
        # jax.jit traces with the default precision of the moment: set before the steps are built
        # (JAX's own default is TF32-class on NVIDIA GPUs; docs/engines.md, "float32 matmul").
        jax.config.update("jax_default_matmul_precision", _MATMUL_PRECISION[train_cfg.fp32_matmul])
        set_random_seed(train_cfg.seed)
        with self._scope():
            self.model = build_model(model_cfg, train_cfg.precision)
            assign_initial_weights(self.model, train_cfg.seed)
            self.optimizer = make_optimizer(train_cfg)
            self.optimizer.build(self.model.trainable_variables)
        # Copies: the train step donates its state, which must not delete the Keras variables' buffers.
        self._state = jax.tree.map(
            lambda a: a.copy(),
            (
                [v.value for v in self.model.trainable_variables],
                [v.value for v in self.model.non_trainable_variables],
                [v.value for v in self.optimizer.variables],
            ),
        )
        options = {}
        if self.distribution is not None:  # the new state stays replicated like the old one
            options["out_shardings"] = (jax.tree.map(lambda a: a.sharding, self._state), self._replicated())
        self._train = CompiledStep(
            train_function(self.model, self.optimizer, train_cfg), 1, donate_argnums=0, **options
        )
        self._eval = CompiledStep(eval_function(self.model, train_cfg), 2)
        self._check = CompiledStep(gradient_norm_function(self.model, train_cfg), 2)
        self._configs = (model_cfg, train_cfg)

    def _scope(self):
        return self.distribution.scope() if self.distribution is not None else contextlib.nullcontext()

    def parameter_counts(self) -> tuple[int, int]:
        return parameter_counts(self.model)

    # -- batches and steps ------------------------------------------------------------------------

    # device_put returns at once and copies in the background: one_ahead has the next batch's copy
    # issued before the current step is dispatched.
    def train_batches(self, dataset: Iterable) -> Iterator:
        return one_ahead(self._placed(batch, split=True) for batch in dataset)

    def eval_batches(self, dataset: Iterable) -> Iterator:
        return one_ahead(self._placed(batch, split=False) for batch in dataset)

    def _placed(self, batch: dict, split: bool) -> dict:
        """The batch with X and y on the device(s): split along events over the replicas (padded
        with empty events to a multiple of them), or whole on every replica (evaluation)."""
        X, y, n = np.asarray(batch["X"]), np.asarray(batch["y"]), np.asarray(batch["n_elements"])
        parts = self._parts(X, n, split)
        if self.distribution is None:
            target = self._devices[0]
        elif split:
            rows = -len(X) % self.replicas
            if rows:  # empty events add nothing to the loss, its normaliser or the gradient
                X = np.concatenate([X, np.zeros((rows, *X.shape[1:]), X.dtype)])
                y = np.concatenate([y, np.zeros((rows, *y.shape[1:]), y.dtype)])
            target = NamedSharding(self._mesh(), PartitionSpec(self._batch_axis()))
        else:
            target = self._replicated()
        return {"X": jax.device_put(X, target), "y": jax.device_put(y, target), "parts": parts}

    def _parts(self, X: np.ndarray, n: np.ndarray, split: bool) -> tuple[Part, ...]:
        if not split or self.distribution is None:
            return (Part(events=len(X), padded_length=int(X.shape[1]), real_elements=int(n.sum())),)
        share = -(-len(X) // self.replicas)  # events per replica, the last ones padded
        return tuple(
            Part(
                events=len(n[r * share : (r + 1) * share]),
                padded_length=int(X.shape[1]),
                real_elements=int(n[r * share : (r + 1) * share].sum()),
            )
            for r in range(self.replicas)
        )

    def _mesh(self):
        return self.distribution.device_mesh.backend_mesh

    def _batch_axis(self) -> str:
        return self.distribution.batch_dim_name

    def _replicated(self):
        return NamedSharding(self._mesh(), PartitionSpec())

    def _ready(self, batch) -> dict:
        """A batch from train_batches/eval_batches, or a raw pipeline batch (placed here)."""
        return batch if "parts" in batch else self._placed(batch, split=True)

    def trace_train(self, batch) -> None:
        b = self._ready(batch)
        with self._scope():
            self._train.compile(self._state, b["X"], b["y"])

    def trace_eval(self, batch) -> None:
        b = batch if "parts" in batch else self._placed(batch, split=False)
        with self._scope():
            self._eval.compile(self._state[0], self._state[1], b["X"], b["y"])

    def train_step(self, batch) -> StepResult:
        b = self._ready(batch)
        with self._scope():
            self._state, losses = self._train(self._state, b["X"], b["y"])
        return StepResult(float(losses["loss"]), b["parts"])  # float() waits for the step

    def eval_step(self, batch) -> StepResult:
        b = batch if "parts" in batch else self._placed(batch, split=False)
        with self._scope():
            losses = self._eval(self._state[0], self._state[1], b["X"], b["y"])
        return StepResult(float(losses["loss"]), b["parts"])

    # -- the numerics check ------------------------------------------------------------------------

    def loss_and_gradient(self, batch) -> LossAndGradient:
        scaled = isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
        # The Keras variable keeps the initial scale the step's state starts from.
        scale = float(np.asarray(self.optimizer.dynamic_scale)) if scaled else 1.0
        if self.distribution is None:
            # The compiled train step itself, which reports its unscaled gradient's norm, from a copy
            # of the state (it donates its input; the run's state is left as it is). fp16: a step that
            # overflows skips its update and halves its scale, as unscaled_gradient does.
            b, state = self._placed(batch, split=True), jax.tree.map(lambda a: a.copy(), self._state)

            def step(_: float) -> tuple[float, float]:
                nonlocal state
                state, losses = self._train(state, b["X"], b["y"])
                return float(losses["loss"]), float(losses["grad_norm"])

            return unscaled_gradient(step, scale)
        # A mirrored step takes the whole global batch: a function of its own, compiled now, on the
        # share placed whole on every replica.
        b = self._placed(batch, split=False)

        def compute(s: float) -> tuple[float, float]:
            with self._scope():
                loss, norm = self._check(self._state[0], self._state[1], b["X"], b["y"], np.float32(s))
            return float(loss), float(norm)

        return unscaled_gradient(compute, scale)

    def host_loss_and_gradient(self, batch) -> LossAndGradient:
        model_cfg, train_cfg = self._configs
        cpu = jax.devices("cpu")[0]
        model = self.model  # a single float32 run on the CPU: its own model is the host's (stateless here)
        if self.kind != "single" or train_cfg.precision != "fp32" or self.device != "cpu":
            with keras.device(cpu):
                model = build_model(model_cfg, "fp32")  # float32 whatever the run's dtype policy
        trainable, non_trainable = ([jax.device_put(np.asarray(a), cpu) for a in part] for part in self._state[:2])

        def loss(trainable, non_trainable, X, y):
            outputs, _ = model.stateless_call(trainable, non_trainable, X, training=True)
            return mlpf_losses(X, y, outputs, train_cfg.loss_weights)["loss"]

        X, y = (jax.device_put(np.asarray(batch[k], np.float32), cpu) for k in ("X", "y"))
        with jax.default_matmul_precision("highest"):  # the run's setting may be TF32's
            value, grads = jax.jit(jax.value_and_grad(loss))(trainable, non_trainable, X, y)
        norm = np.sqrt(sum(np.sum(np.square(np.asarray(g, np.float64))) for g in grads))
        return LossAndGradient(float(value), float(norm))

    # -- checkpoints ------------------------------------------------------------------------------

    def _order(self) -> list:
        """TensorFlow's order (model.variables, then optimizer.variables) as (list, index) into the state."""
        where = {}
        for lst, variables in enumerate(
            (self.model.trainable_variables, self.model.non_trainable_variables, self.optimizer.variables)
        ):
            for i, v in enumerate(variables):
                where[id(v)] = (lst, i)
        return [where[id(v)] for v in [*self.model.variables, *self.optimizer.variables]]

    def state(self) -> list[np.ndarray]:
        return [np.asarray(self._state[lst][i]) for lst, i in self._order()]

    def load_state(self, arrays: Sequence[np.ndarray]) -> None:
        order = self._order()
        if len(arrays) != len(order):
            raise ValueError(f"holds {len(arrays)} variables, the model and optimizer {len(order)}")
        state = [list(part) for part in self._state]
        for (lst, i), a in zip(order, arrays):
            old = state[lst][i]
            if tuple(np.shape(a)) != tuple(old.shape):
                raise ValueError(f"variable {len(state[lst])}: shape {np.shape(a)}, the model's {old.shape}")
            state[lst][i] = jax.device_put(np.asarray(a, dtype=old.dtype), old.sharding)
        self._state = tuple(state)


def _keep_cpus(threads: int) -> None:
    """Narrow this process's CPU affinity to `threads` of its CPUs (XLA's CPU pool size)."""
    cpus = sorted(os.sched_getaffinity(0))
    if threads < len(cpus):
        os.sched_setaffinity(0, cpus[:threads])


def _cuda_versions() -> tuple[str | None, str | None]:
    """CUDA runtime and cuDNN versions of the CUDA plugin jaxlib runs with; (None, None) without one."""
    try:
        from jax._src.lib import cuda_versions  # None in a CPU-only jaxlib
    except ImportError:
        return None, None
    if cuda_versions is None:
        return None, None

    def dotted(number: int, parts: int) -> str:  # 12040 → 12.4 (CUDA), 90100 → 9.1.0 (cuDNN)
        if parts == 2:
            return f"{number // 1000}.{number % 1000 // 10}"
        return f"{number // 10000}.{number % 10000 // 100}.{number % 100}"

    try:
        return dotted(cuda_versions.cuda_runtime_get_version(), 2), dotted(cuda_versions.cudnn_get_version(), 3)
    except (AttributeError, RuntimeError):
        return None, None
