"""Padded batches of random events, as the data pipeline hands them to the model."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def events_batch(random_event):
    """events_batch(n_real, length, seed=0): (X, y) of len(n_real) events, event i with n_real[i]
    real elements followed by zero padding up to `length`."""

    def batch(n_real: list[int], length: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        X = np.zeros((len(n_real), length, 12), np.float32)
        y = np.zeros((len(n_real), length, 7), np.float32)
        for i, n in enumerate(n_real):
            e = random_event(rng, n)
            X[i, :n], y[i, :n] = e.X, e.ygen
        return X, y

    return batch
