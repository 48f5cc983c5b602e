"""Typed configuration: packaged defaults, user files, overrides, clear errors, and the study
hyperparameters' table as the configuration, the command line, the search space and the CSV see it."""

from __future__ import annotations

import argparse
import csv
import typing

import pytest

from hepbench.core.errors import UsageError
from hepbench.core.hyperparameters import CSV_COLUMN_ORDER, HYPERPARAMETERS, by_csv_column, by_name, by_study_name
from hepbench.hpo.space import SpaceError, default_space, parse_space
from hepbench.mlpf.config import (
    BenchConfig,
    Config,
    ModelConfig,
    TrainConfig,
    load_config,
    parse_override,
    with_hyperparameters,
)
from hepbench.mlpf.config_cli import add_config_arguments, config_from_args
from hepbench.qsvr.curves import packaged_csv


def test_packaged_defaults_match_the_dataclass_defaults():
    # defaults.yaml is the one place for reference defaults; it must not drift from the code.
    assert load_config() == Config()
    cfg = load_config()
    assert (cfg.model.bin_size, cfg.data.max_elements, cfg.model.output_dim, cfg.train.learning_rate) == (
        640,
        6400,
        256,
        1e-5,
    )


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
        # train.epochs was validated and never read: a file that still sets it is told so.
        ("train:\n  epochs: 10\n", r"c\.yaml: train: unknown key\(s\) \['epochs'\]"),
        ("data:\n  bin_size: 640\n", r"c\.yaml: data: unknown key\(s\) \['bin_size'\]"),
        ("bench:\n  ceiling_seconds: -1\n", r"ceiling_seconds must be between 0 \(not measured\) and 600, not -1"),
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
        ("model.num_graph_layers_id=-1", "model.num_graph_layers_id must be >= 0, not -1"),
        ("model.node_update_mode=sum", "model.node_update_mode must be one of"),
        ("train.precision=fp8", r"train.precision must be one of \('fp32', 'bf16', 'fp16'\), not 'fp8'"),
        ("train.fp32_matmul=high", r"train.fp32_matmul must be one of \('highest', 'tf32'\), not 'high'"),
        ("train.weight_decay=-1", "train.weight_decay must be >= 0"),
        ("train.learning_rate=0", "train.learning_rate must be positive"),
        ("train.loss_weights.cls=-1", "train.loss_weights.cls must be >= 0"),
        ("data.batch_size=-2", "data.batch_size must be positive"),
        ("data.target=reco", "data.target must be one of"),
        ("data.shuffle_buffer=-1", "data.shuffle_buffer must be >= 0"),
        ("bench.powercap_dir=", "bench.powercap_dir must name a directory"),
        ("bench.energy=maybe", "bench.energy: expected bool"),
        ("data.bucket_lookahead=-1", "data.bucket_lookahead must be >= 0"),
        ("train.compile_backend=7", "train.compile_backend: expected str"),
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
    cfg = with_hyperparameters(
        load_config(),
        bin_size=320,
        dropout=0.2,
        learning_rate=3e-4,
        weight_decay=1e-3,
        num_graph_layers_id=2,
        num_graph_layers_reg=1,
        output_dim=128,
    )
    assert (cfg.model.bin_size, cfg.model.dropout, cfg.train.learning_rate, cfg.train.weight_decay) == (
        320,
        0.2,
        3e-4,
        1e-3,
    )
    assert (cfg.model.num_graph_layers_id, cfg.model.num_graph_layers_reg, cfg.model.output_dim) == (2, 1, 128)
    with pytest.raises(UsageError, match=r"unknown hyperparameter\(s\) \['depth'\]"):
        with_hyperparameters(cfg, depth=3)
    with pytest.raises(UsageError, match="model.bin_size must be positive"):
        with_hyperparameters(cfg, bin_size=0)


def test_bench_sizes_per_device():
    bench = BenchConfig(
        cpu_events_per_window=5, cpu_validation_events=1, gpu_events_per_window=70, gpu_validation_events=30
    )
    assert bench.for_device("cpu") == (5, 1)
    assert bench.for_device("gpu") == (70, 30)
    with pytest.raises(ValueError, match="device must be 'cpu' or 'gpu', not 'auto'"):
        bench.for_device("auto")


# One valid value per hyperparameter, none of them the default.
VALID = {
    "learning_rate": 3e-4,
    "num_graph_layers_id": 0,
    "num_graph_layers_reg": 2,
    "dropout": 0.25,
    "bin_size": 320,
    "output_dim": 64,
    "weight_decay": 1e-3,
}


def test_every_table_entry_is_a_config_field_of_its_type():
    sections = {"model": ModelConfig, "train": TrainConfig}
    assert sorted(VALID) == sorted(h.name for h in HYPERPARAMETERS)
    for h in HYPERPARAMETERS:
        assert typing.get_type_hints(sections[h.section])[h.name] is h.type, h.name
        assert by_name(h.name) is by_study_name(h.study_name) is by_csv_column(h.csv_column) is h
        assert h.option == "--" + h.name.replace("_", "-")
    cfg = with_hyperparameters(Config(), **VALID)
    for h in HYPERPARAMETERS:
        assert (
            getattr(getattr(cfg, h.section), h.name) == VALID[h.name] != getattr(getattr(Config(), h.section), h.name)
        )


@pytest.mark.parametrize("h", HYPERPARAMETERS, ids=lambda h: h.name)
def test_every_option_sets_its_config_value(h):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    cfg = config_from_args(parser.parse_args([h.option, str(VALID[h.name])]))
    assert cfg == with_hyperparameters(load_config(), **{h.name: VALID[h.name]})
    value = getattr(getattr(cfg, h.section), h.name)
    assert value == VALID[h.name] and type(value) is h.type


def test_csv_columns_are_the_packaged_tables():
    with open(packaged_csv(), newline="") as f:
        header = next(csv.reader(f))
    assert tuple(header[: len(CSV_COLUMN_ORDER)]) == CSV_COLUMN_ORDER
    assert sorted(CSV_COLUMN_ORDER) == sorted(h.csv_column for h in HYPERPARAMETERS)
    assert header[len(CSV_COLUMN_ORDER)] == "loss_0"


def _config_accepts(name: str, value) -> bool:
    try:
        with_hyperparameters(load_config(), **{name: value})
    except UsageError:
        return False
    return True


def _space_accepts(study_name: str, value) -> bool:
    try:
        parse_space({study_name: {"sampler": "constant", "value": value}}, "probe", default_space())
    except SpaceError:
        return False
    return True


@pytest.mark.parametrize("h", HYPERPARAMETERS, ids=lambda h: h.name)
def test_the_config_and_the_search_space_accept_the_same_values(h):
    # Integers for every entry (a float one reads them as floats), fractions that an int one refuses.
    probes = (-1, -1e-9, 0, 1e-9, 0.5, 0.999, 1, 2, 640)
    verdicts = [_config_accepts(h.name, v) for v in probes]
    assert verdicts == [_space_accepts(h.study_name, v) for v in probes]
    assert verdicts == [h.accepts(v) for v in probes]
    assert any(verdicts) and not all(verdicts)


@pytest.mark.parametrize(
    "name, value, config_message, space_message",
    [
        (
            "learning_rate",
            0,
            "train.learning_rate must be positive, not 0.0",
            "0 is not a valid lr (lr must be a positive number)",
        ),
        (
            "num_graph_layers_id",
            -1,
            "model.num_graph_layers_id must be >= 0, not -1",
            "-1 is not a valid num_graph_layers_id (num_graph_layers_id must be an integer >= 0)",
        ),
        (
            "dropout",
            1,
            "model.dropout must be in [0, 1), not 1.0",
            "1 is not a valid dropout (dropout must be a number in [0, 1))",
        ),
        (
            "bin_size",
            0,
            "model.bin_size must be positive, not 0",
            "0 is not a valid bin_size (bin_size must be a positive integer)",
        ),
        (
            "weight_decay",
            -1,
            "train.weight_decay must be >= 0, not -1.0",
            "-1 is not a valid weight_decay (weight_decay must be a number >= 0)",
        ),
    ],
)
def test_range_errors_name_the_value_and_the_range(name, value, config_message, space_message):
    with pytest.raises(UsageError) as config_error:
        with_hyperparameters(load_config(), **{name: value})
    assert str(config_error.value) == f"hyperparameters: {config_message}"
    with pytest.raises(SpaceError) as space_error:
        parse_space({by_name(name).study_name: {"sampler": "constant", "value": value}}, "probe", default_space())
    assert str(space_error.value) == f"probe: {by_name(name).study_name}: {space_message}"


def test_a_gpu_run_gets_the_gpu_defaults_under_the_users_file_and_overrides(tmp_path):
    from hepbench.mlpf.config import ConfigSource

    cpu, gpu = load_config(), load_config(device="gpu")
    assert (cpu.data.batch_size, cpu.train.precision, cpu.data.cache) == (2, "fp32", "none")
    assert (gpu.data.batch_size, gpu.train.precision, gpu.data.cache) == (32, "bf16", "memory")
    assert gpu.model == cpu.model and gpu.bench == cpu.bench  # only the GPU section's values differ
    user = tmp_path / "user.yaml"
    user.write_text("train: {precision: fp32}\n")
    source = ConfigSource(user, ("data.batch_size=8",))
    mine = source.load("gpu")
    assert (mine.data.batch_size, mine.train.precision, mine.data.cache) == (8, "fp32", "memory")
    assert source.load("cpu") == source.load() == load_config(user, ["data.batch_size=8"])
    with pytest.raises(ValueError, match="device must be cpu, gpu or None, not 'tpu'"):
        load_config(device="tpu")
    with pytest.raises(UsageError, match="unknown key"):
        load_config(overrides=["gpu.data.batch_size=4"])  # the GPU section is defaults.yaml's, not a config key
