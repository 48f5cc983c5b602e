"""The seven hyperparameters of the CoE RAISE MLPF study (docs/hpo.md), in one table.

Each hyperparameter has four spellings: hepbench's name (the config key and the keyword of
`hepbench.mlpf.config.with_hyperparameters`), the command-line option, the study's name (the
search-space key, `hepbench.hpo.space`) and the column of the learning-curve CSV
(`hepbench/qsvr/data/delphes_trainings_processed.csv`). The configuration, the command line,
the search space and the QSVR features all read this table, so its valid range is checked the
same way everywhere.

`HYPERPARAMETERS` is in the study's order (the search space's dimensions); `CSV_COLUMN_ORDER`
is the order of the learning-curve table's columns, which the QSVR features and
`hpo_trials.csv` follow.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass


@dataclass(frozen=True)
class Hyperparameter:
    name: str  # hepbench's name: the key in its config section
    section: str  # the config section holding it: "model" or "train"
    option: str  # command-line option
    study_name: str  # the search space's key
    csv_column: str  # column of the learning-curve CSV
    type: type  # int or float
    low: float  # valid values are above low (or equal to it when low_inclusive) ...
    low_inclusive: bool
    high: float = math.inf  # ... and below high

    @property
    def config_path(self) -> str:
        """`section.name`, as in `--set` and config error messages."""
        return f"{self.section}.{self.name}"

    @property
    def range_text(self) -> str:
        """The valid range in words: "positive", ">= 0", "in [0, 1)"."""
        if self.high != math.inf:
            return f"in {'[' if self.low_inclusive else '('}{self.low:g}, {self.high:g})"
        if self.low == 0 and not self.low_inclusive:
            return "positive"
        return f"{'>=' if self.low_inclusive else '>'} {self.low:g}"

    @property
    def requirement(self) -> str:
        """What a value must be, type included: "a positive number", "an integer >= 0"."""
        kind = "integer" if self.type is int else "number"
        if self.range_text == "positive":
            return f"a positive {kind}"
        return f"{'an' if kind == 'integer' else 'a'} {kind} {self.range_text}"

    def in_range(self, value: float) -> bool:
        """Whether `value` lies in the valid range (NaN never does)."""
        above = value >= self.low if self.low_inclusive else value > self.low
        return above and value < self.high

    def accepts(self, value) -> bool:
        """Whether `value` is a valid value: a number of the right kind (integral for int) in range."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        if self.type is int and not float(value).is_integer():
            return False
        return self.in_range(value)


HYPERPARAMETERS = (
    Hyperparameter("learning_rate", "train", "--learning-rate", "lr", "lr", float, 0.0, False),
    Hyperparameter(
        "num_graph_layers_id", "model", "--num-graph-layers-id", "num_graph_layers_id", "n_glayers_id", int, 0, True
    ),
    Hyperparameter(
        "num_graph_layers_reg", "model", "--num-graph-layers-reg", "num_graph_layers_reg", "n_glayers_reg", int, 0, True
    ),
    Hyperparameter("dropout", "model", "--dropout", "dropout", "dropout", float, 0.0, True, 1.0),
    Hyperparameter("bin_size", "model", "--bin-size", "bin_size", "bin_size", int, 0, False),
    Hyperparameter("output_dim", "model", "--output-dim", "output_dim", "output_dim", int, 0, False),
    Hyperparameter("weight_decay", "train", "--weight-decay", "weight_decay", "weight_decay", float, 0.0, True),
)

# The learning-curve CSV's hyperparameter columns, in the file's order.
CSV_COLUMN_ORDER = ("bin_size", "dropout", "lr", "n_glayers_id", "n_glayers_reg", "output_dim", "weight_decay")


def _index(key: str) -> dict[str, Hyperparameter]:
    return {getattr(h, key): h for h in HYPERPARAMETERS}


_BY_NAME, _BY_STUDY_NAME, _BY_CSV_COLUMN = _index("name"), _index("study_name"), _index("csv_column")


def names() -> tuple[str, ...]:
    """hepbench's names, in the study's order."""
    return tuple(_BY_NAME)


def study_names() -> tuple[str, ...]:
    """The search space's names, in the study's order."""
    return tuple(_BY_STUDY_NAME)


def by_name(name: str) -> Hyperparameter:
    """The entry with hepbench's name `name` (KeyError if none)."""
    return _BY_NAME[name]


def by_study_name(name: str) -> Hyperparameter:
    """The entry with the search space's name `name` (KeyError if none)."""
    return _BY_STUDY_NAME[name]


def by_csv_column(column: str) -> Hyperparameter:
    """The entry of the learning-curve CSV column `column` (KeyError if none)."""
    return _BY_CSV_COLUMN[column]


def in_section(section: str) -> tuple[Hyperparameter, ...]:
    """The entries living in config section `section` ("model" or "train")."""
    return tuple(h for h in HYPERPARAMETERS if h.section == section)
