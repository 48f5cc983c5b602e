"""`hepbench run`: the benchmark (HEPscore's `train` score) from the command line."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_DATA_DIR = "work/tfds-s0"  # where `make data` builds the default subset
DATA_DIR_ENV = "HEPBENCH_DATA_DIR"  # the container points this at its embedded subset
EXTRA_ARGUMENTS_ENV = "HEPBENCH_EXTRA_ARGUMENTS"  # entrypoint.sh: the --extra-args it passed on


def register(groups) -> None:
    from hepbench.cli import add_config_arguments, non_negative_int, positive_float, positive_int
    from hepbench.mlpf.run.benchmark import DEVICES, STRATEGIES

    p = groups.add_parser(
        "run", help="run the benchmark and write mlpf_summary.json",
        description="Train MLPF on the built data set, time it and write the HEPscore summary "
                    "(score: wl-scores.train, real training events/s summed over copies).",
    )
    p.add_argument("--data-dir", type=Path, default=None, metavar="DIR",
                   help=f"built delphes_pf data set (default: ${DATA_DIR_ENV} or {DEFAULT_DATA_DIR})")
    p.add_argument("-w", "--resultsdir", type=Path, default=Path("results"), metavar="DIR",
                   help="where mlpf_summary.json, version.json and inputs.log go (default: results)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto: a GPU if TensorFlow sees one")
    p.add_argument("-c", "--copies", type=positive_int, default=1, metavar="N",
                   help="independent training processes side by side (disjoint CPU sets, one GPU each)")
    p.add_argument("-t", "--threads", type=positive_int, metavar="N", help="TensorFlow threads per copy (default: its CPU set)")
    p.add_argument("-e", "--events", type=positive_int, metavar="N",
                   help="training events per copy and timed window (default: bench.cpu/gpu_events_per_window)")
    p.add_argument("--windows", type=positive_int, metavar="N", help="timed windows (bench.windows, default 3)")
    p.add_argument("--warmup-steps", type=non_negative_int, metavar="N", help="untimed steps before the first window")
    p.add_argument("--batch-size", type=positive_int, metavar="N", help="events per step and copy (data.batch_size)")
    p.add_argument("-n", "--ncores", type=positive_int, metavar="N",
                   help="use only the first N of the CPUs this process may use (split between the copies)")
    p.add_argument("--mllog", type=Path, metavar="FILE", help="also write MLPerf-style :::MLLOG lines to this file")
    p.add_argument("--keep-work", action="store_true",
                   help="keep the copies' specification and result files in RESULTSDIR/mlpf-work")
    p.add_argument("--strategy", choices=STRATEGIES, default="auto",
                   help="single: independent copies; mirrored: one process over several devices "
                        "(MirroredStrategy); horovod: this process is one rank of a horovodrun/mpirun/srun "
                        "job (auto: horovod when launched so, else single)")
    p.add_argument("--replicas", type=positive_int, metavar="N",
                   help="mirrored: devices to train on (default: every visible GPU; on a CPU, N logical "
                        "devices sharing its CPU set, default 1)")
    p.add_argument("--rank-timeout", type=positive_float, default=120.0, metavar="SECONDS",
                   help="horovod: a rank gives up (exit 1, failure report) after this long without a step")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the score")
    add_config_arguments(p)
    p.set_defaults(func=_run)


def register_scale(groups) -> None:
    from hepbench.cli import positive_float
    from hepbench.mlpf.run.scale import LAUNCHERS

    p = groups.add_parser(
        "scale", help="weak scaling: hepbench run --strategy horovod at several job sizes",
        description="Run the same per-rank workload with 1, 2, ... Horovod ranks (one horovodrun call per "
                    "size) and write scaling.txt, scaling.json and scaling.png (throughput and scaling "
                    "efficiency) beside each size's report in RESULTSDIR/ranks-N.",
        epilog="example: hepbench scale --ranks 1,2,4 -w scaling -- --data-dir work/tfds-s0 --threads 1 --events 8",
    )
    p.add_argument("--ranks", default="1,2", help="job sizes, increasing (default: 1,2)")
    p.add_argument("-w", "--resultsdir", type=Path, default=Path("results-scaling"), metavar="DIR",
                   help="where the per-size reports and the scaling files go (default: results-scaling)")
    p.add_argument("--launcher", choices=LAUNCHERS, default="gloo", help="horovodrun --gloo (default) or --mpi")
    p.add_argument("-H", "--hosts", metavar="HOST:SLOTS,...", help="horovodrun -H (default: localhost:N)")
    p.add_argument("--timeout", type=positive_float, metavar="SECONDS", help="give up on a size after this long")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the table")
    p.add_argument("run_args", nargs=argparse.REMAINDER, metavar="-- RUN OPTIONS",
                   help="options for every hepbench run (--data-dir, --threads, --events, --config, ...)")
    p.set_defaults(func=_scale)


def _scale(args) -> int:
    from hepbench.mlpf.report.scaling import table
    from hepbench.mlpf.run.scale import ScaleOptions, parse_ranks, run_scale

    run_args = args.run_args[1:] if args.run_args[:1] == ["--"] else args.run_args
    options = ScaleOptions(ranks=parse_ranks(args.ranks), results_dir=args.resultsdir, run_args=tuple(run_args),
                           launcher=args.launcher, hosts=args.hosts, timeout=args.timeout, quiet=args.quiet)
    summary, exit_code = run_scale(options)
    print(table(summary), end="")
    return exit_code


def _run(args) -> int:
    from hepbench.cli import config_from_args
    from hepbench.mlpf.report.summary import score_line
    from hepbench.mlpf.run.benchmark import RunOptions, run_benchmark

    for option, key in (("windows", "bench.windows"), ("warmup_steps", "bench.warmup_steps"),
                        ("batch_size", "data.batch_size")):
        if getattr(args, option) is not None:
            args.set.append(f"{key}={getattr(args, option)}")
    options = RunOptions(
        config=config_from_args(args),
        data_dir=args.data_dir or Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR),
        results_dir=args.resultsdir, device=args.device, copies=args.copies, threads=args.threads,
        events=args.events, ncores=args.ncores, mllog=args.mllog, keep_work=args.keep_work, quiet=args.quiet,
        extra_arguments=os.environ.get(EXTRA_ARGUMENTS_ENV, ""), strategy=args.strategy,
        rank_timeout=args.rank_timeout, replicas=args.replicas,
    )
    report, exit_code, _ = run_benchmark(options)
    if report is not None:  # None on Horovod ranks other than 0
        print(score_line(report))
    return exit_code
