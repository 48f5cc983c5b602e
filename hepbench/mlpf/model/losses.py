"""The MLPF training loss (docs/training.md), written with keras.ops.

Per element: categorical cross-entropy on the class softmax (target: one-hot of y[..., 0]), MSE on
the charge, Huber (delta 1) on pt and energy, Huber (delta 0.1) on eta, sin phi and cos phi.
Sample weights: cls and charge count every real element; the regression terms count real
elements whose target is a particle (class != 0). Each term is summed over elements and divided
by the number of real elements, so padding changes neither the loss nor its gradient.
"""

from __future__ import annotations

from keras import ops

from hepbench.mlpf.config import LossWeights
from hepbench.mlpf.data.format import NUM_CLASSES, XCol, YCol

REGRESSION = {  # output name → (target column, Huber delta; None = MSE)
    "charge": (YCol.CHARGE, None),
    "pt": (YCol.PT, 1.0),
    "eta": (YCol.ETA, 0.1),
    "sin_phi": (YCol.SIN_PHI, 0.1),
    "cos_phi": (YCol.COS_PHI, 0.1),
    "energy": (YCol.ENERGY, 1.0),
}


def huber(error, delta):
    a = ops.abs(error)
    return ops.where(a <= delta, 0.5 * ops.square(error), delta * (a - 0.5 * delta))


def real_elements(X):
    """Number of real (non-padding) elements in a batch, float32."""
    return ops.sum(ops.cast(ops.not_equal(X[..., XCol.TYPE], 0), "float32"))


def mlpf_losses(X, y, outputs, weights: LossWeights | None = None, normalizer=None) -> dict:
    """Per-term losses and their weighted sum `loss` for one batch (float32 scalars).

    `normalizer` replaces the batch's own real-element count as the divisor. Data-parallel
    training passes the count over all replicas (divided by their number), so that averaging
    the replicas' gradients gives exactly the gradient of the combined batch.
    """
    weights = weights or LossWeights()
    y = ops.cast(y, "float32")
    real = ops.cast(ops.not_equal(X[..., XCol.TYPE], 0), "float32")  # (B, N)
    particle = real * ops.cast(ops.not_equal(y[..., YCol.TYPE], 0), "float32")
    # At least 1 element's worth, so that an all-padding batch gives 0, not NaN.
    n_real = ops.maximum(ops.sum(real), 1.0) if normalizer is None else ops.maximum(normalizer, 1e-6)

    target_cls = ops.one_hot(ops.cast(y[..., YCol.TYPE], "int32"), NUM_CLASSES)
    probs = ops.clip(outputs["cls"], 1e-7, 1.0)
    cce = -ops.sum(target_cls * ops.log(probs), axis=-1)
    losses = {"cls": ops.sum(cce * real) / n_real}
    for name, (column, delta) in REGRESSION.items():
        error = outputs[name][..., 0] - y[..., column]
        per_element = ops.square(error) if delta is None else huber(error, delta)
        weight = real if name == "charge" else particle
        losses[name] = ops.sum(per_element * weight) / n_real
    losses["loss"] = sum(getattr(weights, name) * value for name, value in losses.items())
    return losses
