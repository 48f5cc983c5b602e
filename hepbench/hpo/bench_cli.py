"""`hepbench hpo bench`: the hpo-bmk HEPscore workload (hepbench.hpo.bench)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hepbench.core.cliargs import non_negative_int, positive_float, positive_int
from hepbench.core.files import check_writable_dir
from hepbench.hpo.bench import EPOCHS, SCHEDULER, BenchOptions, run_bench, score_line
from hepbench.hpo.extra import require_extra
from hepbench.hpo.run_cli import data_dir


def register(commands) -> None:
    p = commands.add_parser(
        "bench",
        help="the hpo-bmk HEPscore workload: a short fixed ASHA search -> hpo_summary.json",
        description=f"A seeded {SCHEDULER.upper()} search of MLPF (at most {EPOCHS} epochs per trial) "
        "on a local Ray instance, timed for HEPscore: wl-scores.trial_epochs_per_hour "
        "(main) and events_per_second.",
    )
    p.add_argument(
        "-w",
        "--resultsdir",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="where hpo_summary.json (and the search's files) go (default: results)",
    )
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="built delphes_pf data set (default: as hepbench run)")
    p.add_argument("--trials", type=positive_int, default=8, metavar="N", help="trials (default 8)")
    p.add_argument("--cpus-per-trial", type=positive_float, default=1.0, metavar="C", help="CPUs per trial (default 1)")
    p.add_argument("--num-cpus", type=positive_int, metavar="N", help="CPUs of the local Ray instance (default: all)")
    p.add_argument("--seed", type=non_negative_int, default=42, help="search seed (default 42)")
    p.add_argument("--config", type=Path, help="YAML overriding hepbench's defaults (recorded in the summary)")
    p.add_argument("--extra-arguments", default="", help=argparse.SUPPRESS)  # the driver records its own
    p.add_argument("-q", "--quiet", action="store_true", help="print only the score line")
    p.set_defaults(func=_bench)


def _bench(args) -> int:
    require_extra()
    check_writable_dir(Path(args.resultsdir), "--resultsdir")
    options = BenchOptions(
        data_dir=data_dir(args),
        results_dir=args.resultsdir,
        trials=args.trials,
        cpus_per_trial=args.cpus_per_trial,
        num_cpus=args.num_cpus,
        seed=args.seed,
        config=args.config,
        extra_arguments=args.extra_arguments,
        command=("hepbench", "hpo", "bench", *sys.argv[3:]),
    )
    summary, code = run_bench(options)
    print(score_line(summary))
    return code
