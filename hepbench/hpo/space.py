"""The study's 7-dimensional search space: loaded from YAML, checked, and turned into a Ray Tune
`param_space` or a ConfigSpace (BOHB).

Names are the study's (`lr`, `num_graph_layers_id`, ...), from the hyperparameter table
(hepbench.core.hyperparameters), which also gives each one's valid range: a space that could
draw a value the model would refuse is an error. `to_hyperparameters` maps a sampled
configuration to hepbench's names with the right types. NAMES and CSV_COLUMNS are the table's
views keyed by study name, for callers that work in the study's names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from hepbench.core.errors import UsageError
from hepbench.core.hyperparameters import HYPERPARAMETERS, by_study_name, study_names

# study name -> (hepbench hyperparameter, column of the learning-curve CSV, python type)
NAMES = {h.study_name: (h.name, h.csv_column, h.type) for h in HYPERPARAMETERS}
CSV_COLUMNS = {h.study_name: h.csv_column for h in HYPERPARAMETERS}
SAMPLERS = ("loguniform", "uniform", "quniform", "choice", "constant")


class SpaceError(UsageError):
    """A search-space entry that cannot be sampled or that the model cannot take."""


@dataclass(frozen=True)
class Dimension:
    name: str
    sampler: str
    low: float | None = None
    high: float | None = None
    q: float | None = None
    values: tuple | None = None  # choice: the values; constant: one value

    def bounds(self) -> list:
        """The values that can be drawn at the edges (all of them for choice/constant)."""
        if self.sampler in ("choice", "constant"):
            return list(self.values)
        return [self.low, self.high]


@dataclass(frozen=True)
class SearchSpace:
    dimensions: tuple[Dimension, ...]
    source: str = "packaged default"

    def __getitem__(self, name: str) -> Dimension:
        return {d.name: d for d in self.dimensions}[name]

    def to_tune(self) -> dict:
        """Ray Tune samplers, one per dimension (quniform values are floats: see to_hyperparameters)."""
        from ray import tune  # only a search needs Ray: reading and checking a space does not

        space = {}
        for d in self.dimensions:
            if d.sampler == "loguniform":
                space[d.name] = tune.loguniform(d.low, d.high)
            elif d.sampler == "uniform":
                space[d.name] = tune.uniform(d.low, d.high)
            elif d.sampler == "quniform":
                space[d.name] = tune.quniform(d.low, d.high, d.q)
            elif d.sampler == "choice":
                space[d.name] = tune.choice(list(d.values))
            else:
                space[d.name] = d.values[0]
        return space

    def to_configspace(self, seed: int | None = None):
        """The same space for BOHB (ConfigSpace 1.x API); quniform with q = 1 becomes an integer."""
        import ConfigSpace as CS  # only BOHB needs it (the hpo extra)

        cs = CS.ConfigurationSpace(seed=seed)
        for d in self.dimensions:
            if d.sampler in ("loguniform", "uniform"):
                hp = CS.Float(d.name, (d.low, d.high), log=d.sampler == "loguniform")
            elif d.sampler == "quniform" and d.q == 1 and float(d.low).is_integer():
                hp = CS.Integer(d.name, (int(d.low), int(d.high)))
            elif d.sampler == "quniform":
                hp = CS.Float(d.name, (d.low, d.high))  # rounded to q by to_hyperparameters
            elif d.sampler == "choice":
                hp = CS.Categorical(d.name, list(d.values))
            else:
                hp = CS.Constant(d.name, d.values[0])
            cs.add(hp)
        return cs

    def to_hyperparameters(self, config: dict) -> dict:
        """hepbench hyperparameter names and types for a sampled configuration (quniform rounded to q)."""
        missing = [d.name for d in self.dimensions if d.name not in config]
        if missing:
            raise SpaceError(f"trial configuration lacks {missing}")
        out = {}
        for d in self.dimensions:
            value = config[d.name]
            if d.sampler == "quniform":
                value = round(float(value) / d.q) * d.q
            h = by_study_name(d.name)
            out[h.name] = int(round(value)) if h.type is int else float(value)
        return out


def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpaceError(f"{where}: {key} must be a finite number, not {value!r}")
    return float(value)


def _dimension(name: str, entry: Any, where: str) -> Dimension:
    where = f"{where}: {name}"
    if not isinstance(entry, dict):
        raise SpaceError(f"{where}: expected a mapping like {{sampler: uniform, low: 0, high: 1}}, not {entry!r}")
    sampler = entry.get("sampler")
    if sampler not in SAMPLERS:
        raise SpaceError(f"{where}: sampler must be one of {', '.join(SAMPLERS)}, not {sampler!r}")
    allowed = {
        "loguniform": {"low", "high"},
        "uniform": {"low", "high"},
        "quniform": {"low", "high", "q"},
        "choice": {"values"},
        "constant": {"value"},
    }[sampler] | {"sampler"}
    extra = sorted(set(entry) - allowed)
    if extra:
        raise SpaceError(f"{where}: {sampler} takes {sorted(allowed - {'sampler'})}, not {extra}")
    if sampler in ("choice", "constant"):
        values = entry.get("values") if sampler == "choice" else [entry.get("value")]
        if not isinstance(values, list) or not values:
            raise SpaceError(f"{where}: choice needs a non-empty list of values, not {values!r}")
        values = [_number(where, "value", v) for v in values]
        if len(set(values)) != len(values):
            raise SpaceError(f"{where}: choice values repeat: {values}")
        _check_valid(name, values, where)  # before int(): 2.5 graph layers is refused, not truncated
        kind = by_study_name(name).type
        dim = Dimension(name, sampler, values=tuple(int(v) if kind is int else v for v in values))
    else:
        if "low" not in entry or "high" not in entry:
            raise SpaceError(f"{where}: {sampler} needs low and high")
        low, high = _number(where, "low", entry["low"]), _number(where, "high", entry["high"])
        if not low < high:
            raise SpaceError(f"{where}: low must be below high, got low={low:g}, high={high:g}")
        if sampler == "loguniform" and low <= 0:
            raise SpaceError(f"{where}: loguniform needs low > 0, got low={low:g}")
        q = None
        if sampler == "quniform":
            q = _number(where, "q", entry.get("q", 1))
            if q <= 0:
                raise SpaceError(f"{where}: q must be positive, got q={q:g}")
        dim = Dimension(name, sampler, low, high, q)
        _check_valid(name, dim.bounds(), where)
    return dim


def _check_valid(name: str, values: list[float], where: str) -> None:
    """Every value the dimension can draw at its edges is one the model takes (the table's range,
    which hepbench.mlpf.config checks when a trial starts)."""
    h = by_study_name(name)
    for value in values:
        if not h.accepts(value):
            raise SpaceError(f"{where}: {value:g} is not a valid {name} ({name} must be {h.requirement})")


def parse_space(data: Any, where: str, base: SearchSpace | None = None) -> SearchSpace:
    """A SearchSpace from a mapping name -> entry; names absent from `data` keep `base`'s entry."""
    if not isinstance(data, dict):
        raise SpaceError(f"{where}: expected a mapping of hyperparameter names to samplers")
    known = study_names()
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SpaceError(f"{where}: unknown hyperparameter(s) {unknown}; known: {', '.join(known)}")
    if base is None and set(data) != set(known):
        raise SpaceError(f"{where}: missing {sorted(set(known) - set(data))}")
    dims = tuple(_dimension(name, data[name], where) if name in data else base[name] for name in known)
    return SearchSpace(dims, where)


def default_space() -> SearchSpace:
    text = (resources.files("hepbench.hpo") / "search_space.yaml").read_text()
    return parse_space(yaml.safe_load(text), "packaged search_space.yaml")


def load_space(path: str | Path | None = None) -> SearchSpace:
    """The packaged space, with the entries of the YAML file at `path` (if any) replacing its own."""
    base = default_space()
    if path is None:
        return base
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as e:
        raise SpaceError(f"search space {path}: cannot be read ({e.strerror})") from None
    except yaml.YAMLError as e:
        raise SpaceError(f"search space {path}: not valid YAML ({e})") from None
    return parse_space(data, f"search space {path}", base)
