#!/usr/bin/env python
"""Horovod weak scaling on this machine: the same per-rank workload at 1, 2, ... ranks (Gloo,
localhost, 1 thread per rank), printing events/s per rank and the scaling efficiency

    efficiency(n) = train(n) / (n * train(1))

    python benchmarks/horovod_scaling.py DATA_DIR [--ranks 1,2] [--events 8] [--windows 2] [-- MORE RUN OPTIONS]

A thin wrapper over `hepbench scale` with the settings of the figure in docs/development.md ("Weak
scaling"); the reports, table and PNG stay in --out (default: a temporary directory).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from hepbench.mlpf.report.scaling import table
from hepbench.mlpf.run.scale import ScaleOptions, parse_ranks, run_scale


def main() -> int:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data_dir")
    parser.add_argument("--ranks", default="1,2")
    parser.add_argument("--events", type=int, default=8, help="training events per rank and window")
    parser.add_argument("--windows", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="hepbench-scaling-"))
    run_args = (
        "--data-dir",
        args.data_dir,
        "--threads",
        "1",
        "--events",
        str(args.events),
        "--windows",
        str(args.windows),
        *extra,
    )
    summary, code = run_scale(ScaleOptions(ranks=parse_ranks(args.ranks), results_dir=out, run_args=run_args))
    print(table(summary), end="")
    print(f"reports, scaling.png: {out}")
    return code


if __name__ == "__main__":
    sys.exit(main())
