"""The numerics check before the clock: a score only for correct arithmetic (docs/training.md,
"Numerics check").

Before any step changes the weights, copy 0 (rank 0 of a job) computes the first warm-up batch's
loss and the global L2 norm of its gradient twice from the same initial weights: on the device
that runs, in the run's precision, through the train step's own forward pass and loss
(Engine.loss_and_gradient), and on the host CPU in float32 with the same framework
(Engine.host_loss_and_gradient). Both must lie within the arithmetic's tolerance of the host's,
relative (TOLERANCES); otherwise the run fails before timing (NumericsMismatch) naming both values.
The report's `numerics` block is `NumericsCheck.to_dict()` (or `not_run()`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from hepbench.core.errors import HepbenchError
from hepbench.mlpf.config import Config
from hepbench.mlpf.engines.base import Engine, LossAndGradient


class NumericsMismatch(HepbenchError):
    """The device's loss or gradient norm of the first batch is not the host's: the run is not timed."""


@dataclass(frozen=True)
class Tolerance:
    """The largest relative difference, device against host, that an arithmetic passes with; `basis`
    says where it comes from (the reasoning and sources: docs/training.md, "Numerics check")."""

    loss: float
    grad_norm: float
    basis: str


# Unit roundoffs u = 2^-p (p significant bits): bfloat16 keeps 8, float16 and TF32's matmul inputs 11.
_BF16, _HALF = 2.0**-8, 2.0**-11

# The device's arithmetic (`arithmetic`) → its tolerance: the one place these numbers live. The
# reasoning, and what was measured: docs/training.md, "Tolerances".
TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(
        5e-4,
        1e-3,
        "float32 on both sides: only the order of the sums differs, which can move an "
        "element to another LSH bin; about 10 times the largest change that made",
    ),
    "tf32": Tolerance(
        2 * _HALF,
        8 * _HALF,
        "TF32 matmul inputs keep 11 significant bits (unit roundoff u = 2^-11), "
        "sums in float32: 2u in the loss, 8u in the gradient norm, as fp16",
    ),
    "fp16": Tolerance(
        2 * _HALF,
        8 * _HALF,
        "float16 keeps 11 significant bits (u = 2^-11), weights and loss float32: "
        "2u in the loss, 8u in the gradient norm",
    ),
    "bf16": Tolerance(
        2 * _BF16,
        8 * _BF16,
        "bfloat16 keeps 8 significant bits (u = 2^-8), weights and loss float32: "
        "2u in the loss, 8u in the gradient norm",
    ),
}


def arithmetic(precision: str, fp32_matmul: str) -> str:
    """The arithmetic the device runs, a key of TOLERANCES: train.precision, or tf32 where float32
    matmuls were asked to run as TF32 (train.fp32_matmul)."""
    return "tf32" if precision == "fp32" and fp32_matmul == "tf32" else precision


def relative_difference(value: float, reference: float) -> float:
    """|value - reference| / |reference|; inf where either is not finite, or where the reference is
    0 and the value is not."""
    if not (math.isfinite(value) and math.isfinite(reference)):
        return math.inf
    if reference == 0:
        return 0.0 if value == 0 else math.inf
    return abs(value - reference) / abs(reference)


def _number(x: float) -> float | None:
    return x if math.isfinite(x) else None  # JSON has no NaN or infinity


@dataclass(frozen=True)
class NumericsCheck:
    """One check: the batch compared, both sides' values (None where nothing was compared, and why)."""

    arithmetic: str
    events: int
    padded_length: int
    device: LossAndGradient | None = None
    host: LossAndGradient | None = None
    seconds: float | None = None
    skipped: str | None = None  # why nothing was compared

    @property
    def tolerance(self) -> Tolerance:
        return TOLERANCES[self.arithmetic]

    @property
    def differences(self) -> tuple[float, float] | None:
        """(loss, gradient norm): the device's relative difference from the host."""
        if self.device is None or self.host is None:
            return None
        return (
            relative_difference(self.device.loss, self.host.loss),
            relative_difference(self.device.grad_norm, self.host.grad_norm),
        )

    @property
    def status(self) -> str:
        if self.skipped is not None:
            return "skipped"
        loss, grad = self.differences
        return "passed" if loss <= self.tolerance.loss and grad <= self.tolerance.grad_norm else "failed"

    @property
    def passed(self) -> bool:
        """Whether the run may go on (a skipped check lets it)."""
        return self.status != "failed"

    def describe(self) -> str:
        """One line: both sides' values, their differences and the tolerances."""
        if self.skipped is not None:
            return f"numerics check skipped: {self.skipped}"
        d, h, t = self.device, self.host, self.tolerance
        loss, grad = self.differences
        return (
            f"numerics check {self.status}: the first batch ({self.events} x {self.padded_length}) on the device "
            f"({self.arithmetic}): loss {d.loss:.9g}, gradient norm {d.grad_norm:.9g}; on the host CPU in "
            f"float32: loss {h.loss:.9g}, gradient norm {h.grad_norm:.9g}; relative differences {loss:.2g} "
            f"(tolerance {t.loss:g}) and {grad:.2g} (tolerance {t.grad_norm:g})"
        )

    def to_dict(self) -> dict:
        """The report's `numerics` block."""
        out = not_run(self.arithmetic, self.skipped)
        out.update(status=self.status, events=self.events, padded_length=self.padded_length, seconds=self.seconds)
        if self.device is not None and self.host is not None:
            loss, grad = self.differences
            out.update(
                device={"loss": _number(self.device.loss), "grad_norm": _number(self.device.grad_norm)},
                host={"loss": _number(self.host.loss), "grad_norm": _number(self.host.grad_norm)},
                loss_scale=self.device.loss_scale,
                relative_difference={"loss": _number(loss), "grad_norm": _number(grad)},
            )
        return out


def not_run(kind: str, reason: str | None = "the run ended before the check") -> dict:
    """The report's `numerics` block of a run that compared nothing (status "not run"), every key
    there, the tolerance it would have been held to included."""
    t = TOLERANCES[kind]
    return {
        "status": "not run",
        "reason": reason,
        "arithmetic": kind,
        "events": None,
        "padded_length": None,
        "device": None,
        "host": None,
        "loss_scale": None,
        "relative_difference": None,
        "tolerance": {"loss": t.loss, "grad_norm": t.grad_norm},
        "tolerance_basis": t.basis,
        "seconds": None,
    }


def check(
    engine: Engine,
    batch: dict,
    cfg: Config,
    clock: Callable[[], float] = time.perf_counter,
    heartbeat: Callable[[], None] = lambda: None,
) -> NumericsCheck:
    """Compare the device's loss and gradient norm of `batch` (a pipeline batch) with the host's, the
    engine built and nothing trained yet. Skipped with model.dropout > 0: each device draws its own
    dropout masks, so the two sides would not compute the same function."""
    kind = arithmetic(cfg.train.precision, cfg.train.fp32_matmul)
    events, length = (int(n) for n in batch["X"].shape[:2])
    if cfg.model.dropout > 0:
        return NumericsCheck(
            kind,
            events,
            length,
            skipped=f"model.dropout={cfg.model.dropout:g}: the device and the host draw different dropout masks",
        )
    start = clock()
    host = engine.host_loss_and_gradient(batch)
    heartbeat()
    device = engine.loss_and_gradient(batch)
    return NumericsCheck(kind, events, length, device, host, clock() - start)


def refusal(result: NumericsCheck | None) -> NumericsMismatch:
    """The error that stops the run: this process's failed check, or (None) rank 0's, on another rank."""
    if result is None:
        return NumericsMismatch(
            "rank 0's numerics check failed: the device's loss or gradient norm of the first "
            "batch is not the host's (rank 0's entry gives both); nothing was timed"
        )
    return NumericsMismatch(f"{result.describe()}: the device computes wrongly, nothing was timed")
