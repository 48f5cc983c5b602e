"""`hepbench scale`: weak scaling with Horovod or PyTorch DDP from the command line (hepbench.mlpf.run.scale)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hepbench.core.cliargs import positive_float
from hepbench.core.terminal import emit
from hepbench.mlpf.report.scaling import table_document
from hepbench.mlpf.run.scale import LAUNCHERS, RDZV_PORT, ScaleOptions, parse_ranks, run_scale


def register(groups) -> None:
    p = groups.add_parser(
        "scale",
        help="weak scaling: hepbench run --strategy horovod (or ddp) at several job sizes",
        description="Run the same per-rank workload with 1, 2, ... ranks (one horovodrun call per size, or "
        "torchrun with --launcher torchrun: PyTorch DDP) and write scaling.txt, scaling.json and "
        "scaling.png (throughput and scaling efficiency) beside each size's report in RESULTSDIR/ranks-N.",
        epilog="example: hepbench scale --ranks 1,2,4 -w scaling -- --data-dir work/tfds-s0 --threads 1 --events 8",
    )
    p.add_argument("--ranks", default="1,2", help="job sizes, increasing (default: 1,2)")
    p.add_argument(
        "-w",
        "--resultsdir",
        type=Path,
        default=Path("results-scaling"),
        metavar="DIR",
        help="where the per-size reports and the scaling files go (default: results-scaling)",
    )
    p.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        default="gloo",
        help="horovodrun --gloo (default) or --mpi (TensorFlow, Horovod); torchrun (PyTorch DDP)",
    )
    p.add_argument(
        "-H",
        "--hosts",
        metavar="HOST:SLOTS,...",
        help="horovodrun -H (default: localhost:N); torchrun: one torchrun per host that gets a rank, "
        f"the first host's port {RDZV_PORT} the rendezvous, the others started over ssh "
        "(default: this host alone, torchrun --standalone)",
    )
    p.add_argument("--timeout", type=positive_float, metavar="SECONDS", help="give up on a size after this long")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the table")
    p.add_argument(
        "run_args",
        nargs=argparse.REMAINDER,
        metavar="-- RUN OPTIONS",
        help="options for every hepbench run (--data-dir, --threads, --events, --config, ...)",
    )
    p.set_defaults(func=_scale)


def _scale(args) -> int:
    run_args = args.run_args[1:] if args.run_args[:1] == ["--"] else args.run_args
    options = ScaleOptions(
        ranks=parse_ranks(args.ranks),
        results_dir=args.resultsdir,
        run_args=tuple(run_args),
        launcher=args.launcher,
        hosts=args.hosts,
        timeout=args.timeout,
        quiet=args.quiet,
    )
    summary, exit_code = run_scale(options)
    emit(table_document(summary))
    return exit_code
