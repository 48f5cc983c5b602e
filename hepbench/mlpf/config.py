"""Typed configuration: dataclasses filled from YAML, reference defaults in `defaults.yaml`
(the model: docs/model.md; the training recipe: docs/training.md).

`load_config()` gives the packaged defaults (for a GPU run, with defaults.yaml's `gpu:` section
over them); a user file or `section.key=value` overrides replace single values. Unknown keys and
wrongly typed values are errors that name the file and the key.
The seven study hyperparameters are range-checked through their shared table
(hepbench.core.hyperparameters); `with_hyperparameters` sets them by name.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from hepbench.core import hyperparameters
from hepbench.core.errors import UsageError

TARGETS = ("gen", "cand")
CACHES = ("none", "memory")
NODE_UPDATE_MODES = ("concat", "additive")
PRECISIONS = ("fp32", "bf16", "fp16")
# float32 matrix products: IEEE float32 throughout, or TensorFloat-32 (10-bit mantissa inputs) where a
# GPU has it. Each framework has its own default (docs/engines.md, "float32 matmul"): one setting
# makes the engines' rows of one GPU the same arithmetic.
FP32_MATMUL = ("highest", "tf32")
ACTIVATIONS = ("elu", "relu", "gelu", "selu", "swish", "tanh")


@dataclass(frozen=True)
class DataConfig:
    """How events become batches (hepbench.mlpf.data.pipeline)."""

    max_elements: int = 6400  # longer events are truncated, as upstream did
    pad_to_max: bool = False  # pad every event to max_elements (one fixed shape, upstream 1.0.0)
    batch_size: int = 2  # events per device and step
    target: str = "gen"  # "gen" (generator truth) or "cand" (Delphes rule-based PF candidates)
    shuffle_buffer: int = 0  # 0 keeps the dataset order
    bucket_lookahead: int = 8  # batches' worth of events held back to batch events of one padded length; 0: off
    cache: str = "none"  # "none" or "memory" (decoded events kept after their first read)
    prefetch: int = -1  # batches built ahead by background threads; -1: twice the threads; 0: none
    seed: int = 42

    def __post_init__(self) -> None:
        _positive(self, "data", ("max_elements", "batch_size"))
        if self.shuffle_buffer < 0:
            raise UsageError(f"data.shuffle_buffer must be >= 0, not {self.shuffle_buffer}")
        if self.bucket_lookahead < 0:
            raise UsageError(f"data.bucket_lookahead must be >= 0 (0: no bucketing), not {self.bucket_lookahead}")
        if self.prefetch < -1:
            raise UsageError(f"data.prefetch must be -1 (auto) or >= 0, not {self.prefetch}")
        if self.target not in TARGETS:
            raise UsageError(f"data.target must be one of {TARGETS}, not {self.target!r}")
        if self.cache not in CACHES:
            # The file cache of the former tf.data pipeline has no use: the array_record files are
            # already random access, and a second copy on disk would be read no faster.
            raise UsageError(
                f"data.cache must be 'none' or 'memory', not {self.cache!r} "
                "(a file cache no longer exists: the built data set is read directly)"
            )


@dataclass(frozen=True)
class ModelConfig:
    """The MLPF PFNetDense network (hepbench.mlpf.model); defaults: the 2022 Delphes configuration."""

    num_graph_layers_id: int = 3  # depth of the identification stack
    num_graph_layers_reg: int = 3  # depth of the regression stack
    node_update_mode: str = "concat"  # "concat" (reference) or "additive" (residual updates)
    bin_size: int = 640  # elements per LSH bin; events are padded to a multiple of it
    max_num_bins: int = 100  # the LSH projection has max_num_bins // 2 columns
    distance_dim: int = 128  # width of the learned distance space
    ffn_dist_hidden_dim: int = 128
    ffn_dist_num_layers: int = 1
    num_node_messages: int = 1  # GHConvDense message passes per graph layer
    output_dim: int = 256  # width of the node messages
    dist_mult: float = 0.1  # adjacency = exp(-dist_mult * distance)
    clip_value_low: float = 0.0
    normalize_degrees: bool = True
    dropout: float = 0.0  # d: d/2 in the graph layers, d in the output heads
    activation: str = "elu"
    skip_connection: bool = True  # the encoded input joins the decoder input
    regression_use_classification: bool = True  # regression heads also see the class logits
    decoder_hidden_dim: int = 256
    decoder_layernorm: bool = True
    id_num_layers: int = 4
    charge_num_layers: int = 2
    pt_num_layers: int = 3
    eta_num_layers: int = 3
    phi_num_layers: int = 3
    energy_num_layers: int = 3

    def __post_init__(self) -> None:
        _check_hyperparameters(self, "model")
        _positive(
            self,
            "model",
            (
                "max_num_bins",
                "distance_dim",
                "ffn_dist_hidden_dim",
                "num_node_messages",
                "decoder_hidden_dim",
                "id_num_layers",
                "charge_num_layers",
                "pt_num_layers",
                "eta_num_layers",
                "phi_num_layers",
                "energy_num_layers",
            ),
        )
        if self.ffn_dist_num_layers < 0:
            raise UsageError(f"model.ffn_dist_num_layers must be at least 0, not {self.ffn_dist_num_layers}")
        # 0 graph layers is in the study's search space: the stack's decoder input is then the encoded input.
        for name in ("num_graph_layers_id", "num_graph_layers_reg"):
            if getattr(self, name) == 0 and not self.skip_connection and self.node_update_mode == "concat":
                raise UsageError(f"model.{name} = 0 needs model.skip_connection: the decoder would get no input")
        if self.max_num_bins < 2:
            raise UsageError(f"model.max_num_bins must be at least 2, not {self.max_num_bins}")
        if self.dist_mult <= 0:
            raise UsageError(f"model.dist_mult must be positive, not {self.dist_mult}")
        if not 0.0 <= self.clip_value_low < 1.0:
            raise UsageError(f"model.clip_value_low must be in [0, 1), not {self.clip_value_low}")
        if self.node_update_mode not in NODE_UPDATE_MODES:
            raise UsageError(
                f"model.node_update_mode must be one of {NODE_UPDATE_MODES}, not {self.node_update_mode!r}"
            )
        if self.activation not in ACTIVATIONS:
            raise UsageError(f"model.activation must be one of {ACTIVATIONS}, not {self.activation!r}")


@dataclass(frozen=True)
class LossWeights:
    cls: float = 1.0
    charge: float = 1.0
    pt: float = 1.0
    eta: float = 1.0
    sin_phi: float = 1.0
    cos_phi: float = 1.0
    energy: float = 1.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) < 0:
                raise UsageError(f"train.loss_weights.{f.name} must be >= 0, not {getattr(self, f.name)}")


@dataclass(frozen=True)
class TrainConfig:
    """Optimizer, schedule, precision and compilation of the training step (hepbench.mlpf.train)."""

    learning_rate: float = 1e-5
    lr_decay_steps: int = 10000  # ExponentialDecay, staircase
    lr_decay_rate: float = 0.99
    weight_decay: float = 0.0  # > 0 selects AdamW (decoupled weight decay)
    precision: str = "fp32"  # fp32, bf16 (mixed_bfloat16) or fp16 (mixed_float16 + loss scaling)
    jit_compile: bool = False  # XLA (TensorFlow); JAX always compiles its step with jax.jit
    compile: bool = False  # torch.compile of the PyTorch train step (the other backends ignore it)
    compile_backend: str = "inductor"  # torch.compile's backend: inductor, aot_eager, or a vendor's registered one
    fp32_matmul: str = "highest"  # float32 matmuls: highest (IEEE float32) or tf32, on every engine
    seed: int = 42
    loss_weights: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        _check_hyperparameters(self, "train")
        _positive(self, "train", ("lr_decay_steps", "lr_decay_rate"))
        if self.precision not in PRECISIONS:
            raise UsageError(f"train.precision must be one of {PRECISIONS}, not {self.precision!r}")
        if self.fp32_matmul not in FP32_MATMUL:
            raise UsageError(f"train.fp32_matmul must be one of {FP32_MATMUL}, not {self.fp32_matmul!r}")


@dataclass(frozen=True)
class BenchConfig:
    """What `hepbench run` times (hepbench.mlpf.run): windows of training steps after a warm-up.

    Event counts are per copy. CPU and GPU get their own sizes so that a run with no arguments
    is meaningful on both: a few minutes on two CPU cores, enough work to load a GPU.
    """

    windows: int = 6  # timed windows (epochs); the report needs at least 2 for its statistics
    warmup_steps: int = 2  # untimed steps after tracing, before the first window
    cpu_events_per_window: int = 12
    gpu_events_per_window: int = 10000
    cpu_validation_events: int = 8
    gpu_validation_events: int = 2000
    energy: bool = True  # read energy counters at the windows' boundaries (docs/energy.md)
    powercap_dir: str = "/sys/class/powercap"  # the Linux powercap class directory (RAPL zones)
    # A CPU copy's matmul ceiling, the peak its model FLOPs utilisation is of (hepbench.mlpf.engines.ceiling),
    # measured for about this long before its clock; 0: not measured (the utilisation is then null).
    ceiling_seconds: float = 3.0

    def __post_init__(self) -> None:
        _positive(self, "bench", ("windows", "cpu_events_per_window", "gpu_events_per_window"))
        if not 0 <= self.ceiling_seconds <= 600:
            raise UsageError(
                f"bench.ceiling_seconds must be between 0 (not measured) and 600, not {self.ceiling_seconds}"
            )
        if not self.powercap_dir:
            raise UsageError("bench.powercap_dir must name a directory (the powercap class, /sys/class/powercap)")
        for name in ("warmup_steps", "cpu_validation_events", "gpu_validation_events"):
            if getattr(self, name) < 0:
                raise UsageError(f"bench.{name} must be >= 0, not {getattr(self, name)}")

    def for_device(self, device: str) -> tuple[int, int]:
        """(events per window, validation events) of one copy on `device` ("cpu" or "gpu")."""
        if device == "cpu":
            return self.cpu_events_per_window, self.cpu_validation_events
        if device == "gpu":
            return self.gpu_events_per_window, self.gpu_validation_events
        raise ValueError(f"device must be 'cpu' or 'gpu', not {device!r}")


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)


def _check_hyperparameters(obj: Any, section: str) -> None:
    """Refuses a study hyperparameter of `section` outside the table's range (the search space refuses the same)."""
    for h in hyperparameters.in_section(section):
        value = getattr(obj, h.name)
        if not h.in_range(value):
            raise UsageError(f"{h.config_path} must be {h.range_text}, not {value}")


def _positive(obj: Any, section: str, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if value <= 0:
            raise UsageError(f"{section}.{name} must be positive, not {value}")


def with_hyperparameters(cfg: Config, **values: Any) -> Config:
    """A copy of `cfg` with study hyperparameters set by name, e.g. bin_size=320, dropout=0.1."""
    known = hyperparameters.names()
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UsageError(f"unknown hyperparameter(s) {unknown}; known: {sorted(known)}")
    sections: dict[str, dict] = {}
    for name, value in values.items():
        h = hyperparameters.by_name(name)
        sections.setdefault(h.section, {})[h.name] = value
    data = _merge(dataclasses.asdict(cfg), sections)
    return _from_dict(Config, data, "hyperparameters")


def _coerce(value: Any, tp: Any, source: str, key: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, source, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # PyYAML reads 1e-5 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    else:  # pragma: no cover - a field type this loader does not know is a programming error
        raise TypeError(f"unsupported config type {tp}")
    raise UsageError(f"{source}: {key}: expected {tp.__name__}, got {type(value).__name__} {value!r}")


def _from_dict(cls: type, data: Any, source: str, prefix: str = "") -> Any:
    where = f"{source}: {prefix}" if prefix else source
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs = {k: _coerce(v, hints[k], source, f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except UsageError as e:  # a value check in __post_init__: say where the value came from
        raise UsageError(f"{source}: {e}") from None


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_yaml(text: str, where: str) -> dict:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise UsageError(f"{where}: not valid YAML ({e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def parse_override(text: str) -> dict:
    """`data.bin_size=320` → {"data": {"bin_size": 320}} (the value is read as YAML)."""
    key, sep, value = text.partition("=")
    if not sep or not key or any(not part for part in key.split(".")):
        raise UsageError(f"override {text!r}: expected section.key=value")
    out: dict = _read_yaml(f"v: {value}" if value else "v: ''", f"override {text!r}")["v"]
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


DEVICE_DEFAULTS = ("gpu",)  # defaults.yaml's sections of per-device defaults


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, device: str | None = None
) -> Config:
    """Packaged defaults (with device "gpu": its `gpu:` section over them), then the file at `path`,
    then `section.key=value` overrides."""
    data = _read_yaml(resources.files("hepbench.mlpf").joinpath("defaults.yaml").read_text(), "defaults.yaml")
    per_device = {name: data.pop(name, {}) for name in DEVICE_DEFAULTS}
    if device in per_device:
        data = _merge(data, per_device[device])
    elif device not in (None, "cpu"):
        raise ValueError(f"device must be cpu, gpu or None, not {device!r}")
    where = "defaults.yaml"
    if path is not None:
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise UsageError(f"config file {path}: {e.strerror}") from None
        data = _merge(data, _read_yaml(text, str(path)))
        where = str(path)
    for text in overrides or []:
        data = _merge(data, parse_override(text))
        where = f"{where} (with overrides)"
    return _from_dict(Config, data, where)


@dataclass(frozen=True)
class ConfigSource:
    """Where a configuration comes from (a file and overrides over the packaged defaults), kept so
    that a run can load it for the device it resolves: a GPU run gets defaults.yaml's `gpu:` defaults
    under the same file and overrides."""

    path: Path | None = None
    overrides: tuple[str, ...] = ()

    def load(self, device: str | None = None) -> Config:
        return load_config(self.path, list(self.overrides), device)


def config_to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


def config_from_dict(data: dict, source: str = "configuration") -> Config:
    """The inverse of config_to_dict, with the same checks as load_config."""
    return _from_dict(Config, data, source)
