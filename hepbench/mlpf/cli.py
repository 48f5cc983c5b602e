"""The MLPF workload's sub-commands: run, scale, data, model and report."""

from __future__ import annotations

from hepbench.mlpf.data import cli as data_cli
from hepbench.mlpf.model import cli as model_cli
from hepbench.mlpf.report import cli as report_cli
from hepbench.mlpf.run import cli as run_cli
from hepbench.mlpf.run import scale_cli


def register(groups) -> None:
    """Add the MLPF groups to `hepbench`'s sub-parsers, in the order `hepbench --help` lists them."""
    run_cli.register(groups)
    scale_cli.register(groups)
    data_cli.register(groups)
    model_cli.register(groups)
    report_cli.register(groups)
