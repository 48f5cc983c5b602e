"""Map a proposed configuration to the recorded curve with the nearest hyperparameters (BOHB replay).

Distance: Euclidean in a normalised space where each dimension spans [0, 1] over the search
space's bounds, after the transform under which the study sampled it: log for lr and
weight_decay (loguniform), log2 for bin_size and output_dim (powers of two), linear for dropout
and the numbers of graph layers. Ties go to the lower row, so the mapping is deterministic.
"""

from __future__ import annotations

import numpy as np

from hepbench.core.errors import DataFormatError
from hepbench.core.hyperparameters import CSV_COLUMN_ORDER, by_study_name
from hepbench.hpo.space import SearchSpace

LOG = {"lr": np.log, "weight_decay": np.log, "bin_size": np.log2, "output_dim": np.log2}


def _transform(name: str, values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return LOG[name](values) if name in LOG else values


class NearestCurve:
    """Callable: configuration (study names) -> row of `curves` with the nearest hyperparameters."""

    def __init__(self, space: SearchSpace, curves):
        self.names = [d.name for d in space.dimensions if d.sampler != "constant"]
        columns = [CSV_COLUMN_ORDER.index(by_study_name(n).csv_column) for n in self.names]
        table = curves.hyperparameters[:, columns]
        for j, name in enumerate(self.names):
            if name in LOG and np.any(table[:, j] <= 0):
                raise DataFormatError(
                    f"{curves.source}: column {by_study_name(name).csv_column} must be positive "
                    f"(it is compared on a log scale)"
                )
        self._lo, self._span = [], []
        for name in self.names:
            bounds = _transform(name, space[name].bounds())
            lo, hi = float(bounds.min()), float(bounds.max())
            self._lo.append(lo)
            self._span.append(hi - lo if hi > lo else 1.0)
        self._lo, self._span = np.array(self._lo), np.array(self._span)
        self._table = self._normalise(table)

    def _normalise(self, rows: np.ndarray) -> np.ndarray:
        cols = [_transform(n, rows[:, j]) for j, n in enumerate(self.names)]
        return (np.stack(cols, axis=1) - self._lo) / self._span

    def __call__(self, config: dict) -> int:
        point = self._normalise(np.array([[float(config[n]) for n in self.names]]))
        return int(np.argmin(np.sum((self._table - point) ** 2, axis=1)))
