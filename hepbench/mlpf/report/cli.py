"""`hepbench report ...`: validate, show and plot mlpf_summary.json files."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hepbench.core.schema import SCHEMA_FILE, ReportError, load_report, validation_errors
from hepbench.mlpf.report.show import format_report


def register(groups) -> None:
    report = groups.add_parser("report", help="validate, show and plot benchmark reports (mlpf_summary.json)")
    commands = report.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("validate", help="check reports against the packaged JSON Schema")
    p.add_argument("files", type=Path, nargs="+", metavar="FILE", help="report file(s)")
    p.set_defaults(func=_validate)

    p = commands.add_parser("show", help="print a report as text tables")
    p.add_argument("file", type=Path, metavar="FILE", help="report file")
    p.set_defaults(func=_show)

    p = commands.add_parser("plot", help="plot per-window training throughput of every copy (PNG)")
    p.add_argument("file", type=Path, metavar="FILE", help="report file")
    p.add_argument("-o", "--out", type=Path, help="output PNG (default: <report stem>_throughput.png beside the report)")
    p.set_defaults(func=_plot)


def _validate(args: argparse.Namespace) -> int:
    # Every file is checked and reported; the exit code is 1 if any of them failed.
    failed = 0
    for path in args.files:
        try:
            errors = validation_errors(load_report(path))
        except ReportError as e:
            print(f"{e}", file=sys.stderr)
            failed += 1
            continue
        if errors:
            failed += 1
            print(f"{path}: invalid ({SCHEMA_FILE}), {len(errors)} problem{'s' * (len(errors) != 1)}:", file=sys.stderr)
            for line in errors:
                print(f"  {line}", file=sys.stderr)
        else:
            print(f"{path}: valid ({SCHEMA_FILE})")
    return 1 if failed else 0


def _show(args: argparse.Namespace) -> int:
    print(format_report(load_report(args.file)))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from hepbench.mlpf.report.plot import plot_throughput  # here: matplotlib, which `hepbench --help` does not need

    out = args.out or args.file.with_name(f"{args.file.stem}_throughput.png")
    print(plot_throughput(load_report(args.file), out, source=str(args.file)))
    return 0
