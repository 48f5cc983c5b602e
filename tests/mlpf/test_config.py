"""Typed configuration: packaged defaults, user files, overrides, and clear errors."""
from __future__ import annotations

import pytest

from hepbench.mlpf.config import Config, load_config, parse_override, with_hyperparameters
from hepbench.core.errors import UsageError


def test_packaged_defaults_match_the_dataclass_defaults():
    # defaults.yaml is the one place for reference defaults; it must not drift from the code.
    assert load_config() == Config()
    cfg = load_config()
    assert (cfg.model.bin_size, cfg.data.max_elements, cfg.model.output_dim, cfg.train.learning_rate) == (640, 6400, 256, 1e-5)


def test_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  bin_size: 320\ndata:\n  cache: memory\n")
    cfg = load_config(path, ["data.batch_size=4", "data.pad_to_max=true", "train.learning_rate=1e-4"])
    assert (cfg.model.bin_size, cfg.data.cache, cfg.data.batch_size, cfg.data.pad_to_max) == (320, "memory", 4, True)
    assert cfg.train.learning_rate == 1e-4  # PyYAML reads 1e-4 as a string; it is still a float here
    assert cfg.data.max_elements == 6400  # untouched keys keep their defaults


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("data:\n  bin_sise: 3\n", r"c\.yaml: data: unknown key\(s\) \['bin_sise'\]"),
        ("model:\n  bin_size: big\n", r"c\.yaml: model\.bin_size: expected int, got str 'big'"),
        ("train:\n  learning_rate: fast\n", r"c\.yaml: train\.learning_rate: expected float, got str 'fast'"),
        ("data:\n  pad_to_max: 1\n", r"data\.pad_to_max: expected bool, got int"),
        ("data: [1, 2]\n", r"c\.yaml: data: expected a mapping"),
        ("- 1\n", "expected a mapping at the top level"),
        ("data: {batch_size: 1\n", r"c\.yaml: not valid YAML"),
        ("hpo: {}\n", r"unknown key\(s\) \['hpo'\]"),
        ("model:\n  bin_size: 0\n", r"c\.yaml: model\.bin_size must be positive, not 0"),
        ("data:\n  bin_size: 640\n", r"c\.yaml: data: unknown key\(s\) \['bin_size'\]"),
    ],
)
def test_bad_files(tmp_path, text, pattern):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=pattern):
        load_config(path)


@pytest.mark.parametrize(
    "override, pattern",
    [
        ("model.bin_size=0", "model.bin_size must be positive, not 0"),
        ("model.bin_size=-640", "model.bin_size must be positive"),
        ("model.dropout=-0.1", r"model.dropout must be in \[0, 1\), not -0.1"),
        ("model.output_dim=0", "model.output_dim must be positive, not 0"),
        ("model.num_graph_layers_id=-1", "model.num_graph_layers_id must be at least 0, not -1"),
        ("model.node_update_mode=sum", "model.node_update_mode must be one of"),
        ("train.precision=fp8", r"train.precision must be one of \('fp32', 'bf16', 'fp16'\), not 'fp8'"),
        ("train.weight_decay=-1", "train.weight_decay must be >= 0"),
        ("train.learning_rate=0", "train.learning_rate must be positive"),
        ("train.loss_weights.cls=-1", "train.loss_weights.cls must be >= 0"),
        ("data.batch_size=-2", "data.batch_size must be positive"),
        ("data.target=reco", "data.target must be one of"),
        ("data.shuffle_buffer=-1", "data.shuffle_buffer must be >= 0"),
        ("data.prefetch=-5", "data.prefetch must be -1"),
        ("data.cache=", "data.cache must be"),
        ("bin_size", "expected section.key=value"),
        ("data..x=1", "expected section.key=value"),
    ],
)
def test_bad_values(override, pattern):
    with pytest.raises(UsageError, match=pattern):
        load_config(overrides=[override])


def test_zero_graph_layers_need_the_skip_connection():
    with pytest.raises(UsageError, match="num_graph_layers_reg = 0 needs model.skip_connection"):
        load_config(overrides=["model.num_graph_layers_reg=0", "model.skip_connection=false"])
    assert load_config(overrides=["model.num_graph_layers_reg=0"]).model.num_graph_layers_reg == 0


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="config file .*absent.yaml"):
        load_config(tmp_path / "absent.yaml")


def test_override_values_are_yaml():
    assert parse_override("data.seed=7") == {"data": {"seed": 7}}
    assert parse_override("data.cache=/tmp/x") == {"data": {"cache": "/tmp/x"}}


def test_study_hyperparameters_by_name():
    cfg = with_hyperparameters(load_config(), bin_size=320, dropout=0.2, learning_rate=3e-4, weight_decay=1e-3,
                               num_graph_layers_id=2, num_graph_layers_reg=1, output_dim=128)
    assert (cfg.model.bin_size, cfg.model.dropout, cfg.train.learning_rate, cfg.train.weight_decay) == (320, 0.2, 3e-4, 1e-3)
    assert (cfg.model.num_graph_layers_id, cfg.model.num_graph_layers_reg, cfg.model.output_dim) == (2, 1, 128)
    with pytest.raises(UsageError, match=r"unknown hyperparameter\(s\) \['depth'\]"):
        with_hyperparameters(cfg, depth=3)
    with pytest.raises(UsageError, match="model.bin_size must be positive"):
        with_hyperparameters(cfg, bin_size=0)
