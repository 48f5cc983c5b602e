"""The PyTorch engine (hepbench.mlpf.engines.base.Engine): the MLPF model as a native torch.nn.Module
(hepbench.mlpf.engines.torch_model: the Keras model's layers and initial weights, held to it by the
parity tests), its steps eager PyTorch or, with train.compile=true, torch.compile'd whole
(hepbench.mlpf.engines.torch_steps). Kinds: "single" (one process, one device) and "ddp" (one rank
of a DistributedDataParallel job whose process group the run layer has initialised: Gloo on a CPU,
NCCL on an NVIDIA or AMD GPU (RCCL), XCCL on an Intel GPU).

On a GPU the engine uses the current device of torch.cuda (NVIDIA; AMD on a ROCm build) or, where
there is none, torch.xpu (Intel) (hepbench.mlpf.engines.torch_devices): a copy sees only its own
GPU, a DDP rank uses the GPU of its local rank (LOCAL_RANK under torchrun, SLURM_LOCALID under srun).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence

import keras
import numpy as np
import torch

from hepbench.core.errors import HepbenchError
from hepbench.core.hostinfo import cpu_model
from hepbench.mlpf.config import ModelConfig, TrainConfig
from hepbench.mlpf.engines.backends import TORCH
from hepbench.mlpf.engines.base import (
    Engine,
    LossAndGradient,
    MissingDevices,
    Part,
    StepResult,
    one_ahead,
    unscaled_gradient,
)
from hepbench.mlpf.engines.torch_devices import accelerator, builds, runtime
from hepbench.mlpf.engines.torch_model import PFNetDense, assign_weights, build_module, mlpf_losses, parameter_counts
from hepbench.mlpf.engines.torch_optimizer import LossScale
from hepbench.mlpf.engines.torch_steps import DdpTrainStep, EvalStep, TrainStep, check_compile_backend, compile_mode
from hepbench.mlpf.model.init import set_random_seed

KINDS = TORCH.strategies
_LOCAL_RANK_VARIABLES = ("LOCAL_RANK", "SLURM_LOCALID")  # torchrun's, srun's


class TorchEngine(Engine):
    """`kind`: single or ddp. `device`: "cpu" or "gpu", or None for the GPU when PyTorch sees one,
    else the CPU (an HPO trial: Ray picks its devices). `threads`: PyTorch's intra-op threads, and its inter-op
    threads while they can still be set (None: PyTorch's defaults). `replicas`: always 1 (a DDP
    job is one process per device)."""

    def __init__(self, kind: str = "single", device: str | None = None, threads: int | None = None, replicas: int = 1):
        if kind not in KINDS:
            raise ValueError(f"engine kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if replicas != 1:
            raise ValueError(
                f"the torch engine runs on one device per process, not {replicas} replicas "
                "(data parallelism is the ddp kind, one process per device)"
            )
        if device not in (None, "cpu", "gpu"):
            raise ValueError(f"device must be cpu, gpu or None, not {device!r}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, not {threads}")
        self.kind, self.device, self.threads, self.replicas = kind, device, threads, replicas
        self._device: torch.device | None = None
        self._copies: torch.Stream | None = None  # a GPU's host-to-device copies (_placed)
        self.model: PFNetDense | None = None
        self._train: TrainStep | None = None
        self._eval: EvalStep | None = None
        self._compile, self._compile_backend = False, None  # the built steps' (train_cfg.compile, .compile_backend)
        self._compile_mode: str | None = None  # torch.compile's mode (CUDA graphs on an NVIDIA GPU)
        self._configs: tuple[ModelConfig, TrainConfig] | None = None  # build's (the numerics check's host model)

    # -- the process ------------------------------------------------------------------------------

    def configure(self) -> None:
        if self.threads is not None:
            torch.set_num_threads(self.threads)
            try:
                torch.set_num_interop_threads(self.threads)
            except RuntimeError:  # only before PyTorch's first parallel work: a reused process keeps its first
                pass
        if self.kind == "ddp" and not torch.distributed.is_initialized():
            raise HepbenchError(
                "the ddp engine needs an initialised torch.distributed process group "
                "(hepbench.mlpf.run.ddp joins the job before the engine is configured)"
            )
        self._device = self._select_device()
        # Fresh Keras state for the build's symbolic Keras model (the initial weights); on the torch
        # backend it also resets Dynamo, so a reused process (HPO trials) compiles each run's steps
        # afresh, not as recompilations of the last run's.
        keras.backend.clear_session()

    def _select_device(self) -> torch.device:
        if self.device == "cpu":
            return torch.device("cpu")
        kind = accelerator()  # cuda (NVIDIA; AMD on a ROCm build) or xpu (Intel)
        if self.device is None and kind is None:
            return torch.device("cpu")
        if kind is None:
            raise MissingDevices(f"PyTorch sees no GPU (torch {torch.__version__}, built for {builds()})")
        gpus = torch.get_device_module(kind)
        if self.kind == "ddp":
            local = next((os.environ[v] for v in _LOCAL_RANK_VARIABLES if os.environ.get(v, "").isdigit()), None)
            if local is not None:  # the run layer chose the same one; NCCL (XCCL) needs it current
                gpus.set_device(int(local) % gpus.device_count())
        return torch.device(kind, gpus.current_device())

    def _where(self) -> torch.device:
        if self._device is None:  # not configured (a test process): the device configure would choose
            self._device = self._select_device()
        return self._device

    def devices(self) -> list[dict]:
        device = self._where()
        if device.type != "cpu":
            return [{"type": "gpu", "name": torch.get_device_module(device).get_device_name(device)}]
        return [{"type": "cpu", "name": cpu_model()}]

    def software(self) -> dict:
        return {
            "torch": torch.__version__,
            "keras": keras.__version__,
            "cuda": torch.version.cuda or None,
            "cudnn": _cudnn_version(),
        }

    def backend(self) -> dict:
        """`compile` is the built steps' (eager before build); `model` says the forward pass is the
        native module, not the Keras model (whose weights and arithmetic it has); on a GPU, the
        runtime this PyTorch drives it with (gpu_runtime, gpu_runtime_version)."""
        out = {
            "name": TORCH.name,
            "version": torch.__version__,
            "keras": keras.__version__,
            "compile": "torch.compile" if self._compile else "eager",
            "model": "torch.nn",
        }
        if self._compile:
            out["compile_backend"] = self._compile_backend
            out["compile_mode"] = self._compile_mode or "default"
        if self._device is not None and self._device.type != "cpu":
            out.update(runtime(self._device).to_backend())
        return out

    def peak_device_memory(self) -> int | None:
        if self._device is None or self._device.type == "cpu":
            return None
        return int(torch.get_device_module(self._device).max_memory_allocated(self._device))

    # -- model, optimizer, steps ------------------------------------------------------------------

    def build(self, model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
        check_compile_backend(train_cfg)
        set_fp32_matmul(train_cfg.fp32_matmul)
        set_random_seed(train_cfg.seed)  # torch's generators, which dropout draws from
        device, ddp = self._where(), self.kind == "ddp"
        # The Keras model's NumPy initial weights: the same as the TensorFlow and JAX engines' for this seed.
        self.model = build_module(model_cfg, train_cfg.precision, train_cfg.seed, device)
        mode = compile_mode(train_cfg, device, distributed=ddp)
        if ddp:
            ids = [device.index] if device.type != "cpu" else None
            module = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
            self._train = DdpTrainStep(self.model, train_cfg, module, torch.distributed, mode)
            self._train.broadcast_from_root()
        else:
            self._train = TrainStep(self.model, train_cfg, mode=mode)
        self._eval = EvalStep(self.model, train_cfg, mode)
        self._compile, self._compile_backend, self._compile_mode = train_cfg.compile, train_cfg.compile_backend, mode
        self._configs = (model_cfg, train_cfg)

    def parameter_counts(self) -> tuple[int, int]:
        return parameter_counts(self.model)

    @property
    def optimizer(self):
        """The Adam (or AdamW, or the fp16 loss scale around it) of hepbench.mlpf.engines.torch_optimizer."""
        return self._train.optimizer

    # -- batches and steps ------------------------------------------------------------------------

    def train_batches(self, dataset: Iterable) -> Iterator:
        return one_ahead(self._placed(batch) for batch in dataset)

    def eval_batches(self, dataset: Iterable) -> Iterator:
        return one_ahead(self._placed(batch) for batch in dataset)

    def _placed(self, batch: dict) -> dict:
        """X and y as tensors on the device, and the batch's work (counted on the host). On a GPU the
        copy runs from pinned memory on a stream of its own, not waiting for the steps queued before
        it; `ready` marks its end, which the step waits for (_ready)."""
        X, y, n = (np.asarray(batch[k]) for k in ("X", "y", "n_elements"))
        part = Part(events=int(X.shape[0]), padded_length=int(X.shape[1]), real_elements=int(n.sum()))
        device = self._where()
        if device.type == "cpu":  # from_numpy shares the batch's memory: nothing to copy
            return {"X": _host_tensor(X), "y": _host_tensor(y), "parts": (part,)}
        gpus = torch.get_device_module(device)
        if self._copies is None:
            self._copies = gpus.Stream(device)
        with gpus.stream(self._copies):
            X_d, y_d = (_host_tensor(a).pin_memory().to(device, non_blocking=True) for a in (X, y))
            ready = self._copies.record_event()
        return {"X": X_d, "y": y_d, "parts": (part,), "ready": ready}

    def _ready(self, batch: dict) -> dict:
        """A batch from train_batches/eval_batches, or a raw pipeline batch (placed here), its copy
        to the device finished before the current stream uses it."""
        batch = batch if "parts" in batch else self._placed(batch)
        if "ready" in batch:
            stream = torch.get_device_module(self._where()).current_stream(self._where())
            stream.wait_event(batch["ready"])
            for tensor in (batch["X"], batch["y"]):
                tensor.record_stream(stream)  # allocated on the copy stream, freed after this one's use
        return batch

    def trace_train(self, batch) -> None:
        b = self._ready(batch)
        self._train.trace(b["X"], b["y"])

    def trace_eval(self, batch) -> None:
        b = self._ready(batch)
        self._eval.trace(b["X"], b["y"])

    def train_step(self, batch) -> StepResult:
        b = self._ready(batch)
        losses = self._train(b["X"], b["y"])
        return StepResult(losses["loss"].item(), b["parts"])  # .item() waits for the step

    def eval_step(self, batch) -> StepResult:
        b = self._ready(batch)
        losses = self._eval(b["X"], b["y"])
        return StepResult(losses["loss"].item(), b["parts"])

    # -- the numerics check ------------------------------------------------------------------------

    def loss_and_gradient(self, batch) -> LossAndGradient:
        b = self._ready(self._placed(batch))
        scaled = isinstance(self.optimizer, LossScale)
        return unscaled_gradient(
            lambda scale: self._train.loss_and_gradient_norm(b["X"], b["y"], scale),
            self.optimizer.scale if scaled else 1.0,
        )

    def host_loss_and_gradient(self, batch) -> LossAndGradient:
        model_cfg, train_cfg = self._configs
        model = PFNetDense(model_cfg, "fp32")  # on the CPU, float32 whatever the run's precision
        assign_weights(model, {path: t.detach().cpu().numpy() for path, t in self.model.keras_named_tensors()})
        X, y = (_host_tensor(np.asarray(batch[k])) for k in ("X", "y"))
        with torch.random.fork_rng(devices=[]):
            loss = mlpf_losses(X, y, model(X, training=True), train_cfg.loss_weights)["loss"]
        loss.backward()
        norm = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(p.grad) for p in model.parameters() if p.grad is not None])
        )
        return LossAndGradient(float(loss.detach()), float(norm))

    def from_rank0(self, flag: bool) -> bool:
        if self.kind != "ddp":
            return flag
        value = torch.tensor([int(flag)])  # a host tensor: Gloo's, also beside NCCL on a GPU run
        torch.distributed.broadcast(value, src=0)
        return bool(value.item())

    # -- checkpoints ------------------------------------------------------------------------------

    def _tensors(self) -> list[tuple[str, torch.Tensor]]:
        """(name, tensor) of the module's parameters and buffers, by their Keras paths."""
        return self.model.keras_named_tensors()

    def _generators(self) -> list[tuple]:
        """(get_state, set_state) of the generators dropout draws from: the CPU's, and the GPU's."""
        pairs = [(torch.get_rng_state, torch.set_rng_state)]
        if self._device is not None and self._device.type != "cpu":
            index, gpus = self._device.index, torch.get_device_module(self._device)
            pairs.append((lambda: gpus.get_rng_state(index), lambda t: gpus.set_rng_state(t, index)))
        return pairs

    def state(self) -> list[np.ndarray]:
        """The module's parameters and buffers, the optimizer's state (update count first), then torch's
        generator states (dropout's masks)."""
        arrays = [t.detach().cpu().numpy().copy() for _, t in self._tensors()]
        return [*arrays, *self.optimizer.state(), *(get().numpy().copy() for get, _ in self._generators())]

    def load_state(self, arrays: Sequence[np.ndarray]) -> None:
        tensors, generators = self._tensors(), self._generators()
        names = [*(name for name, _ in tensors), *self.optimizer.state_names()]
        if len(arrays) != len(names) + len(generators):
            raise ValueError(
                f"holds {len(arrays)} arrays, the engine's state {len(names) + len(generators)} "
                f"({len(names)} model and optimizer variables, {len(generators)} "
                f"random generator state(s))"
            )
        expected = [tuple(t.shape) for _, t in tensors] + self.optimizer.state_shapes()
        for i, (name, shape, a) in enumerate(zip(names, expected, arrays)):
            if tuple(np.shape(a)) != shape:
                raise ValueError(f"variable {i} ({name}): shape {np.shape(a)}, the model's {shape}")
        with torch.no_grad():
            for (_, t), a in zip(tensors, arrays):
                t.copy_(torch.from_numpy(np.asarray(a, np.float32)))
        self.optimizer.load_state(arrays[len(tensors) : len(names)])
        for (_, put), a in zip(generators, arrays[len(names) :]):
            put(torch.from_numpy(np.array(a, dtype=np.uint8)))


def _host_tensor(array: np.ndarray) -> torch.Tensor:
    # from_numpy shares the batch's memory; it needs a writable, contiguous float32 array.
    return torch.from_numpy(np.require(array, np.float32, ["C_CONTIGUOUS", "WRITEABLE"]))


def set_fp32_matmul(setting: str) -> None:
    """train.fp32_matmul for CUDA (and ROCm, which answers to the same settings) matmuls and cuDNN
    convolutions: "ieee" or "tf32". PyTorch's own defaults differ between the two (matmuls IEEE,
    convolutions TF32); the CPU's (oneDNN) are left as they are, IEEE float32."""
    tf32 = setting == "tf32"
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # PyTorch 2.9 and newer
        torch.backends.cuda.matmul.fp32_precision = "tf32" if tf32 else "ieee"
        torch.backends.cudnn.conv.fp32_precision = "tf32" if tf32 else "ieee"
    else:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


def _cudnn_version() -> str | None:
    """cuDNN of the PyTorch build, dotted (90100 → 9.1.0, 8902 → 8.9.2); None without one."""
    number = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    if not number:
        return None
    major_unit = 10000 if number >= 90000 else 1000  # cuDNN 9 changed the encoding
    return f"{number // major_unit}.{number % major_unit // 100}.{number % 100}"
