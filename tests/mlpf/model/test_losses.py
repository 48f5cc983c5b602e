"""mlpf_losses against values computed by hand on one event of three elements, and the loss weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hepbench.mlpf.config import LossWeights
from hepbench.mlpf.data.format import ElementType, ParticleClass, XCol, YCol
from hepbench.mlpf.model.losses import mlpf_losses

TERMS = ("cls", "charge", "pt", "eta", "sin_phi", "cos_phi", "energy")

# One event: a tower that is a neutral hadron, a track that is no particle, one padding element.
X = np.zeros((1, 3, 12), np.float32)
X[0, :, XCol.TYPE] = [ElementType.TOWER, ElementType.TRACK, ElementType.PADDING]
X[0, :2, XCol.PT] = [3.0, 1.5]

Y = np.zeros((1, 3, 7), np.float32)
Y[0, 0, [YCol.TYPE, YCol.CHARGE, YCol.PT, YCol.ETA, YCol.SIN_PHI, YCol.COS_PHI, YCol.ENERGY]] = [
    ParticleClass.NEUTRAL_HADRON,
    0.0,
    2.0,
    0.5,
    0.6,
    0.8,
    10.0,
]
Y[0, 1, YCol.TYPE] = ParticleClass.NONE  # a track with no particle: only cls and charge count

CLS = np.array(
    [[0.1, 0.1, 0.5, 0.1, 0.1, 0.1], [0.7, 0.1, 0.05, 0.05, 0.05, 0.05], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]], np.float32
)  # padding: anything, it must not count
PREDICTED = {  # per element; the third (padding) far off, so that counting it would show
    "charge": [0.2, -0.5, 9.0],
    "pt": [2.5, 4.0, 9.0],  # error 0.5 <= delta 1: quadratic
    "eta": [0.45, 1.0, 9.0],  # error -0.05 <= delta 0.1: quadratic
    "sin_phi": [0.3, 0.0, 9.0],  # error -0.3 > delta 0.1: linear
    "cos_phi": [0.88, 0.0, 9.0],  # error 0.08 <= delta 0.1: quadratic
    "energy": [13.0, 1.0, 9.0],  # error 3 > delta 1: linear
}
OUTPUTS = {"cls": CLS[None], **{name: np.array(v, np.float32).reshape(1, 3, 1) for name, v in PREDICTED.items()}}


def by_hand() -> dict[str, float]:
    """Each term as the docstring of losses.py states it, over the 2 real elements."""
    n_real = 2.0
    cls = -(np.log(np.float64(CLS[0, 2])) + np.log(np.float64(CLS[1, 0])))  # targets: classes 2 and 0
    charge = (0.2 - 0.0) ** 2 + (-0.5 - 0.0) ** 2  # MSE, every real element
    # Huber, the particle (element 0) only: 0.5 e^2 if |e| <= delta, else delta (|e| - delta / 2).
    pt = 0.5 * 0.5**2
    eta = 0.5 * 0.05**2
    sin_phi = 0.1 * (0.3 - 0.05)
    cos_phi = 0.5 * 0.08**2
    energy = 1.0 * (3.0 - 0.5)
    terms = {
        name: value / n_real
        for name, value in dict(
            cls=cls, charge=charge, pt=pt, eta=eta, sin_phi=sin_phi, cos_phi=cos_phi, energy=energy
        ).items()
    }
    return {**terms, "loss": sum(terms.values())}


def computed(weights: LossWeights | None = None, **kw) -> dict[str, float]:
    return {name: float(value) for name, value in mlpf_losses(X, Y, OUTPUTS, weights, **kw).items()}


def test_every_term_matches_the_hand_computed_value():
    got, expected = computed(), by_hand()
    assert sorted(got) == sorted([*TERMS, "loss"])
    for name in expected:
        assert got[name] == pytest.approx(expected[name], rel=1e-6), name
    assert got["energy"] == pytest.approx(1.25, rel=1e-6)  # (3 - 0.5) / 2 real elements, in words


def test_padding_and_a_given_normalizer():
    # Twice the padding, with predictions on it: the same loss.
    wide = {name: np.concatenate([v, v[:, 2:]], axis=1) for name, v in OUTPUTS.items()}
    got = mlpf_losses(np.concatenate([X, X[:, 2:]], axis=1), np.concatenate([Y, Y[:, 2:]], axis=1), wide)
    assert float(got["loss"]) == pytest.approx(by_hand()["loss"], rel=1e-6)
    # A normalizer of 4 (the data-parallel count) instead of the 2 real elements halves every term.
    halved = computed(normalizer=np.float32(4.0))
    for name, value in by_hand().items():
        assert halved[name] == pytest.approx(value / 2, rel=1e-6), name


def test_an_all_padding_batch_gives_zero_not_nan():
    pad = np.zeros_like(X)
    assert all(value == 0.0 for value in (float(v) for v in mlpf_losses(pad, np.zeros_like(Y), OUTPUTS).values()))


@pytest.mark.parametrize("term", TERMS)
def test_loss_weights_scale_their_own_term_only(term):
    base = computed()
    assert base[term] > 0  # else the checks below could not tell the weight had an effect
    without = computed(dataclasses.replace(LossWeights(), **{term: 0.0}))
    doubled = computed(dataclasses.replace(LossWeights(), **{term: 2.0}))
    assert without["loss"] == pytest.approx(base["loss"] - base[term], rel=1e-6)
    assert doubled["loss"] == pytest.approx(base["loss"] + base[term], rel=1e-6)
    # The terms themselves are reported unweighted.
    for name in TERMS:
        assert without[name] == pytest.approx(base[name], rel=1e-6) and doubled[name] == pytest.approx(
            base[name], rel=1e-6
        )
