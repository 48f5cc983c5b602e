"""The numerics check (hepbench.mlpf.train.numerics) with a stand-in engine: the tolerance table, the
comparison, fp16's loss scale halved on an overflow, the report block (schema-valid, no NaN), and the
message that names both sides' values. The real engines: tests/mlpf/train/engine_contract.py; a whole
run refused: tests/mlpf/run/test_numerics_run.py."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from hepbench.core.schema import validate_report
from hepbench.mlpf.config import PRECISIONS, Config, ModelConfig, TrainConfig
from hepbench.mlpf.engines.base import LossAndGradient, unscaled_gradient
from hepbench.mlpf.train.numerics import (
    TOLERANCES,
    NumericsCheck,
    arithmetic,
    check,
    not_run,
    refusal,
    relative_difference,
)

BATCH = {"X": np.zeros((2, 32, 12), np.float32), "y": np.zeros((2, 32, 7), np.float32)}


class Sides:
    """The two sides of the check as an engine gives them, and the order they were asked in."""

    def __init__(self, device=(5.5, 40.0), host=(5.5, 40.0)):
        self.device, self.host, self.calls = LossAndGradient(*device), LossAndGradient(*host), []

    def loss_and_gradient(self, batch):
        self.calls.append(("device", batch["X"].shape))
        return self.device

    def host_loss_and_gradient(self, batch):
        self.calls.append(("host", batch["X"].shape))
        return self.host


def cfg(precision="fp32", fp32_matmul="highest", dropout=0.0) -> Config:
    return Config(model=ModelConfig(dropout=dropout), train=TrainConfig(precision=precision, fp32_matmul=fp32_matmul))


def test_every_precision_has_a_tolerance_finer_arithmetic_a_tighter_one_and_1_percent_fails_in_each():
    assert set(TOLERANCES) == {*PRECISIONS, "tf32"}
    order = ["fp32", "tf32", "fp16", "bf16"]
    for coarse, fine in zip(order[1:], order):
        assert TOLERANCES[fine].loss <= TOLERANCES[coarse].loss
        assert TOLERANCES[fine].grad_norm <= TOLERANCES[coarse].grad_norm
    for kind, t in TOLERANCES.items():  # a loss 1 % off is refused in every arithmetic
        assert t.loss < 0.01 and t.grad_norm < 0.05 and t.basis, kind
    assert TOLERANCES["fp32"].grad_norm < 0.01  # and in float32, a gradient 1 % off


@pytest.mark.parametrize(
    "precision, matmul, kind",
    [("fp32", "highest", "fp32"), ("fp32", "tf32", "tf32"), ("bf16", "tf32", "bf16"), ("fp16", "highest", "fp16")],
)
def test_the_arithmetic_is_the_precision_or_tf32(precision, matmul, kind):
    assert arithmetic(precision, matmul) == kind


def test_relative_difference_is_from_the_host_and_infinite_where_undefined():
    assert relative_difference(101.0, 100.0) == pytest.approx(0.01)
    assert relative_difference(0.0, 0.0) == 0.0
    assert relative_difference(1.0, 0.0) == math.inf
    assert relative_difference(math.nan, 1.0) == math.inf and relative_difference(1.0, math.inf) == math.inf


def test_equal_sides_pass_and_the_host_is_computed_first():
    engine = Sides()
    result = check(engine, BATCH, cfg())
    assert result.status == "passed" and result.passed and result.differences == (0.0, 0.0)
    assert engine.calls == [("host", (2, 32, 12)), ("device", (2, 32, 12))]
    assert (result.events, result.padded_length) == (2, 32)


@pytest.mark.parametrize(
    "precision, matmul", [("fp32", "highest"), ("fp32", "tf32"), ("fp16", "highest"), ("bf16", "highest")]
)
def test_a_loss_1_percent_off_fails_in_every_precision(precision, matmul):
    result = check(Sides(device=(5.5 * 1.01, 40.0)), BATCH, cfg(precision, matmul))
    assert result.status == "failed" and not result.passed
    assert result.differences[0] == pytest.approx(0.01)


@pytest.mark.parametrize("kind", sorted(TOLERANCES))
def test_differences_within_the_tolerance_pass(kind):
    t = TOLERANCES[kind]
    precision, matmul = ("fp32", "tf32") if kind == "tf32" else (kind, "highest")
    result = check(Sides(device=(5.5 * (1 + t.loss / 2), 40.0 * (1 - t.grad_norm / 2))), BATCH, cfg(precision, matmul))
    assert result.status == "passed" and result.tolerance == t


def test_a_gradient_1_percent_off_fails_in_float32():
    assert check(Sides(device=(5.5, 40.4)), BATCH, cfg()).status == "failed"


def test_the_message_names_both_values_the_differences_and_the_tolerances():
    result = check(Sides(device=(5.555, 40.0)), BATCH, cfg())
    message = str(refusal(result))
    assert message.startswith(
        "numerics check failed: the first batch (2 x 32) on the device (fp32): loss 5.555, "
        "gradient norm 40; on the host CPU in float32: loss 5.5, gradient norm 40; "
    )
    t = TOLERANCES["fp32"]
    assert f"relative differences 0.01 (tolerance {t.loss:g}) and 0 (tolerance {t.grad_norm:g})" in message
    assert message.endswith("nothing was timed")
    assert "rank 0's numerics check failed" in str(refusal(None))


EXAMPLE = Path(__file__).parents[1] / "report" / "fixtures" / "ok_2copies.json"  # a valid report


def example_with(block: dict) -> dict:
    report = json.loads(EXAMPLE.read_text())
    report["report"]["numerics"] = block
    return report


def test_the_report_block_is_schema_valid_with_non_finite_values_as_null():
    result = check(Sides(device=(math.nan, math.inf)), BATCH, cfg("bf16"))
    assert result.status == "failed"
    block = result.to_dict()
    assert block["device"] == {"loss": None, "grad_norm": None} and block["host"] == {"loss": 5.5, "grad_norm": 40.0}
    assert block["relative_difference"] == {"loss": None, "grad_norm": None}
    assert block["tolerance"] == {"loss": TOLERANCES["bf16"].loss, "grad_norm": TOLERANCES["bf16"].grad_norm}
    json.dumps(block, allow_nan=False)
    validate_report(example_with(block))
    passed = check(Sides(), BATCH, cfg()).to_dict()
    assert passed["status"] == "passed" and passed["loss_scale"] == 1.0 and passed["reason"] is None
    validate_report(example_with(passed))
    # Every block has the same keys, whatever happened.
    assert set(not_run("fp32")) == set(block) == set(passed)
    validate_report(example_with(not_run("tf32")))


def test_with_dropout_nothing_is_compared_and_the_run_goes_on():
    engine = Sides(device=(99.0, 99.0))
    result = check(engine, BATCH, cfg(dropout=0.1))
    assert result.status == "skipped" and result.passed and engine.calls == []
    assert result.describe() == (
        "numerics check skipped: model.dropout=0.1: the device and the host draw different dropout masks"
    )
    block = result.to_dict()
    assert block["reason"].startswith("model.dropout=0.1") and block["device"] is None
    validate_report(example_with(block))


def test_an_overflowing_fp16_gradient_halves_the_scale_until_it_is_finite():
    scales = []

    def compute(scale):
        scales.append(scale)
        return 5.5, (40.0 if scale <= 2.0**10 else math.inf)

    assert unscaled_gradient(compute, 2.0**15) == LossAndGradient(5.5, 40.0, 2.0**10)
    assert scales == [2.0**15, 2.0**14, 2.0**13, 2.0**12, 2.0**11, 2.0**10]
    # No scale (not fp16): one computation; a gradient that never becomes finite ends at scale 1.
    assert unscaled_gradient(lambda s: (1.0, math.inf), 1.0) == LossAndGradient(1.0, math.inf, 1.0)
    assert unscaled_gradient(lambda s: (1.0, math.nan), 4.0).loss_scale == 1.0


def test_the_record_is_a_frozen_dataclass():
    result = NumericsCheck("fp32", 2, 32, LossAndGradient(1.0, 2.0), LossAndGradient(1.0, 2.0), 0.5)
    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign"):
        result.seconds = 1.0
