"""The `hepbench` command: a thin argparse layer over the library; errors become exit codes."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hepbench import __version__
from hepbench.core.errors import HepbenchError


def _int_at_least(minimum: int, wording: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {wording}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {wording}, got {value}")
        return value

    return parse


positive_int = _int_at_least(1, "a positive integer")
non_negative_int = _int_at_least(0, "an integer >= 0")


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


# The study hyperparameters as options: (option, type, config key).
HYPERPARAMETER_OPTIONS = (
    ("--learning-rate", finite_float, "learning_rate"),
    ("--num-graph-layers-id", int, "num_graph_layers_id"),
    ("--num-graph-layers-reg", int, "num_graph_layers_reg"),
    ("--dropout", finite_float, "dropout"),
    ("--bin-size", int, "bin_size"),
    ("--output-dim", int, "output_dim"),
    ("--weight-decay", finite_float, "weight_decay"),
)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """--config FILE, --set section.key=value and the seven study hyperparameters."""
    group = parser.add_argument_group("configuration (defaults: hepbench/mlpf/defaults.yaml)")
    group.add_argument("--config", type=Path, help="YAML file overriding the packaged defaults")
    group.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override one value, e.g. --set model.distance_dim=64 (repeatable)")
    group.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help="compute precision (train.precision)")
    for option, kind, key in HYPERPARAMETER_OPTIONS:
        group.add_argument(option, type=kind, dest=key, help=f"study hyperparameter {key}")


def config_from_args(args: argparse.Namespace):
    from hepbench.mlpf.config import HYPERPARAMETERS, load_config

    overrides = list(args.set)
    if args.precision:
        overrides.append(f"train.precision={args.precision}")
    for _, _, key in HYPERPARAMETER_OPTIONS:
        value = getattr(args, key)
        if value is not None:
            overrides.append(f"{HYPERPARAMETERS[key]}={value!r}")
    return load_config(args.config, overrides)


def build_parser() -> argparse.ArgumentParser:
    from hepbench.mlpf.data import cli as data_cli
    from hepbench.hpo import cli as hpo_cli
    from hepbench.mlpf.model import cli as model_cli
    from hepbench.qsvr import cli as qsvr_cli
    from hepbench.mlpf.report import cli as report_cli
    from hepbench.mlpf.run import cli as run_cli

    parser = argparse.ArgumentParser(prog="hepbench", description="MLPF training benchmark for HEPscore.")
    parser.add_argument("--version", action="version", version=f"hepbench {__version__}")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    run_cli.register(groups)
    run_cli.register_scale(groups)
    data_cli.register(groups)
    model_cli.register(groups)
    report_cli.register(groups)
    qsvr_cli.register(groups)
    hpo_cli.register(groups)
    return parser


def main(argv: list[str] | None = None) -> int:
    # TensorFlow's C++ start-up chatter drowns the output that matters; users can lower this.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HepbenchError as e:
        print(f"hepbench: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("hepbench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
