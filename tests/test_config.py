"""Typed configuration: packaged defaults, user files, overrides, and clear errors."""
from __future__ import annotations

import pytest

from hepbench.config import DataConfig, load_config, parse_override
from hepbench.errors import UsageError


def test_packaged_defaults_match_the_dataclass_defaults():
    # defaults.yaml is the one place for reference defaults; it must not drift from the code.
    assert load_config().data == DataConfig()
    assert load_config().data.bin_size == 640 and load_config().data.max_elements == 6400


def test_file_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  bin_size: 320\n  cache: memory\n")
    cfg = load_config(path, ["data.batch_size=4", "data.pad_to_max=true"])
    assert (cfg.data.bin_size, cfg.data.cache, cfg.data.batch_size, cfg.data.pad_to_max) == (320, "memory", 4, True)
    assert cfg.data.max_elements == 6400  # untouched keys keep their defaults


@pytest.mark.parametrize(
    "text, pattern",
    [
        ("data:\n  bin_sise: 3\n", r"c\.yaml: data: unknown key\(s\) \['bin_sise'\]"),
        ("data:\n  bin_size: big\n", r"c\.yaml: data\.bin_size: expected int, got str 'big'"),
        ("data:\n  pad_to_max: 1\n", r"data\.pad_to_max: expected bool, got int"),
        ("data: [1, 2]\n", r"c\.yaml: data: expected a mapping"),
        ("- 1\n", "expected a mapping at the top level"),
        ("data: {bin_size: 1\n", r"c\.yaml: not valid YAML"),
        ("model: {}\n", r"unknown key\(s\) \['model'\]"),
        ("data:\n  bin_size: 0\n", r"c\.yaml: data\.bin_size must be positive, not 0"),
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
        ("data.bin_size=0", "data.bin_size must be positive, not 0"),
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


def test_missing_file(tmp_path):
    with pytest.raises(UsageError, match="config file .*absent.yaml"):
        load_config(tmp_path / "absent.yaml")


def test_override_values_are_yaml():
    assert parse_override("data.seed=7") == {"data": {"seed": 7}}
    assert parse_override("data.cache=/tmp/x") == {"data": {"cache": "/tmp/x"}}
