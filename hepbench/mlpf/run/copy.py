"""One benchmark copy: data → model → traced step → warm-up → timed windows → validation.

A copy is its own process (`python -m hepbench.mlpf.run.worker SPEC RESULT`): its CPU set, threads
and GPU are fixed before TensorFlow starts, and copies share nothing. `run_copy` is the library
entry point; it returns the copy's entry of the report and the context the report needs.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import os
import resource
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from typing import TextIO

from hepbench.mlpf.config import config_from_dict
from hepbench.core.errors import HepbenchError
from hepbench.core.progress import Progress
from hepbench.core.hostinfo import cpu_model
from hepbench.mlpf.run.signals import Interrupted
from hepbench.mlpf.train.throughput import Plan, StepOutcome, TrainingTimer, Window, stats, totals


@dataclass(frozen=True)
class CopySpec:
    """Everything a copy process needs; written as JSON by the coordinating process."""

    copy: int
    copies: int
    config: dict  # hepbench.mlpf.config.config_to_dict
    data_dir: str
    device: str  # "cpu" or "gpu"
    gpu_index: int | None  # physical index, made visible to the copy as its only GPU
    cpus: list[int] | None  # CPU set to pin to (None: leave as inherited)
    threads: int  # TensorFlow intra- and inter-op threads
    events_per_window: int
    validation_events: int
    quiet: bool = False
    bar: bool = False  # a progress bar (only one copy may draw on a terminal)
    strategy: str = "single"  # "single", "mirrored" (several devices) or "horovod" (one rank)
    local_rank: int | None = None  # Horovod: rank on this host, which picks the GPU
    num_workers: int = 1  # data shards: a Horovod rank reads shard `copy` of `num_workers`
    replicas: int = 1  # mirrored: devices trained on at once (logical CPU devices on a CPU)
    gpu_indices: list[int] | None = None  # mirrored on GPUs: the physical indices made visible

    @classmethod
    def from_dict(cls, data: dict) -> "CopySpec":
        return cls(**data)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def failed_entry(spec: CopySpec, log: str) -> dict:
    """A copy's report entry before (or instead of) any result: status failed, nothing measured."""
    extra: dict = {}
    if spec.strategy == "horovod":
        extra = {"rank": spec.copy, "local_rank": spec.local_rank}
    elif spec.strategy == "mirrored":
        extra = {"replicas": spec.replicas}
    return {
        "copy": spec.copy, "host": socket.gethostname(), **extra, "status": "failed", "log": log,
        "device": {"type": spec.device, "name": cpu_model() if spec.device == "cpu" else "GPU", "index": spec.gpu_index},
        "cpus": spec.cpus, "threads": spec.threads,
        "compile_seconds": None, "warmup": None, "train": None, "windows": [], "window_stats": None,
        "validation": None, "peak_host_memory_bytes": None, "peak_device_memory_bytes": None, "wall_seconds": None,
    }


def _say(spec: CopySpec, text: str, stream: TextIO) -> None:
    if not spec.quiet:
        unit = "rank" if spec.strategy == "horovod" else "copy"
        prefix = f"[{unit} {spec.copy}] " if spec.copies > 1 else ""
        stream.write(f"{prefix}{text}\n")
        stream.flush()


def _configure_tensorflow(spec: CopySpec):
    if spec.cpus:
        os.sched_setaffinity(0, spec.cpus)
    import keras
    import tensorflow as tf
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)  # TFDS deprecation chatter, once per feature

    if spec.strategy == "horovod":  # run.horovod configured TensorFlow before hvd.init's first op
        return tf, keras
    tf.config.threading.set_intra_op_parallelism_threads(spec.threads)
    tf.config.threading.set_inter_op_parallelism_threads(spec.threads)
    gpus = tf.config.list_physical_devices("GPU")
    needed = spec.replicas if spec.strategy == "mirrored" else 1
    if spec.device == "gpu" and len(gpus) < needed:
        raise HepbenchError(f"copy {spec.copy}: TensorFlow sees {len(gpus)} GPU(s), {needed} needed "
                            f"(GPU index {spec.gpu_indices or spec.gpu_index})")
    if spec.device == "cpu" and gpus:  # the coordinator hides GPUs; this is the belt to those braces
        tf.config.set_visible_devices([], "GPU")
    if spec.strategy == "mirrored" and spec.device == "cpu" and spec.replicas > 1:
        # Logical CPU devices: MirroredStrategy's replicas on one CPU (they share its thread pool).
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * spec.replicas)
    return tf, keras


def _mirrored_strategy(spec: CopySpec, tf):
    devices = [f"/{spec.device}:{i}" for i in range(spec.replicas)]
    # On CPUs there is no NCCL; the default cross-device ops would pick it for GPUs.
    ops = tf.distribute.ReductionToOneDevice() if spec.device == "cpu" else None
    return tf.distribute.MirroredStrategy(devices, cross_device_ops=ops)


def _device_entries(spec: CopySpec, tf) -> list[dict]:
    """The devices this copy trains on: one, or one per replica (mirrored)."""
    if spec.device == "gpu":
        visible = tf.config.get_visible_devices("GPU")
        indices = spec.gpu_indices or [spec.gpu_index]
        return [{"type": "gpu", "name": tf.config.experimental.get_device_details(gpu).get("device_name", "GPU"),
                 "index": index} for gpu, index in zip(visible, indices)]
    return [{"type": "cpu", "name": cpu_model(), "index": None}] * spec.replicas


def _software(tf, keras) -> dict:
    build = tf.sysconfig.get_build_info()
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "cuda": build.get("cuda_version") or None,
        "cudnn": build.get("cudnn_version") or None,
    }


def _outcome_fn(train_step, model_cfg):
    from hepbench.mlpf.model.flops import training_flops

    flops_per_event: dict[int, int] = {}
    # A mirrored batch is one padded batch per replica, each with its own padded length.
    parts = getattr(train_step, "local_parts", lambda value: (value,))

    def step(batch) -> StepOutcome:
        losses = train_step(batch["X"], batch["y"])
        loss = float(losses["loss"])  # reading the loss waits for the step: the clock stays honest
        events = real = padded = 0
        flops = 0.0
        for X, n in zip(parts(batch["X"]), parts(batch["n_elements"])):
            b, length = int(X.shape[0]), int(X.shape[1])
            if length not in flops_per_event:
                flops_per_event[length] = training_flops(model_cfg, length)
            events, real, padded = events + b, real + int(n.numpy().sum()), padded + b * length
            flops += b * flops_per_event[length]
        return StepOutcome(loss=loss, events=events, real_elements=real, padded_elements=padded, flops=flops)

    return step


def _validate(eval_step, batches, n_batches: int, clock=time.perf_counter) -> dict | None:
    """Inference over the test split, timed on its own: trace, one untimed batch, then n_batches."""
    if n_batches == 0:
        return None
    first = next(batches)
    t0 = clock()
    eval_step.trace(first["X"], first["y"])
    compile_seconds = clock() - t0
    float(eval_step(first["X"], first["y"])["loss"])  # first execution: allocations, kernel choice
    events, loss_sum = 0, 0.0
    t0 = clock()
    for batch in itertools.islice(batches, n_batches):
        n = int(batch["X"].shape[0])
        loss_sum += float(eval_step(batch["X"], batch["y"])["loss"]) * n
        events += n
    seconds = clock() - t0
    return {
        "events": events,
        "steps": n_batches,
        "seconds": seconds,
        "events_per_second": events / seconds if seconds > 0 else 0.0,
        "compile_seconds": compile_seconds,
        "loss": loss_sum / events if events else None,
    }


def _peak_device_memory(spec: CopySpec, tf) -> int | None:
    if spec.device != "gpu" or tf is None:
        return None
    try:
        return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])
    except (ValueError, RuntimeError):
        return None


def _make_train_step(spec: CopySpec, model, cfg, strategy=None, element_spec=None):
    if strategy is not None:
        from hepbench.mlpf.train.distributed import MirroredTrainStep

        return MirroredTrainStep(model, cfg.train, strategy, element_spec)
    if spec.strategy == "horovod":
        import horovod.tensorflow as hvd

        from hepbench.mlpf.train.distributed import HorovodTrainStep

        step = HorovodTrainStep(model, cfg.train, hvd)
        step.broadcast_from_root()
        return step
    from hepbench.mlpf.train.step import TrainStep

    return TrainStep(model, cfg.train)


def run_copy(spec: CopySpec, stream: TextIO = sys.stderr, heartbeat=lambda: None) -> tuple[dict, dict]:
    """Run one copy; returns (its report entry, context: TensorFlow build and model facts).

    Never raises for a failed run: the entry's status says "failed" and its log why. After a
    SIGTERM/SIGINT (inside `signals.interruptible`) context["signal"] holds the signal number.
    `heartbeat()` is called after every step (a watchdog's sign of life).
    """
    cfg = config_from_dict(spec.config, "copy specification")
    start = time.perf_counter()
    entry = failed_entry(spec, "did not start")
    context: dict = {}
    global_batch = cfg.data.batch_size * spec.replicas  # mirrored: batch_size events per replica
    steps_per_window = math.ceil(spec.events_per_window / global_batch)
    timer = TrainingTimer(Plan(cfg.bench.warmup_steps, cfg.bench.windows, steps_per_window))
    tf = None
    try:
        tf, keras = _configure_tensorflow(spec)
        devices = _device_entries(spec, tf)
        entry["device"] = devices[0]
        if spec.strategy == "mirrored":
            entry["replica_devices"] = devices
        context["software"] = _software(tf, keras)
        keras.utils.set_random_seed(cfg.train.seed)

        from hepbench.mlpf.data.pipeline import make_dataset
        from hepbench.mlpf.data.tfds_builder import load_builder
        from hepbench.mlpf.model.mlpf import build_model, parameter_counts
        from hepbench.mlpf.train.step import EvalStep

        builder = load_builder(spec.data_dir)
        train_data = make_dataset(builder, "train", dataclasses.replace(cfg.data, batch_size=global_batch),
                                  bin_size=cfg.model.bin_size, num_workers=spec.num_workers,
                                  worker_index=spec.copy % spec.num_workers).repeat()
        strategy = _mirrored_strategy(spec, tf) if spec.strategy == "mirrored" else None
        element_spec = None
        if strategy is not None:  # each global batch is split into one batch per replica
            options = tf.data.Options()  # one process reads everything: no sharding to rewrite
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
            train_data = strategy.experimental_distribute_dataset(train_data.with_options(options))
            element_spec = train_data.element_spec
        train = iter(train_data)
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model = build_model(cfg.model, cfg.train.precision)
            train_step = _make_train_step(spec, model, cfg, strategy, element_spec)
        trainable, frozen = parameter_counts(model)
        context["model"] = {"name": "PFNetDense", "trainable_parameters": trainable, "non_trainable_parameters": frozen}

        on = f"{spec.replicas} x {entry['device']['name']}" if spec.replicas > 1 else entry["device"]["name"]
        _say(spec, f"{on}: tracing the training step ...", stream)
        first = next(train)
        t0 = time.perf_counter()
        train_step.trace(first["X"], first["y"])
        entry["compile_seconds"] = time.perf_counter() - t0
        heartbeat()
        _say(spec, f"traced in {entry['compile_seconds']:.1f} s; {cfg.bench.warmup_steps} warm-up step(s), then "
                   f"{cfg.bench.windows} windows of {steps_per_window} steps", stream)

        bar: Progress | None = None

        def on_step(window: Window, done: int) -> None:
            nonlocal bar
            if spec.bar and not spec.quiet:
                if done == 1:
                    bar = Progress(steps_per_window, f"window {window.window}/{cfg.bench.windows}", "steps", stream)
                bar.update(done, f"loss {window.loss:.4g}")

        def on_window(w: Window) -> None:
            _say(spec, f"window {w.window}/{cfg.bench.windows}: {w.events} events in {w.seconds:.2f} s = "
                       f"{w.events_per_second:.4g} events/s  (mean step {w.step_seconds / w.steps:.3f} s, "
                       f"loss {w.loss:.4g})", stream)

        outcome = _outcome_fn(train_step, cfg.model)

        def step(batch) -> StepOutcome:
            result = outcome(batch)
            heartbeat()  # warm-up steps included
            return result

        timer.run(itertools.chain([first], train), step, on_step, on_window)

        n_val = math.ceil(spec.validation_events / cfg.data.batch_size)
        if n_val:
            test = make_dataset(builder, "test", cfg.data, bin_size=cfg.model.bin_size).repeat()
            entry["validation"] = _validate(EvalStep(model, cfg.train), iter(test), n_val)
            v = entry["validation"]
            _say(spec, f"validation: {v['events']} events in {v['seconds']:.2f} s = {v['events_per_second']:.4g} "
                       f"events/s (loss {v['loss']:.4g})", stream)
        if entry["validation"] is not None and not math.isfinite(entry["validation"]["loss"]):
            loss, entry["validation"]["loss"] = entry["validation"]["loss"], None  # JSON has no NaN
            raise HepbenchError(f"validation loss is {loss}; the run is invalid")
        entry["status"], entry["log"] = "ok", "ok"
    except Interrupted as e:
        context["signal"], entry["log"] = e.signum, str(e)
    except HepbenchError as e:
        entry["log"] = str(e)
    except Exception as e:  # a bug or a TensorFlow failure: the report still says what happened
        traceback.print_exc(file=stream)
        entry["log"] = f"{type(e).__name__}: {e}"
    entry["warmup"] = timer.warmup.to_dict() if timer.warmup.steps else None
    entry["windows"] = [w.to_dict() for w in timer.windows]
    if entry["status"] == "ok":
        entry["train"] = totals(timer.windows)
        entry["window_stats"] = stats(w.events_per_second for w in timer.windows)
    # ru_maxrss is the kernel's exact high-water mark (KiB on Linux); sampling would miss peaks.
    entry["peak_host_memory_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    entry["peak_device_memory_bytes"] = _peak_device_memory(spec, tf)
    entry["wall_seconds"] = time.perf_counter() - start
    return entry, context
