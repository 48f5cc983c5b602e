"""The MLPF configuration on the command line: `--config FILE`, `--set section.key=value`,
`--precision` and one option per study hyperparameter (hepbench.core.hyperparameters).

`add_config_arguments` adds them to a sub-command's parser; `config_from_args` turns the parsed
options into a `Config` through `load_config`, so a bad value gets the same error as in a file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hepbench.core.cliargs import finite_float
from hepbench.core.hyperparameters import HYPERPARAMETERS
from hepbench.mlpf.config import PRECISIONS, Config, ConfigSource


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--config FILE, --set section.key=value, --precision and the seven study hyperparameters."""
    group = parser.add_argument_group("configuration (defaults: hepbench/mlpf/defaults.yaml)")
    group.add_argument("--config", type=Path, help="YAML file overriding the packaged defaults")
    group.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one value, e.g. --set model.distance_dim=64 (repeatable)",
    )
    group.add_argument("--precision", choices=PRECISIONS, help="compute precision (train.precision)")
    for h in HYPERPARAMETERS:
        # Only the type here: the range is the config's to check, with the same message as in a file.
        group.add_argument(
            h.option, type=finite_float if h.type is float else int, dest=h.name, help=f"study hyperparameter {h.name}"
        )


def config_source_from_args(args: argparse.Namespace) -> ConfigSource:
    """--config, then --set, --precision and the hyperparameter options, over the packaged defaults."""
    overrides = list(args.set)
    if args.precision:
        overrides.append(f"train.precision={args.precision}")
    for h in HYPERPARAMETERS:
        value = getattr(args, h.name)
        if value is not None:
            overrides.append(f"{h.config_path}={value!r}")
    return ConfigSource(args.config, tuple(overrides))


def config_from_args(args: argparse.Namespace) -> Config:
    """The packaged defaults, then --config, then --set, --precision and the hyperparameter options."""
    return config_source_from_args(args).load()
