"""The `hepbench` command: a thin argparse layer over the library; errors become exit codes.

Each workload registers its own sub-commands: hepbench.mlpf.cli (run, scale, data, model,
report), hepbench.qsvr.cli (qsvr) and hepbench.hpo.cli (hpo). None of them imports TensorFlow,
Ray, scikit-learn or dimod before one of its commands runs, so `hepbench --help` starts quickly.
"""

from __future__ import annotations

import argparse
import os
import sys

from hepbench import __version__
from hepbench.core.errors import HepbenchError
from hepbench.hpo import cli as hpo_cli
from hepbench.mlpf import cli as mlpf_cli
from hepbench.qsvr import cli as qsvr_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hepbench", description="MLPF training benchmark for HEPscore.")
    parser.add_argument("--version", action="version", version=f"hepbench {__version__}")
    groups = parser.add_subparsers(dest="group", required=True, metavar="GROUP")
    mlpf_cli.register(groups)
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
