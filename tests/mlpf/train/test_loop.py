"""The training loop with a fake engine and a fake clock: the order of its phases, tracing, warming
and warm-up outside the windows, windows that tile the timed steps, every shape of the windows and
of validation traced and run before its clock starts, validation after, failures that keep what was
measured; and with the real TensorFlow engine, a warmed run that trains exactly as an unwarmed one."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest

from hepbench.mlpf.config import BenchConfig, Config, DataConfig, ModelConfig, TrainConfig
from hepbench.mlpf.engines.base import Engine, LossAndGradient, Part, StepResult
from hepbench.mlpf.engines.ceiling import Ceiling
from hepbench.mlpf.model.flops import training_flops
from hepbench.mlpf.train import loop
from hepbench.mlpf.train.loop import (
    DataSource,
    Hooks,
    Measurement,
    batch_shapes,
    benchmark,
    describe,
    mean_loss,
    warm_train,
    zero_batch,
)
from hepbench.mlpf.train.numerics import NumericsMismatch
from hepbench.mlpf.train.throughput import NonFiniteLoss, Plan, TrainingTimer

TRACE_SECONDS, WARMUP_SECONDS, PADDING_SECONDS, EVAL_SECONDS = 100.0, 30.0, 7.0, 0.5
LENGTH = 32  # padded length of the plain fake batches


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def shape(batch) -> tuple[int, int]:
    return tuple(int(d) for d in batch["X"].shape[:2])


def padding(batch) -> bool:
    return not batch["n_elements"].any()


class FakeEngine(Engine):
    """Records its calls with the shapes of their batches. A step on an all-padding batch advances the
    clock by PADDING_SECONDS, the first `warmup` other steps by WARMUP_SECONDS, later ones by the next
    of `durations`."""

    def __init__(self, clock: FakeClock, warmup: int, durations, losses=(), eval_loss=2.0, replicas=1):
        self.clock, self.warmup, self.replicas = clock, warmup, replicas
        self.durations, self.losses, self.eval_loss = iter(durations), iter(losses), eval_loss
        self.calls: list = []
        self.train_steps = 0
        self.weights = np.zeros(1)  # what a step changes and state() holds
        self.host_values, self.device_values = (2.5, 7.0), (2.5, 7.0)  # (loss, gradient norm) of the numerics check
        self.rank0_flag: bool | None = None  # from_rank0's answer where set (another rank's verdict)

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
        self.calls.append(("train_batches", getattr(dataset, "name", "padding")))
        return iter(dataset)

    def eval_batches(self, dataset):
        self.calls.append(("eval_batches", getattr(dataset, "name", "padding")))
        return iter(dataset)

    def trace_train(self, batch):
        self.calls.append(("trace_train", shape(batch)))
        self.clock.now += TRACE_SECONDS

    def trace_eval(self, batch):
        self.calls.append(("trace_eval", shape(batch)))

    def train_step(self, batch):
        self.calls.append(("train_step", shape(batch), "padding" if padding(batch) else "data"))
        self.weights = self.weights + 1
        if padding(batch):
            self.clock.now += PADDING_SECONDS
        else:
            self.train_steps += 1
            self.clock.now += WARMUP_SECONDS if self.train_steps <= self.warmup else next(self.durations)
        # The replicas' parts: 2 events each, 20 and 30 real elements.
        parts = tuple(Part(events=2, padded_length=LENGTH, real_elements=20 + 10 * r) for r in range(self.replicas))
        return StepResult(next(self.losses, 1.0), parts)

    def eval_step(self, batch):
        self.calls.append(("eval_step", shape(batch), "padding" if padding(batch) else "data"))
        self.clock.now += EVAL_SECONDS
        return StepResult(self.eval_loss, (Part(events=2, padded_length=LENGTH, real_elements=25),))

    def loss_and_gradient(self, batch):
        self.calls.append(("loss_and_gradient", shape(batch)))
        return LossAndGradient(*self.device_values)

    def host_loss_and_gradient(self, batch):
        self.calls.append(("host_loss_and_gradient", shape(batch)))
        return LossAndGradient(*self.host_values)

    def from_rank0(self, flag):
        self.calls.append(("from_rank0", flag))
        return flag if self.rank0_flag is None else self.rank0_flag

    def peak_device_memory(self):
        return None

    def state(self):
        return [self.weights.copy()]

    def load_state(self, arrays):
        self.calls.append("load_state")
        (self.weights,) = arrays


class FakeBatches:
    """Deterministic pipeline batches of these (events, length) shapes, cycled: every fresh
    iteration yields the same ones, as the pipeline does for a seed."""

    def __init__(self, name: str, shapes):
        self.name, self.cycle = name, list(shapes)

    def __iter__(self):
        return (
            {
                "X": np.zeros((b, n, 12), np.float32),
                "y": np.zeros((b, n, 7), np.float32),
                "n_elements": np.full(b, n // 2, np.int32),
            }
            for b, n in itertools.cycle(self.cycle)
        )


class FakeSource:
    def __init__(self, train=((2, LENGTH),), test=((2, LENGTH),)):
        self.train, self.test = train, test

    def training(self, cfg, replicas=1):
        return FakeBatches(f"train x{replicas}", self.train)

    def validation(self, cfg):
        return FakeBatches("test", self.test)


# No matmul ceiling: the fake engine has no framework (test_a_cpu_copy_measures_its_ceiling_before_tracing fakes one).
CFG = Config(model=ModelConfig(bin_size=16), bench=BenchConfig(windows=2, warmup_steps=2, ceiling_seconds=0))


def run(engine, clock, plan, validation_events=4, source=None, check_numerics=True, **hooks):
    measured = Measurement(TrainingTimer(plan, clock=clock, wall_clock=clock))
    return measured, benchmark(
        engine, CFG, source or FakeSource(), measured, validation_events, Hooks(**hooks), check_numerics=check_numerics
    )


def test_phases_run_in_order_and_only_the_windows_are_timed():
    clock, said, beats = FakeClock(), [], []
    engine = FakeEngine(clock, warmup=2, durations=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], replicas=2)
    measured, result = run(
        engine,
        clock,
        Plan(warmup_steps=2, windows=2, steps_per_window=3),
        say=said.append,
        heartbeat=lambda: beats.append(clock.now),
    )
    assert result is measured
    # One shape: traced on the first batch, run first by the warm-up steps (no all-padding step).
    steps = [("train_step", (2, LENGTH), "data")] * 8
    evals = [
        ("eval_step", (2, LENGTH), "padding"),
        ("eval_step", (2, LENGTH), "data"),
        ("eval_step", (2, LENGTH), "data"),
    ]
    # The numerics check after tracing, before any step: replica 0's share of the first batch.
    check = [("host_loss_and_gradient", (2, LENGTH)), ("loss_and_gradient", (2, LENGTH)), ("from_rank0", True)]
    assert engine.calls == [
        "configure",
        "devices",
        "build",
        ("train_batches", "train x2"),
        ("trace_train", (2, LENGTH)),
        *check,
        *steps,
        ("eval_batches", "test"),
        ("eval_batches", "padding"),
        ("trace_eval", (2, LENGTH)),
        *evals,
    ]
    # Tracing and the warm-up are measured apart, never inside a window.
    assert measured.compile_seconds == TRACE_SECONDS
    assert measured.warmed_shapes == [(2, LENGTH)] and measured.warm_seconds == 0.0
    assert measured.timer.warmup.steps == 2 and measured.timer.warmup.seconds == 2 * WARMUP_SECONDS
    first, second = measured.timer.windows
    assert (first.seconds, second.seconds) == (6.0, 15.0)  # the windows tile the timed steps exactly
    assert first.step_seconds == first.seconds and (first.events, first.steps) == (12, 3)
    assert first.real_elements == 3 * 50 and first.padded_elements == 3 * 2 * 2 * LENGTH
    assert first.flops == 3 * 4 * training_flops(CFG.model, LENGTH)
    # Validation after the last window: the shape run once on padding, then ceil(4 / batch 2) timed batches.
    v = measured.validation
    assert (v["events"], v["steps"], v["seconds"], v["loss"]) == (4, 2, 2 * EVAL_SECONDS, 2.0)
    assert v["events_per_second"] == pytest.approx(4.0)
    assert (measured.devices, measured.software, measured.parameters) == (
        [{"type": "cpu", "name": "Fake CPU"}] * 2,
        {"fake": "1.0"},
        (10, 2),
    )
    # A heartbeat after tracing, after each side of the numerics check and after every step.
    assert beats[0] == TRACE_SECONDS and len(beats) == 1 + 2 + 8
    assert said[0] == "2 x Fake CPU: tracing the training step ..."
    assert said[1] == "traced 1 batch shape(s) in 100.0 s; 2 warm-up step(s), then 2 windows of 3 steps"
    assert said[2].startswith(f"numerics check passed: the first batch (2 x {LENGTH}) on the device (fp32): loss 2.5,")
    assert measured.numerics.status == "passed" and measured.numerics.seconds == 0.0
    assert said[3] == "warmed 1 batch shape(s) (length 32): 1 by the warm-up steps"
    assert said[4].startswith("window 1/2: 12 events in 6.00 s = 2 events/s  (mean step 2.000 s")
    assert said[-1].startswith("validation: 4 events in 1.00 s")
    assert said[-1].endswith("1 shape(s) warmed: length 32)")


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_a_cpu_copy_measures_its_ceiling_before_tracing_outside_every_window(device, monkeypatch):
    class Engine(FakeEngine):
        def devices(self):
            self.calls.append("devices")
            return [{"type": device, "name": "Fake"}]

    def measure(framework, precision, budget):
        engine.calls.append(("ceiling", framework, precision, budget))
        clock.now += 1000.0
        return Ceiling(framework, precision, 256, 3, 1000.0, 2e9)

    monkeypatch.setattr(loop, "measure", measure)
    clock, said = FakeClock(), []
    engine = Engine(clock, warmup=0, durations=[1.0, 2.0])
    cfg = dataclasses.replace(
        CFG, train=TrainConfig(precision="bf16"), bench=dataclasses.replace(CFG.bench, ceiling_seconds=0.5)
    )
    measured = Measurement(TrainingTimer(Plan(0, 1, 2), clock=clock, wall_clock=clock))
    benchmark(engine, cfg, FakeSource(), measured, 0, Hooks(say=said.append))
    ceiling = [("ceiling", "fake", "bf16", 0.5)] if device == "cpu" else []
    # With the engine's framework configured and the model built, before the data and the tracing.
    expected = ["configure", "devices", "build", *ceiling, ("train_batches", "train x1")]
    assert engine.calls[: len(expected)] == expected
    assert measured.timer.windows[0].seconds == 3.0  # its time is in no window
    if device == "cpu":
        assert measured.ceiling.flops_per_second == 2e9
        assert said[0] == "matmul ceiling 2.0 GFLOP/s (bf16, 256^2, fastest of 3, 1000.0 s)"
    else:
        assert measured.ceiling is None and not said[0].startswith("matmul ceiling")


@pytest.mark.parametrize("fault", [(1.01, 1.0), (1.0, 1.01)])  # the loss, or the gradient, 1 % off
def test_a_device_that_computes_wrongly_is_refused_before_any_step(fault):
    clock, said = FakeClock(), []
    engine = FakeEngine(clock, warmup=1, durations=[1.0] * 4)
    engine.device_values = (2.5 * fault[0], 7.0 * fault[1])
    measured = Measurement(TrainingTimer(Plan(1, 2, 2), clock=clock, wall_clock=clock))
    with pytest.raises(NumericsMismatch, match="numerics check failed") as caught:
        benchmark(engine, CFG, FakeSource(), measured, 2, Hooks(say=said.append))
    # Both sides' values named; nothing stepped, nothing timed.
    assert f"loss {2.5 * fault[0]:.9g}, gradient norm {7.0 * fault[1]:.9g}" in str(caught.value)
    assert "on the host CPU in float32: loss 2.5, gradient norm 7" in str(caught.value)
    assert measured.numerics.status == "failed" and ("from_rank0", False) in engine.calls
    assert not any(c[0] == "train_step" for c in engine.calls) and measured.timer.windows == []
    assert measured.timer.warmup.steps == 0


def test_only_the_checking_process_computes_and_another_rank_follows_rank_0():
    clock = FakeClock()
    engine = FakeEngine(clock, warmup=0, durations=[1.0] * 2)
    measured, _ = run(engine, clock, Plan(0, 1, 2), validation_events=0, check_numerics=False)
    assert measured.numerics is None and ("from_rank0", True) in engine.calls
    assert not any(c[0] in ("loss_and_gradient", "host_loss_and_gradient") for c in engine.calls)
    # Rank 0 found the device wrong: this rank stops too, before any step.
    engine = FakeEngine(clock, warmup=0, durations=[1.0] * 2)
    engine.rank0_flag = False
    with pytest.raises(NumericsMismatch, match="rank 0's numerics check failed"):
        run(engine, clock, Plan(0, 1, 2), validation_events=0, check_numerics=False)
    assert not any(c[0] == "train_step" for c in engine.calls)


def test_the_check_takes_replica_0s_share_of_the_first_batch_and_is_skipped_with_dropout():
    clock = FakeClock()
    engine = FakeEngine(clock, warmup=0, durations=[1.0] * 2, replicas=2)
    run(engine, clock, Plan(0, 1, 2), validation_events=0, source=FakeSource(train=((4, 48), (4, 16))))
    assert ("loss_and_gradient", (2, 48)) in engine.calls  # batch_size 2 of the first batch's 4 events
    engine = FakeEngine(clock, warmup=0, durations=[1.0] * 2)
    cfg = dataclasses.replace(CFG, model=dataclasses.replace(CFG.model, dropout=0.1))
    measured = Measurement(TrainingTimer(Plan(0, 1, 2), clock=clock, wall_clock=clock))
    benchmark(engine, cfg, FakeSource(), measured, 0)
    assert measured.numerics.status == "skipped" and "dropout" in measured.numerics.skipped
    assert not any(c[0] in ("loss_and_gradient", "host_loss_and_gradient") for c in engine.calls)


def test_no_validation_events_skips_validation():
    clock = FakeClock()
    engine = FakeEngine(clock, warmup=0, durations=[1.0] * 2)
    measured, _ = run(engine, clock, Plan(0, 1, 2), validation_events=0)
    assert measured.validation is None and not any(c[0] in ("trace_eval", "eval_step") for c in engine.calls)


def test_a_non_finite_training_loss_stops_the_loop_and_keeps_the_completed_windows():
    clock = FakeClock()
    engine = FakeEngine(clock, warmup=1, durations=[1.0] * 9, losses=[3.0, 2.0, 1.0, math.nan])
    measured = Measurement(TrainingTimer(Plan(1, 3, 2), clock=clock, wall_clock=clock))
    with pytest.raises(NonFiniteLoss, match=r"window 2, step 1"):
        benchmark(engine, CFG, FakeSource(), measured, 4)
    assert len(measured.timer.windows) == 1 and measured.compile_seconds == TRACE_SECONDS
    assert measured.validation is None and not any(c[0] == "eval_step" for c in engine.calls)


def test_a_non_finite_validation_loss_fails_the_run_without_writing_nan():
    clock = FakeClock()
    engine = FakeEngine(clock, warmup=0, durations=[1.0] * 2, eval_loss=math.inf)
    measured = Measurement(TrainingTimer(Plan(0, 1, 2), clock=clock, wall_clock=clock))
    with pytest.raises(NonFiniteLoss, match="validation loss is inf; the run is invalid"):
        benchmark(engine, CFG, FakeSource(), measured, 2)
    assert measured.validation["loss"] is None and len(measured.timer.windows) == 1


def test_mean_loss_weights_by_events_and_names_where_a_loss_diverged():
    results = {
        "a": StepResult(1.0, (Part(1, 16, 3),)),
        "b": StepResult(4.0, (Part(3, 16, 9),)),
        "nan": StepResult(math.nan, (Part(2, 16, 1),)),
    }
    assert mean_loss(results.get, ["a", "b"]) == (pytest.approx(13 / 4), 4)
    assert mean_loss(results.get, []) == (None, 0)
    with pytest.raises(NonFiniteLoss, match="loss became nan at epoch 3"):
        mean_loss(results.get, ["a", "nan", "b"], where="epoch 3")


# Padded lengths and sizes that vary from batch to batch, as bucketing and the last batch of a pass make them.
SHAPED = FakeSource(
    train=[(2, 16), (2, 48), (2, 16), (1, 32), (2, 64), (2, 48), (2, 80), (2, 16), (2, 96)],
    test=[(2, 32), (2, 16), (2, 112)],
)


def split_at_first_window(engine: FakeEngine, warmup_steps: int) -> tuple[list, list]:
    """(the calls before the first timed step, the timed data steps' shapes)."""
    data = [i for i, c in enumerate(engine.calls) if c[0] == "train_step" and c[2] == "data"]
    return engine.calls[: data[warmup_steps]], [engine.calls[i][1] for i in data[warmup_steps:]]


def test_every_shape_the_windows_see_is_traced_and_run_before_the_clock_starts():
    clock, said = FakeClock(), []
    engine = FakeEngine(clock, warmup=2, durations=[1.0] * 6)
    plan = Plan(warmup_steps=2, windows=2, steps_per_window=3)
    measured, _ = run(engine, clock, plan, source=SHAPED, say=said.append)
    before, timed = split_at_first_window(engine, plan.warmup_steps)
    assert timed == [(2, 16), (1, 32), (2, 64), (2, 48), (2, 80), (2, 16)]
    traced = {c[1] for c in before if c[0] == "trace_train"}
    executed = {c[1] for c in before if c[0] == "train_step"}
    warmed = set(measured.warmed_shapes)
    assert set(timed) <= warmed and warmed <= traced and warmed <= executed
    assert measured.warmed_shapes == [(2, 16), (2, 48), (1, 32), (2, 64), (2, 80)]  # in order of appearance
    assert (2, 96) not in traced  # beyond the run's 8 steps: not compiled for nothing
    # The warm-up steps run (2, 16) and (2, 48); the other shapes run once on padding, and the
    # state they changed is put back before the warm-up.
    padding = [c[1] for c in before if c[0] == "train_step" and c[2] == "padding"]
    assert padding == [(1, 32), (2, 64), (2, 80)]
    assert measured.warm_seconds == 3 * PADDING_SECONDS and measured.timer.warmup.seconds == 2 * WARMUP_SECONDS
    assert before.index("load_state") > max(
        i for i, c in enumerate(before) if c[0] == "train_step" and c[2] == "padding"
    )
    assert [c[2] for c in before if c[0] == "train_step"][-2:] == ["data", "data"]  # the warm-up, after the warming
    assert engine.weights[0] == plan.warmup_steps + 6  # the padding steps left nothing behind
    assert said[3] == (
        "warmed 5 batch shape(s) (2 x 16, 2 x 48, 1 x 32, 2 x 64, 2 x 80): "
        "3 on all-padding steps in 21.0 s, 2 by the warm-up steps"
    )
    # Validation: its 2 timed batches' shapes traced and run on padding before its first timed step.
    first_eval = next(i for i, c in enumerate(engine.calls) if c[0] == "eval_step" and c[2] == "data")
    assert {c[1] for c in engine.calls[:first_eval] if c[0] == "trace_eval"} == {(2, 32), (2, 16)}
    assert [c[1] for c in engine.calls[:first_eval] if c[0] == "eval_step"] == [(2, 32), (2, 16)]
    assert [c[1] for c in engine.calls[first_eval:] if c[0] == "eval_step"] == [(2, 32), (2, 16)]


def test_without_warm_up_steps_every_shape_runs_on_padding_first():
    clock = FakeClock()
    engine = FakeEngine(clock, warmup=0, durations=[1.0] * 4)
    plan = Plan(warmup_steps=0, windows=2, steps_per_window=2)
    said = []
    measured, _ = run(engine, clock, plan, source=SHAPED, say=said.append)
    assert said[3] == "warmed 3 batch shape(s) (2 x 16, 2 x 48, 1 x 32): 3 on all-padding steps in 21.0 s"
    before, timed = split_at_first_window(engine, 0)
    assert [c[1] for c in before if c[0] == "train_step"] == measured.warmed_shapes == [(2, 16), (2, 48), (1, 32)]
    assert set(timed) == set(measured.warmed_shapes)
    assert measured.timer.windows[0].seconds == 2.0  # no padding step inside a window


def test_batch_shapes_asks_a_pipeline_that_knows_them_and_reads_nothing():
    class Known:
        def shapes(self):
            return itertools.cycle([(2, 640), (1, 1280)])

        def __iter__(self):
            raise AssertionError("read")

    assert batch_shapes(Known(), 3) == [(2, 640), (1, 1280), (2, 640)]
    assert batch_shapes(FakeBatches("x", [(2, 16), (3, 32)]), 3) == [(2, 16), (3, 32), (2, 16)]
    assert describe([(2, 3840), (2, 4480)]) == "lengths 3840, 4480" and describe([(1, 640)]) == "length 640"


# -- the real pipeline and the real TensorFlow engine -----------------------------------------------


class RecordingEngine(FakeEngine):
    """A FakeEngine whose train steps report the batch's real shape and events."""

    def train_step(self, batch):
        super().train_step(batch)
        return StepResult(
            1.0,
            (
                Part(
                    events=shape(batch)[0], padded_length=shape(batch)[1], real_elements=int(batch["n_elements"].sum())
                ),
            ),
        )


@pytest.mark.parametrize("shuffle, lookahead", [(0, 0), (5, 0), (0, 8), (5, 1)])
def test_the_warmed_shapes_cover_every_batch_of_the_real_pipeline(built, shuffle, lookahead):
    # 12 train events of 5 to 60 elements, bins of 16: several padded lengths; the shard of worker 0
    # of 5 holds 3 events, so every pass ends in a batch of 1. Shuffled and bucketed too: the
    # shapes the loop plans (Batches.shapes) are those the pipeline then yields.
    data = DataConfig(max_elements=64, shuffle_buffer=shuffle, bucket_lookahead=lookahead)
    cfg = Config(
        model=ModelConfig(bin_size=16), data=data, bench=BenchConfig(windows=3, warmup_steps=1, ceiling_seconds=0)
    )
    clock = FakeClock()
    engine = RecordingEngine(clock, warmup=1, durations=[1.0] * 100)
    plan = Plan(warmup_steps=1, windows=3, steps_per_window=4)
    measured = Measurement(TrainingTimer(plan, clock=clock, wall_clock=clock))
    benchmark(engine, cfg, DataSource(built, num_workers=5, worker_index=0), measured, 4)
    _, timed = split_at_first_window(engine, plan.warmup_steps)
    assert len(timed) == 12 and len(set(timed)) > 1 and any(events == 1 for events, _ in timed)
    assert set(timed) <= set(measured.warmed_shapes)


TINY = ModelConfig(
    bin_size=16,
    distance_dim=8,
    ffn_dist_hidden_dim=8,
    output_dim=16,
    decoder_hidden_dim=16,
    num_graph_layers_id=1,
    num_graph_layers_reg=1,
    dropout=0.3,
)
# A large rate that halves every step: a warming step that counted would change every later update.
TRAIN = TrainConfig(learning_rate=3e-3, lr_decay_steps=1, lr_decay_rate=0.5, seed=5)


@pytest.mark.slow  # a real engine: tracing its step takes tens of seconds on 2 cores
def test_a_warmed_run_trains_exactly_as_an_unwarmed_one(built):
    from hepbench.mlpf.engines.tensorflow import TensorFlowEngine  # the test process's backend

    data = DataSource(built).training(Config(data=DataConfig(max_elements=64)), 1)
    batches = list(itertools.islice(iter(data), 4))
    engine = TensorFlowEngine()  # one engine, traced once (tens of seconds); each run from the initial state
    engine.build(TINY, TRAIN)
    initial = engine.state()
    unwarmed = [engine.train_step(b).loss for b in batches]
    assert len(set(unwarmed)) == len(unwarmed)  # the steps trained: each loss differs
    engine.load_state(initial)
    warm_train(engine, [(2, 16), (1, 48), (2, 64)])
    assert int(engine.optimizer.iterations.numpy()) == 0
    # A wrong learning rate (the iteration count) or other dropout masks would differ by far more;
    # state that load_state missed would differ from the unwarmed run's start as well.
    np.testing.assert_allclose([engine.train_step(b).loss for b in batches], unwarmed, rtol=1e-6)
    assert engine.train_step(zero_batch(2, 32)).loss == 0.0  # all padding: a finite loss


def test_warming_no_shape_changes_nothing():
    clock = FakeClock()
    engine = FakeEngine(clock, warmup=0, durations=[])
    warm_train(engine, [])
    assert engine.calls == [] and clock.now == 0.0
