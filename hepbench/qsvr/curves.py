"""The MLPF learning-curve table: 7 hyperparameters and the loss after each epoch, one row per
training run (the study's `delphes_trainings_processed.csv`, shipped in hepbench/qsvr/data/).

`load_curves` checks a CSV strictly (columns, numbers, NaN, enough rows) and names the file and
the problem; `study_features` gives the study's X (every second loss of epochs 0..24: 13
features) and y (`loss_98`) after dropping the one outlier run.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from hepbench.core.errors import DataFormatError, UsageError
from hepbench.core.hyperparameters import CSV_COLUMN_ORDER

PACKAGED_NAME = "delphes_trainings_processed.csv"
PACKAGED_SHA256 = "83c7ae6933f20379d8edbb733dbc5a5a463009c99ecb3d6d906459c4c14d7fa6"
MIN_ROWS = 10  # fewer curves cannot give a training set and a test set worth an R²
OUTLIER_LOSS = 550.0  # the study dropped the one run whose loss_99 is 597.3 (all others: < 538)

# The study's features and target (docs/hpo.md).
STUDY_EPOCHS = tuple(range(0, 25, 2))  # loss_0, loss_2, ..., loss_24: 13 features
STUDY_TARGET = 98  # loss_98


@dataclass(frozen=True)
class Curves:
    """One row per training run: hyperparameters (n, 7) in CSV_COLUMN_ORDER, losses (n, epochs)."""

    hyperparameters: np.ndarray
    losses: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.losses)

    @property
    def epochs(self) -> int:
        return self.losses.shape[1]

    def subset(self, rows) -> Curves:
        return Curves(self.hyperparameters[rows], self.losses[rows], self.source)


def packaged_csv() -> Path:
    return Path(str(resources.files("hepbench.qsvr") / "data" / PACKAGED_NAME))


def _number(text: str, path: Path, line: int, column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataFormatError(f"{path}: line {line}, column {column}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise DataFormatError(f"{path}: line {line}, column {column}: {text} (every value must be a finite number)")
    return value


def load_curves(path: str | Path | None = None, min_rows: int = MIN_ROWS) -> Curves:
    """Read and check a learning-curve CSV (default: the packaged study table)."""
    path = Path(path) if path is not None else packaged_csv()
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UsageError(f"{path}: cannot read the learning-curve table: {e.strerror or e}") from None
    if path == packaged_csv() and hashlib.sha256(raw).hexdigest() != PACKAGED_SHA256:
        raise DataFormatError(
            f"{path}: the packaged table has been changed (sha256 differs from {PACKAGED_SHA256[:12]}…)"
        )
    rows = list(csv.reader(raw.decode("utf-8", errors="replace").splitlines()))
    if not rows:
        raise DataFormatError(f"{path}: empty file; expected a header row and one row per training run")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in CSV_COLUMN_ORDER if c not in header]
    loss_columns = []
    while f"loss_{len(loss_columns)}" in header:
        loss_columns.append(f"loss_{len(loss_columns)}")
    if not loss_columns:
        missing.append("loss_0")
    if missing:
        raise DataFormatError(
            f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(CSV_COLUMN_ORDER)}, "
            "loss_0, loss_1, ..."
        )
    index = {name: header.index(name) for name in (*CSV_COLUMN_ORDER, *loss_columns)}
    data = rows[1:]
    if len(data) < min_rows:
        raise DataFormatError(f"{path}: {len(data)} training run(s); at least {min_rows} are needed")
    values = np.empty((len(data), len(index)))
    for i, row in enumerate(data):
        line = i + 2
        if len(row) != len(header):
            raise DataFormatError(f"{path}: line {line} has {len(row)} fields, the header {len(header)}")
        for j, (name, col) in enumerate(index.items()):
            values[i, j] = _number(row[col], path, line, name)
    n_hp = len(CSV_COLUMN_ORDER)
    return Curves(values[:, :n_hp], values[:, n_hp:], str(path))


def drop_outliers(curves: Curves, threshold: float = OUTLIER_LOSS) -> Curves:
    """Without the runs whose last loss is above `threshold` (the study's one outlier)."""
    return curves.subset(curves.losses[:, -1] <= threshold)


def study_features(curves: Curves, epochs=STUDY_EPOCHS, target: int = STUDY_TARGET) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) of the study: the losses at `epochs` and the loss at epoch `target`, outliers dropped."""
    if max(epochs) >= curves.epochs or target >= curves.epochs:
        raise DataFormatError(
            f"{curves.source}: the study needs losses up to epoch {max(max(epochs), target)}, "
            f"the table has {curves.epochs} epochs"
        )
    kept = drop_outliers(curves)
    return kept.losses[:, list(epochs)], kept.losses[:, target]
