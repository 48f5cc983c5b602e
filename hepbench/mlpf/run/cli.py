"""`hepbench run`: the benchmark (HEPscore's `train` score) from the command line.

`run_parser()` is the same parser on its own: `hepbench scale` checks its run options with it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hepbench.core.cliargs import non_negative_int, positive_float, positive_int
from hepbench.core.hostinfo import extra_arguments
from hepbench.mlpf.config import load_config
from hepbench.mlpf.config_cli import add_config_arguments, config_source_from_args
from hepbench.mlpf.data.built import DATA_DIR_ENV, DEFAULT_DATA_DIR, default_data_dir
from hepbench.mlpf.engines.backends import BACKEND_ENV, BACKENDS, DEFAULT_BACKEND, resolve_backend
from hepbench.mlpf.report.summary import score_line
from hepbench.mlpf.run.benchmark import run_benchmark
from hepbench.mlpf.run.plan import DEVICES, STRATEGIES, RunOptions

_HELP = "run the benchmark and write mlpf_summary.json"
_DESCRIPTION = (
    "Train MLPF on the built data set, time it and write the HEPscore summary "
    "(score: wl-scores.train, real training events/s summed over copies)."
)


def register(groups) -> None:
    p = groups.add_parser("run", help=_HELP, description=_DESCRIPTION)
    add_run_arguments(p)
    p.set_defaults(func=_run)


def run_parser() -> argparse.ArgumentParser:
    """The parser of `hepbench run` alone (its usage errors read as `hepbench run`'s)."""
    p = argparse.ArgumentParser(prog="hepbench run", description=_DESCRIPTION)
    add_run_arguments(p)
    return p


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    # Defaults are stated from defaults.yaml itself (the GPU ones with its `gpu:` section), so the help cannot drift.
    cpu, gpu = load_config(), load_config(device="gpu")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"built delphes_pf data set (default: ${DATA_DIR_ENV} or {DEFAULT_DATA_DIR})",
    )
    p.add_argument(
        "-w",
        "--resultsdir",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="where mlpf_summary.json, version.json and inputs.log go (default: results)",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help=f"the framework under the Keras model (default: ${BACKEND_ENV}, else {DEFAULT_BACKEND})",
    )
    p.add_argument("--device", choices=DEVICES, default="auto", help="auto: a GPU if the backend sees one")
    p.add_argument(
        "-c",
        "--copies",
        type=positive_int,
        default=1,
        metavar="N",
        help="independent training processes side by side (disjoint CPU sets, one GPU each)",
    )
    p.add_argument(
        "-t", "--threads", type=positive_int, metavar="N", help="framework threads per copy (default: its CPU set)"
    )
    p.add_argument(
        "-e",
        "--events",
        type=positive_int,
        metavar="N",
        help=f"training events per copy and timed window (bench.cpu/gpu_events_per_window; default "
        f"{cpu.bench.cpu_events_per_window} on a CPU, {gpu.bench.gpu_events_per_window} on a GPU)",
    )
    p.add_argument(
        "--windows", type=positive_int, metavar="N", help=f"timed windows (bench.windows, default {cpu.bench.windows})"
    )
    p.add_argument(
        "--warmup-steps",
        type=non_negative_int,
        metavar="N",
        help=f"untimed steps before the first window (bench.warmup_steps, default {cpu.bench.warmup_steps})",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="N",
        help=f"events per step and copy (data.batch_size; default {cpu.data.batch_size} on a CPU, "
        f"{gpu.data.batch_size} on a GPU)",
    )
    p.add_argument(
        "-n",
        "--ncores",
        type=positive_int,
        metavar="N",
        help="use only the first N of the CPUs this process may use (split between the copies)",
    )
    p.add_argument("--mllog", type=Path, metavar="FILE", help="also write MLPerf-style :::MLLOG lines to this file")
    p.add_argument(
        "--keep-work",
        action="store_true",
        help="keep the copies' specification and result files in RESULTSDIR/mlpf-work",
    )
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="auto",
        help="single: independent copies; mirrored: one process over several devices "
        "(tensorflow: MirroredStrategy, jax: keras.distribution.DataParallel); horovod "
        "(tensorflow), ddp (torch): this process is one rank of a horovodrun/mpirun/srun or "
        "torchrun/srun job (auto: horovod or ddp when launched so, else single)",
    )
    p.add_argument(
        "--replicas",
        type=positive_int,
        metavar="N",
        help="mirrored: devices to train on (default: every visible GPU; on a CPU, N logical "
        "devices sharing its CPU set, default 1)",
    )
    p.add_argument(
        "--rank-timeout",
        type=positive_float,
        default=120.0,
        metavar="SECONDS",
        help="horovod, ddp: a rank gives up (exit 1, failure report) after this long without a step",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only the score")
    add_config_arguments(p)


def _run(args) -> int:
    for option, key in (
        ("windows", "bench.windows"),
        ("warmup_steps", "bench.warmup_steps"),
        ("batch_size", "data.batch_size"),
    ):
        if getattr(args, option) is not None:
            args.set.append(f"{key}={getattr(args, option)}")
    source = config_source_from_args(args)
    options = RunOptions(
        config=source.load(),
        config_source=source,
        data_dir=args.data_dir or default_data_dir(),
        results_dir=args.resultsdir,
        device=args.device,
        copies=args.copies,
        threads=args.threads,
        events=args.events,
        ncores=args.ncores,
        mllog=args.mllog,
        keep_work=args.keep_work,
        quiet=args.quiet,
        extra_arguments=extra_arguments(),
        backend=resolve_backend(args.backend),
        strategy=args.strategy,
        rank_timeout=args.rank_timeout,
        replicas=args.replicas,
    )
    report, exit_code, _ = run_benchmark(options)
    if report is not None:  # None on ranks other than 0
        print(score_line(report))
    return exit_code
