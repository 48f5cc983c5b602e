"""`hepbench hpo run`: a real Ray Tune search of MLPF hyperparameters."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hepbench.core.cliargs import finite_float, non_negative_int, positive_float, positive_int
from hepbench.core.files import check_writable_dir
from hepbench.hpo.extra import require_extra
from hepbench.hpo.schedulers import DEFAULT_GRACE_PERIOD, PREDICTORS, SCHEDULERS, SchedulerSettings
from hepbench.hpo.search import SearchConfig, run_search
from hepbench.hpo.space import load_space
from hepbench.hpo.trials import write_search
from hepbench.mlpf.config import load_config
from hepbench.mlpf.data.built import DATA_DIR_ENV, DEFAULT_DATA_DIR, default_data_dir
from hepbench.mlpf.engines.backends import BACKEND_ENV, BACKENDS, DEFAULT_BACKEND, require_backend, resolve_backend


def scheduler_name(text: str) -> str:
    if text not in SCHEDULERS:
        raise argparse.ArgumentTypeError(f"unknown scheduler {text!r}; choose from {', '.join(SCHEDULERS)}")
    return text


def add_search_arguments(p: argparse.ArgumentParser, defaults: SchedulerSettings) -> None:
    """Scheduler and resource options shared by `hpo run` (and the settings `hpo bench` fixes)."""
    p.add_argument(
        "--scheduler",
        type=scheduler_name,
        default="asha",
        metavar="NAME",
        help=f"{' | '.join(SCHEDULERS)} (default asha)",
    )
    p.add_argument("--num-samples", type=positive_int, default=16, metavar="N", help="trials (default 16)")
    p.add_argument(
        "--max-epochs",
        type=positive_int,
        default=defaults.max_t,
        metavar="M",
        help=f"epochs a trial may run: the schedulers' max_t (default {defaults.max_t})",
    )
    p.add_argument(
        "--grace-period",
        type=positive_int,
        metavar="G",
        help=f"epochs before the first stop (ASHA, predictive; default min({DEFAULT_GRACE_PERIOD}, M))",
    )
    p.add_argument(
        "--reduction-factor",
        type=positive_float,
        default=defaults.reduction_factor,
        metavar="R",
        help=f"1/R of the trials go on at each rung (default {defaults.reduction_factor:g})",
    )
    p.add_argument(
        "--quantile",
        type=positive_float,
        default=defaults.quantile,
        metavar="Q",
        help=f"predictive: stop when predicted worse than this quantile of completed trials "
        f"(default {defaults.quantile:g})",
    )
    p.add_argument(
        "--predictor",
        choices=PREDICTORS,
        default=defaults.predictor,
        help=f"predictive: final-loss predictor (default {defaults.predictor}; qsvr needs the qsvr extra)",
    )
    p.add_argument(
        "--min-curves",
        type=positive_int,
        default=defaults.min_curves,
        metavar="N",
        help=f"predictive: completed trials before predictions replace ASHA's rule (default {defaults.min_curves})",
    )
    p.add_argument(
        "--cpus-per-trial",
        type=positive_float,
        default=1.0,
        metavar="C",
        help="CPUs per trial (also its TensorFlow threads; default 1)",
    )
    p.add_argument(
        "--gpus-per-trial",
        type=non_negative_float,
        default=0.0,
        metavar="G",
        help="GPUs per trial; fractions share a GPU (default 0)",
    )
    p.add_argument(
        "--address",
        metavar="ADDR",
        help="join a running Ray cluster (HOST:PORT or auto) instead of starting a local instance",
    )
    p.add_argument("--num-cpus", type=positive_int, metavar="N", help="CPUs of the local Ray instance (default: all)")
    p.add_argument(
        "--seed", type=non_negative_int, default=defaults.seed, help=f"search seed (default {defaults.seed})"
    )


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help=f"built delphes_pf data set (default: ${DATA_DIR_ENV} or {DEFAULT_DATA_DIR})",
    )
    p.add_argument("--train-events", type=positive_int, metavar="E", help="training events per epoch (default: all)")
    p.add_argument("--val-events", type=positive_int, metavar="V", help="validation events (default: all test events)")
    p.add_argument(
        "--space",
        type=Path,
        metavar="YAML",
        help="search-space entries replacing the packaged ones (hepbench/hpo/search_space.yaml)",
    )
    p.add_argument(
        "--no-graph-optimizer",
        dest="graph_optimizer",
        action="store_false",
        help="skip TensorFlow's graph optimisation of each trial's steps (saves ~20 s per trial of start-up "
        "on 2 CPU cores; the steps may run slower)",
    )
    p.add_argument("--config", type=Path, help="YAML overriding hepbench's defaults for what the space does not set")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one configuration value (repeatable)",
    )


def data_dir(args) -> Path:
    return args.data_dir or default_data_dir()


def settings_from_args(args) -> SchedulerSettings:
    return SchedulerSettings(
        max_t=args.max_epochs,
        grace_period=args.grace_period,
        reduction_factor=args.reduction_factor,
        seed=args.seed,
        quantile=args.quantile,
        min_curves=args.min_curves,
        predictor=args.predictor,
    )


def register(commands) -> None:
    p = commands.add_parser(
        "run",
        help="search MLPF hyperparameters with Ray Tune, stopping bad trials early",
        description="Train MLPF trials with hyperparameters from the study's search space on a "
        "local Ray instance or a cluster (--address); write hpo_trials.csv (the "
        "learning-curve table layout), hpo_trials.json, best_config.json and "
        "hpo_curves.png.",
    )
    p.add_argument(
        "-w",
        "--resultsdir",
        type=Path,
        default=Path("results-hpo"),
        metavar="DIR",
        help="where the results go (default: results-hpo); Ray's trial files go to DIR/ray",
    )
    add_search_arguments(p, SchedulerSettings())
    add_data_arguments(p)
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help=f"the engine the trials train on (default: ${BACKEND_ENV}, else {DEFAULT_BACKEND})",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no per-epoch lines")
    p.set_defaults(func=_run)


def search_config(args, **fixed):
    """SearchConfig from parsed options (`fixed` overrides: what `hpo bench` does not let users change)."""
    values = dict(
        data_dir=data_dir(args),
        resultsdir=args.resultsdir,
        base=load_config(args.config, args.set),
        scheduler=args.scheduler,
        num_samples=args.num_samples,
        settings=settings_from_args(args),
        space=load_space(args.space),
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        address=args.address,
        num_cpus=args.num_cpus,
        train_events=args.train_events,
        val_events=args.val_events,
        graph_optimizer=args.graph_optimizer,
        quiet=args.quiet,
        backend=resolve_backend(args.backend),
    )
    values.update(fixed)
    return SearchConfig(**values)


def _run(args) -> int:
    require_extra()
    cfg = search_config(args)
    require_backend(cfg.backend)
    check_writable_dir(Path(args.resultsdir), "--resultsdir")

    result = run_search(cfg)
    doc = write_search(result, cfg, args.resultsdir)
    counts = doc["counts"]
    print(
        f"hpo {cfg.scheduler}: {len(result.trials)} trials ({counts['completed']} completed, {counts['stopped']} "
        f"stopped, {counts['error']} failed), {doc['epochs']} epochs in {result.seconds:.0f} s"
    )
    best = doc["best"]
    if best is None:
        print("no trial ran all epochs: no best configuration (see hpo_trials.json)")
        return 1
    print(f"best: val_loss {best['final_loss']:.6g} after {best['epochs']} epochs: {best['config']}")
    print(f"results in {args.resultsdir}", file=sys.stderr)
    return 0
