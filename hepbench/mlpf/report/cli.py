"""`hepbench report ...`: validate, show, compare and plot benchmark summaries."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from hepbench.core.schema import SCHEMA_FILE, ReportError, load_report, validation_errors
from hepbench.core.terminal import emit
from hepbench.mlpf.report.compare import compare, load_entries
from hepbench.mlpf.report.show import report_document


def register(groups) -> None:
    report = groups.add_parser("report", help="validate, show and plot benchmark reports (mlpf_summary.json)")
    commands = report.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("validate", help="check reports against the packaged JSON Schema")
    p.add_argument("files", type=Path, nargs="+", metavar="FILE", help="report file(s)")
    p.set_defaults(func=_validate)

    p = commands.add_parser("show", help="print a report as text tables")
    p.add_argument("file", type=Path, metavar="FILE", help="report file")
    p.set_defaults(func=_show)

    p = commands.add_parser(
        "compare", help="reports side by side: scores, ratios, windows, energy and every difference"
    )
    p.add_argument(
        "files",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="two or more summaries (mlpf, qsvr or hpo); ratios are to the first",
    )
    p.add_argument("--plot", type=Path, metavar="FILE.png", help="also draw the scores with their intervals (PNG)")
    p.add_argument("--all", action="store_true", help="list every fact of the runs, not only those that differ")
    p.add_argument("--strict", action="store_true", help="exit 1 when the reports are not like for like")
    p.set_defaults(func=_compare)

    p = commands.add_parser("plot", help="plot per-window training throughput of every copy (PNG)")
    p.add_argument("file", type=Path, metavar="FILE", help="report file")
    p.add_argument(
        "-o", "--out", type=Path, help="output PNG (default: <report stem>_throughput.png beside the report)"
    )
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
    emit(report_document(load_report(args.file)))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from hepbench.mlpf.report.plot import plot_throughput  # here: matplotlib, which `hepbench --help` does not need

    out = args.out or args.file.with_name(f"{args.file.stem}_throughput.png")
    report = load_report(args.file)
    with _writing(out, "-o/--out"):
        print(plot_throughput(report, out, source=str(args.file)))
    return 0


@contextlib.contextmanager
def _writing(path: Path, option: str):
    """An unwritable plot path as a clear error naming the option and the file, not a traceback."""
    try:
        yield
    except OSError as e:
        raise ReportError(f"{option} {path}: cannot write the plot ({e.strerror or e})") from None


def _compare(args: argparse.Namespace) -> int:
    entries = load_entries(args.files)
    doc, problems = compare(entries, every_fact=args.all)
    if args.plot:
        from hepbench.mlpf.report.compare_plot import (
            plot_scores,  # here: matplotlib, which `hepbench --help` does not need
        )

        with _writing(args.plot, "--plot"):
            plot_scores(entries, args.plot, problems)
        doc = [*doc, "", f"plot: {args.plot}"]
    emit(doc)
    return 1 if args.strict and problems else 0
