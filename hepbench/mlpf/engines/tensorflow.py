"""The TensorFlow engine (hepbench.mlpf.engines.base.Engine): one process on one device ("single"),
MirroredStrategy over several GPUs or logical CPU devices ("mirrored"), or one Horovod rank
("horovod": gradients averaged over the ranks, every rank starting from rank 0's weights).

Batches are the host pipeline's NumPy dicts: the steps' tf.function converts them (its signature
has dynamic axes, so no retracing), and the mirrored kind feeds them to tf.distribute through
tf.data.Dataset.from_generator. The initial weights are NumPy-drawn (hepbench.mlpf.model.init),
the same as the other backends' for a seed.

A Horovod rank's threads and GPU must be fixed before hvd.init's first collective starts
TensorFlow: `configure_horovod_rank` does that, and the engine's `configure` leaves them alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging as absl_logging

from hepbench.core.devices import runtime_from_build_info
from hepbench.core.hostinfo import cpu_model
from hepbench.mlpf.config import ModelConfig, TrainConfig
from hepbench.mlpf.data.format import NUM_X_FEATURES, NUM_Y_FEATURES
from hepbench.mlpf.engines.backends import TENSORFLOW
from hepbench.mlpf.engines.base import (
    Engine,
    LossAndGradient,
    MissingDevices,
    Part,
    StepResult,
    one_ahead,
    unscaled_gradient,
)
from hepbench.mlpf.engines.tensorflow_steps import EvalStep, HorovodTrainStep, MirroredTrainStep, TrainStep
from hepbench.mlpf.model.init import assign_initial_weights
from hepbench.mlpf.model.losses import mlpf_losses
from hepbench.mlpf.model.mlpf import build_model, parameter_counts

KINDS = TENSORFLOW.strategies
# What the mirrored kind's tf.data wrapper of the NumPy batches yields: dynamic batch and element
# axes, so one traced step serves every padded length.
_BATCH_SIGNATURE = {
    "X": tf.TensorSpec((None, None, NUM_X_FEATURES), tf.float32),
    "y": tf.TensorSpec((None, None, NUM_Y_FEATURES), tf.float32),
    "n_elements": tf.TensorSpec((None,), tf.int32),
}


def configure_horovod_rank(threads: int, device: str, local_rank: int) -> list:
    """Threads and this rank's GPU, before any TensorFlow op runs (Horovod's first collective
    initialises TensorFlow, after which neither can change). Returns the GPUs TensorFlow sees."""
    _set_threads(threads)
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        tf.config.set_visible_devices([] if device == "cpu" else gpus[local_rank % len(gpus)], "GPU")
    return gpus


def _set_threads(threads: int) -> None:
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


class TensorFlowEngine(Engine):
    """`kind`: single, mirrored or horovod. `device`: "cpu" or "gpu", or None to keep what the process
    sees (an HPO trial: Ray picks its devices). `threads`: intra- and inter-op threads (None: leave
    them; a Horovod rank has them from configure_horovod_rank). `replicas`: mirrored devices.
    `graph_optimizer`: TensorFlow's Grappler, which runs on a step's first call."""

    def __init__(
        self,
        kind: str = "single",
        device: str | None = None,
        threads: int | None = None,
        replicas: int = 1,
        graph_optimizer: bool = True,
    ):
        if kind not in KINDS:
            raise ValueError(f"engine kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if kind != "mirrored" and replicas != 1:
            raise ValueError(f"{replicas} replicas need the mirrored kind, not {kind!r}")
        if kind == "mirrored" and device not in ("cpu", "gpu"):
            raise ValueError(f"the mirrored kind needs device cpu or gpu, not {device!r}")
        self.kind, self.device, self.threads = kind, device, threads
        self.replicas, self.graph_optimizer = replicas, graph_optimizer
        self.strategy: tf.distribute.Strategy | None = None
        self.model: keras.Model | None = None
        self._train: TrainStep | None = None
        self._eval: EvalStep | None = None
        self._element_spec = None  # of the distributed training dataset (mirrored)
        self._configured = False
        self._jit_compile = False  # the built steps' (train_cfg.jit_compile)
        self._configs: tuple[ModelConfig, TrainConfig] | None = None  # build's (the numerics check's host model)

    # -- the process ------------------------------------------------------------------------------

    def configure(self) -> None:
        absl_logging.set_verbosity(absl_logging.ERROR)  # TFDS deprecation chatter, once per feature
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not self.graph_optimizer})
        if self.threads is not None:
            try:
                _set_threads(self.threads)
            except RuntimeError:  # only possible before TensorFlow's first op: a reused process (a Ray actor)
                pass  # keeps its first setting
        if self.device is not None and self.kind != "horovod":  # configure_horovod_rank chose the rank's GPU
            self._configure_devices()
        keras.backend.clear_session()  # a reused process starts each run from a clean graph
        self._element_spec = None  # a new strategy's datasets fix the mirrored step's signature anew
        if self.kind == "mirrored":
            devices = [f"/{self.device}:{i}" for i in range(self.replicas)]
            # On CPUs there is no NCCL; the default cross-device ops would pick it for GPUs.
            ops = tf.distribute.ReductionToOneDevice() if self.device == "cpu" else None
            self.strategy = tf.distribute.MirroredStrategy(devices, cross_device_ops=ops)
        self._configured = True

    def _configure_devices(self) -> None:
        gpus = tf.config.list_physical_devices("GPU")
        if self.device == "gpu" and len(gpus) < self.replicas:
            raise MissingDevices(f"TensorFlow sees {len(gpus)} GPU(s), {self.replicas} needed")
        if self.device == "cpu" and gpus:  # the coordinator hides GPUs; this is the belt to those braces
            tf.config.set_visible_devices([], "GPU")
        if self.kind == "mirrored" and self.device == "cpu" and self.replicas > 1:
            # Logical CPU devices: MirroredStrategy's replicas on one CPU (they share its thread pool).
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * self.replicas)

    def devices(self) -> list[dict]:
        if self.device == "gpu":
            return [
                {"type": "gpu", "name": tf.config.experimental.get_device_details(gpu).get("device_name", "GPU")}
                for gpu in tf.config.get_visible_devices("GPU")[: self.replicas]
            ]
        return [{"type": "cpu", "name": cpu_model()}] * self.replicas

    def software(self) -> dict:
        build = tf.sysconfig.get_build_info()
        return {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "cuda": build.get("cuda_version") or None,
            "cudnn": build.get("cudnn_version") or None,
        }

    def backend(self) -> dict:
        out = {
            "name": TENSORFLOW.name,
            "version": tf.__version__,
            "keras": keras.__version__,
            "compile": "tf.function+xla" if self._jit_compile else "tf.function",
        }
        if self.device == "gpu":  # the runtime its GPU build drives them with
            out.update(runtime_from_build_info(tf.sysconfig.get_build_info()).to_backend())
        return out

    def peak_device_memory(self) -> int | None:
        if self.device != "gpu" or not self._configured:
            return None
        try:
            return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
        except (ValueError, RuntimeError):
            return None

    # -- model, optimizer, steps ------------------------------------------------------------------

    def build(self, model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
        # TensorFlow runs float32 matmuls as TF32 on Ampere and newer unless told not to (before the
        # steps are traced; docs/engines.md, "float32 matmul").
        tf.config.experimental.enable_tensor_float_32_execution(train_cfg.fp32_matmul == "tf32")
        keras.utils.set_random_seed(train_cfg.seed)  # Python, NumPy and TensorFlow's global generators
        with self.strategy.scope() if self.strategy is not None else contextlib.nullcontext():
            self.model = build_model(model_cfg, train_cfg.precision)
            # NumPy-drawn: the same initial weights as the JAX and PyTorch engines for this seed.
            assign_initial_weights(self.model, train_cfg.seed)
            if self.kind == "mirrored":
                self._train = MirroredTrainStep(self.model, train_cfg, self.strategy, self._element_spec)
            elif self.kind == "horovod":
                # Optional (built by `make setup`'s second step): imported only by a Horovod rank.
                import horovod.tensorflow as hvd

                self._train = HorovodTrainStep(self.model, train_cfg, hvd)
                self._train.broadcast_from_root()
            else:
                self._train = TrainStep(self.model, train_cfg)
        self._eval = EvalStep(self.model, train_cfg)
        self._jit_compile = train_cfg.jit_compile
        self._configs = (model_cfg, train_cfg)

    def parameter_counts(self) -> tuple[int, int]:
        return parameter_counts(self.model)

    @property
    def optimizer(self) -> keras.optimizers.Optimizer:
        return self._train.optimizer

    # -- batches and steps ------------------------------------------------------------------------

    def train_batches(self, dataset: Iterable) -> Iterator:
        if self.strategy is None:
            return one_ahead(self._placed(batch) for batch in dataset)
        # tf.distribute splits each global batch into one batch per replica; it takes a tf.data
        # dataset, so the NumPy batches pass through one. One process reads everything: no
        # sharding for tf.distribute to rewrite.
        wrapped = tf.data.Dataset.from_generator(
            lambda: ({k: batch[k] for k in _BATCH_SIGNATURE} for batch in dataset), output_signature=_BATCH_SIGNATURE
        )
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        # (tf.distribute prefetches each replica's share to its device itself)
        distributed = self.strategy.experimental_distribute_dataset(wrapped.with_options(options))
        # The first dataset fixes the step's signature. Later ones (the loop's all-padding batches)
        # have the same element spec and must keep the traced step, not get a new one.
        if self._element_spec is None:
            self._element_spec = distributed.element_spec
            self._train.fix_signature(self._element_spec)
        return iter(distributed)

    def eval_batches(self, dataset: Iterable) -> Iterator:
        # the model's mirrored variables read as one on the default device
        return one_ahead(self._placed(batch) for batch in dataset)

    def _placed(self, batch: dict) -> dict:
        """On a GPU, X and y copied to it as the batch is fetched (one_ahead: before the step before
        it runs); on a CPU the NumPy batch as it is, which the steps' tf.function converts."""
        if self.device != "gpu":
            return batch
        with tf.device("/GPU:0"):  # a Horovod rank sees its own GPU only (configure_horovod_rank)
            return {**batch, "X": tf.identity(batch["X"]), "y": tf.identity(batch["y"])}

    def trace_train(self, batch) -> None:
        self._train.trace(batch["X"], batch["y"])

    def trace_eval(self, batch) -> None:
        self._eval.trace(batch["X"], batch["y"])

    def train_step(self, batch) -> StepResult:
        losses = self._train(batch["X"], batch["y"])
        loss = float(losses["loss"])  # reading the loss waits for the step: the clock stays honest
        # A mirrored batch is one padded batch per replica, each with its own padded length.
        local = getattr(self._train, "local_parts", lambda value: (value,))
        return StepResult(loss, tuple(_part(X, n) for X, n in zip(local(batch["X"]), local(batch["n_elements"]))))

    def eval_step(self, batch) -> StepResult:
        loss = float(self._eval(batch["X"], batch["y"])["loss"])
        return StepResult(loss, (_part(batch["X"], batch["n_elements"]),))

    # -- the numerics check ------------------------------------------------------------------------

    def loss_and_gradient(self, batch) -> LossAndGradient:
        scaled = isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
        scale = float(np.asarray(self.optimizer.dynamic_scale)) if scaled else 1.0
        if self.kind == "single":
            return self._through_the_step(batch, scale)
        # A Horovod or mirrored step is a collective: a function of its own, traced now, converts the
        # batch onto the first device (the rank's own GPU, a mirrored run's first replica).
        b = {k: np.asarray(batch[k]) for k in ("X", "y")}
        return unscaled_gradient(lambda s: self._train.loss_and_gradient_norm(b["X"], b["y"], s), scale)

    def _through_the_step(self, batch, scale: float) -> LossAndGradient:
        """The traced train step itself, which reports its unscaled gradient's norm; then the state
        put back. fp16: a step that overflows skips its update and halves its scale, as
        unscaled_gradient does, until one is finite."""
        b, saved = self._placed(batch), self.state()

        def step(_: float) -> tuple[float, float]:
            out = self._train(b["X"], b["y"])
            return float(out["loss"]), float(out["grad_norm"])

        try:
            return unscaled_gradient(step, scale)
        finally:
            self.load_state(saved)

    def host_loss_and_gradient(self, batch) -> LossAndGradient:
        model_cfg, train_cfg = self._configs
        with tf.device("/CPU:0"):
            # A float32 model of its own: the run's dtype policy is its model's, not a global one. A single
            # float32 run on the CPU has one already (its variables are read, never written, here).
            model = self.model
            if self.kind != "single" or train_cfg.precision != "fp32" or self.device != "cpu":
                model = build_model(model_cfg, "fp32")
                model.set_weights(self.model.get_weights())
            X, y = tf.constant(batch["X"], tf.float32), tf.constant(batch["y"], tf.float32)
            with tf.GradientTape() as tape:
                loss = mlpf_losses(X, y, model(X, training=True), train_cfg.loss_weights)["loss"]
            grads = [g for g in tape.gradient(loss, model.trainable_variables) if g is not None]
            return LossAndGradient(float(loss), float(tf.linalg.global_norm(grads)))

    def from_rank0(self, flag: bool) -> bool:
        if self.kind != "horovod":
            return flag
        hvd = self._train.hvd
        return bool(hvd.broadcast(tf.constant(int(flag)), root_rank=0, name="hepbench.numerics").numpy())

    # -- checkpoints ------------------------------------------------------------------------------

    def _variables(self) -> list:
        # model.variables includes the dropout layers' seed-generator states, which save_weights
        # leaves out: with them, a resumed run draws the same dropout masks as an uninterrupted one.
        return [*self.model.variables, *self._train.optimizer.variables]

    def state(self) -> list[np.ndarray]:
        return [np.asarray(v) for v in self._variables()]

    def load_state(self, arrays: Sequence[np.ndarray]) -> None:
        variables = self._variables()
        if len(arrays) != len(variables):
            raise ValueError(f"holds {len(arrays)} variables, the model and optimizer {len(variables)}")
        for v, a in zip(variables, arrays):
            v.assign(a)


def _part(X, n_elements) -> Part:
    return Part(events=int(X.shape[0]), padded_length=int(X.shape[1]), real_elements=int(np.asarray(n_elements).sum()))
