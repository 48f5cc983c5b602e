"""The training loop with a fake engine and a fake clock: the order of its phases, warm-up and
tracing outside the windows, windows that tile the timed steps, validation after, failures that
keep what was measured."""
from __future__ import annotations

import math

import numpy as np
import pytest

from hepbench.mlpf.config import BenchConfig, Config, ModelConfig
from hepbench.mlpf.engines.base import Engine, Part, StepResult
from hepbench.mlpf.model.flops import training_flops
from hepbench.mlpf.train.loop import Hooks, Measurement, benchmark, mean_loss
from hepbench.mlpf.train.throughput import NonFiniteLoss, Plan, TrainingTimer

TRACE_SECONDS, WARMUP_SECONDS, EVAL_SECONDS = 100.0, 30.0, 0.5
LENGTH = 32  # padded length of every fake batch


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeEngine(Engine):
    """Records its calls; each step advances the clock by the next of `durations` (after the warm-up)."""

    def __init__(self, clock: FakeClock, warmup: int, durations, losses=(), eval_loss=2.0, replicas=1):
        self.clock, self.warmup, self.replicas = clock, warmup, replicas
        self.durations, self.losses, self.eval_loss = iter(durations), iter(losses), eval_loss
        self.calls: list[str] = []
        self.train_steps = 0

    def configure(self):
        self.calls.append("configure")

    def devices(self):
        self.calls.append("devices")
        return [{"type": "cpu", "name": "Fake CPU"}] * self.replicas

    def backend(self):
        return {"name": "fake", "version": "0", "keras": None, "compile": None}

    def software(self):
        return {"fake": "1.0"}

    def build(self, model_cfg, train_cfg):
        self.calls.append("build")

    def parameter_counts(self):
        return 10, 2

    def train_batches(self, dataset):
        self.calls.append(f"train_batches {dataset}")
        return iter(range(10**6))

    def eval_batches(self, dataset):
        self.calls.append(f"eval_batches {dataset}")
        return iter(range(10**6))

    def trace_train(self, batch):
        self.calls.append("trace_train")
        self.clock.now += TRACE_SECONDS

    def trace_eval(self, batch):
        self.calls.append("trace_eval")

    def train_step(self, batch):
        self.calls.append("train_step")
        self.train_steps += 1
        self.clock.now += WARMUP_SECONDS if self.train_steps <= self.warmup else next(self.durations)
        # Two replicas' parts: 2 events each, 20 and 30 real elements.
        parts = tuple(Part(events=2, padded_length=LENGTH, real_elements=20 + 10 * r) for r in range(self.replicas))
        return StepResult(next(self.losses, 1.0), parts)

    def eval_step(self, batch):
        self.calls.append("eval_step")
        self.clock.now += EVAL_SECONDS
        return StepResult(self.eval_loss, (Part(events=2, padded_length=LENGTH, real_elements=25),))

    def peak_device_memory(self):
        return None

    def state(self):
        return [np.zeros(1)]

    def load_state(self, arrays):
        pass


class FakeSource:
    def training(self, cfg, replicas=1):
        return f"train x{replicas}"

    def validation(self, cfg):
        return "test"


CFG = Config(model=ModelConfig(bin_size=16), bench=BenchConfig(windows=2, warmup_steps=2))


def run(engine, clock, plan, validation_events=4, **hooks):
    measured = Measurement(TrainingTimer(plan, clock=clock, wall_clock=clock))
    return measured, benchmark(engine, CFG, FakeSource(), measured, validation_events, Hooks(**hooks))


def test_phases_run_in_order_and_only_the_windows_are_timed():
    clock, said, beats = FakeClock(), [], []
    engine = FakeEngine(clock, warmup=2, durations=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], replicas=2)
    measured, result = run(engine, clock, Plan(warmup_steps=2, windows=2, steps_per_window=3),
                           say=said.append, heartbeat=lambda: beats.append(clock.now))
    assert result is measured
    steps = ["train_step"] * 8
    assert engine.calls == ["configure", "devices", "build", "train_batches train x2", "trace_train", *steps,
                            "eval_batches test", "trace_eval", "eval_step", "eval_step", "eval_step"]
    # Tracing and the warm-up are measured apart, never inside a window.
    assert measured.compile_seconds == TRACE_SECONDS
    assert measured.timer.warmup.steps == 2 and measured.timer.warmup.seconds == 2 * WARMUP_SECONDS
    first, second = measured.timer.windows
    assert (first.seconds, second.seconds) == (6.0, 15.0)  # the windows tile the timed steps exactly
    assert first.step_seconds == first.seconds and (first.events, first.steps) == (12, 3)
    assert first.real_elements == 3 * 50 and first.padded_elements == 3 * 2 * 2 * LENGTH
    assert first.flops == 3 * 4 * training_flops(CFG.model, LENGTH)
    # Validation after the last window: one untimed batch, then ceil(4 / batch 2) timed ones.
    v = measured.validation
    assert (v["events"], v["steps"], v["seconds"], v["loss"]) == (4, 2, 2 * EVAL_SECONDS, 2.0)
    assert v["events_per_second"] == pytest.approx(4.0)
    assert (measured.devices, measured.software, measured.parameters) == ([{"type": "cpu", "name": "Fake CPU"}] * 2,
                                                                          {"fake": "1.0"}, (10, 2))
    # A heartbeat after tracing and after every step.
    assert beats[0] == TRACE_SECONDS and len(beats) == 1 + 8
    assert said[0] == "2 x Fake CPU: tracing the training step ..."
    assert said[1] == "traced 1 batch shape(s) in 100.0 s; 2 warm-up step(s), then 2 windows of 3 steps"
    assert said[2].startswith("window 1/2: 12 events in 6.00 s = 2 events/s  (mean step 2.000 s")
    assert said[-1].startswith("validation: 4 events in 1.00 s")


def test_no_validation_events_skips_validation():
    clock = FakeClock()
    engine = FakeEngine(clock, warmup=0, durations=[1.0] * 2)
    measured, _ = run(engine, clock, Plan(0, 1, 2), validation_events=0)
    assert measured.validation is None and "trace_eval" not in engine.calls


def test_a_non_finite_training_loss_stops_the_loop_and_keeps_the_completed_windows():
    clock = FakeClock()
    engine = FakeEngine(clock, warmup=1, durations=[1.0] * 9, losses=[3.0, 2.0, 1.0, math.nan])
    measured = Measurement(TrainingTimer(Plan(1, 3, 2), clock=clock, wall_clock=clock))
    with pytest.raises(NonFiniteLoss, match=r"window 2, step 1"):
        benchmark(engine, CFG, FakeSource(), measured, 4)
    assert len(measured.timer.windows) == 1 and measured.compile_seconds == TRACE_SECONDS
    assert measured.validation is None and "eval_step" not in engine.calls


def test_a_non_finite_validation_loss_fails_the_run_without_writing_nan():
    clock = FakeClock()
    engine = FakeEngine(clock, warmup=0, durations=[1.0] * 2, eval_loss=math.inf)
    measured = Measurement(TrainingTimer(Plan(0, 1, 2), clock=clock, wall_clock=clock))
    with pytest.raises(NonFiniteLoss, match="validation loss is inf; the run is invalid"):
        benchmark(engine, CFG, FakeSource(), measured, 2)
    assert measured.validation["loss"] is None and len(measured.timer.windows) == 1


def test_mean_loss_weights_by_events_and_names_where_a_loss_diverged():
    results = {"a": StepResult(1.0, (Part(1, 16, 3),)), "b": StepResult(4.0, (Part(3, 16, 9),)),
               "nan": StepResult(math.nan, (Part(2, 16, 1),))}
    assert mean_loss(results.get, ["a", "b"]) == (pytest.approx(13 / 4), 4)
    assert mean_loss(results.get, []) == (None, 0)
    with pytest.raises(NonFiniteLoss, match="loss became nan at epoch 3"):
        mean_loss(results.get, ["a", "nan", "b"], where="epoch 3")


class CompilingEngine(FakeEngine):
    """Compiles per shape: records the shape of every traced and every trained batch."""

    compiles_per_shape = True

    def train_batches(self, dataset):
        self.calls.append("train_batches")
        return iter(dataset)

    def eval_batches(self, dataset):
        return iter(dataset)

    def trace_train(self, batch):
        self.calls.append(("trace_train", batch["X"].shape[:2]))

    def trace_eval(self, batch):
        self.calls.append(("trace_eval", batch["X"].shape[:2]))

    def train_step(self, batch):
        self.calls.append(("train_step", batch["X"].shape[:2]))
        return super().train_step(batch)

    def eval_step(self, batch):
        self.calls.append(("eval_step", batch["X"].shape[:2]))
        return super().eval_step(batch)


class ShapedSource:
    """Deterministic batches whose padded lengths and sizes vary, as the pipeline's do (a new pass
    over the source gives the same batches)."""

    SHAPES = [(2, 16), (2, 48), (2, 16), (1, 32), (2, 64), (2, 48), (2, 80), (2, 16), (2, 96)]

    def _batches(self, shapes):
        return ({"X": np.zeros((b, n, 12), np.float32), "y": np.zeros((b, n, 7), np.float32),
                 "n_elements": np.full(b, n // 2, np.int32)} for b, n in shapes * 100)

    def training(self, cfg, replicas=1):
        return self._batches(self.SHAPES)

    def validation(self, cfg):
        return self._batches([(2, 32), (2, 16), (2, 112)])


def test_an_engine_that_compiles_per_shape_has_every_shape_of_the_run_traced_before_the_first_step():
    clock = FakeClock()
    engine = CompilingEngine(clock, warmup=2, durations=[1.0] * 6)
    measured = Measurement(TrainingTimer(Plan(warmup_steps=2, windows=2, steps_per_window=3), clock=clock,
                                         wall_clock=clock))
    benchmark(engine, CFG, ShapedSource(), measured, 4, Hooks())
    first_step = next(i for i, c in enumerate(engine.calls) if c[0] == "train_step")
    traced = {c[1] for c in engine.calls[:first_step] if c[0] == "trace_train"}
    trained = {c[1] for c in engine.calls if c[0] == "train_step"}
    assert len([c for c in engine.calls if c[0] == "train_step"]) == 8
    assert trained == {(2, 16), (2, 48), (1, 32), (2, 64), (2, 80)} and trained <= traced
    assert (2, 96) not in traced  # beyond the run's 8 steps: not compiled for nothing
    # Validation: the untimed first batch and the 2 timed ones, all traced before the first eval step.
    first_eval = next(i for i, c in enumerate(engine.calls) if c[0] == "eval_step")
    assert {c[1] for c in engine.calls[:first_eval] if c[0] == "trace_eval"} == {(2, 32), (2, 16), (2, 112)}
