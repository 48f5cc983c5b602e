"""The `hepbench` command: a thin argparse layer over the library; errors become exit codes."""
from __future__ import annotations

import argparse
import os
import sys

from hepbench import __version__
from hepbench.errors import HepbenchError


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from hepbench.data import cli as data_cli

    parser = argparse.ArgumentParser(prog="hepbench", description="MLPF training benchmark for HEPscore.")
    parser.add_argument("--version", action="version", version=f"hepbench {__version__}")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    data_cli.register(groups)
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
