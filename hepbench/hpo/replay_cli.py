"""`hepbench hpo replay`: compare schedulers by replaying recorded learning curves through Ray Tune
(a trainable that reads the next epoch from the table instead of training)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hepbench.core.cliargs import finite_float, non_negative_int, positive_float, positive_int
from hepbench.core.errors import UsageError
from hepbench.hpo.extra import require_extra
from hepbench.hpo.replay_report import compare, table, write
from hepbench.hpo.schedulers import SCHEDULERS as SCHEDULER_NAMES  # no Ray at import
from hepbench.hpo.schedulers import SchedulerSettings
from hepbench.qsvr.curves import load_curves


def scheduler_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in SCHEDULER_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown scheduler(s) {', '.join(map(repr, unknown)) or repr(text)}; "
            f"choose from {', '.join(SCHEDULER_NAMES)} (comma-separated)"
        )
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"scheduler repeated in {text!r}")
    return names


def quantile(text: str) -> float:
    value = finite_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text!r}")
    return value


def register(commands) -> None:
    p = commands.add_parser(
        "replay",
        help="compare schedulers by replaying recorded learning curves (no training)",
        description="Replay the recorded MLPF learning curves through Ray Tune schedulers, one trial at a time in a "
        "seeded order, and report per scheduler the epochs consumed, the best final loss found and its "
        "rank among all curves, over several seeds. Writes hpo_replay.json, hpo_replay.md and "
        "hpo_replay.png.",
    )
    p.add_argument("--data", type=Path, metavar="CSV", help="learning-curve CSV (default: the packaged study table)")
    p.add_argument(
        "--scheduler",
        type=scheduler_list,
        default=("predictive", "hyperband", "asha"),
        metavar="NAME[,NAME...]",
        help=f"schedulers to compare, from {', '.join(SCHEDULER_NAMES)} (default: predictive,hyperband,asha)",
    )
    p.add_argument(
        "--seeds", type=positive_int, default=5, metavar="K", help="seeds (trial orders) per scheduler (default 5)"
    )
    p.add_argument("--first-seed", type=non_negative_int, default=0, metavar="S", help="first seed (default 0)")
    p.add_argument("--num-samples", type=positive_int, metavar="N", help="curves replayed per run (default: all)")
    p.add_argument(
        "--max-t", type=positive_int, metavar="T", help="epochs a trial may run (default: the table's length)"
    )
    p.add_argument(
        "--grace-period",
        type=positive_int,
        default=5,
        metavar="G",
        help="epochs before the first decision (ASHA, predictive; default 5)",
    )
    p.add_argument(
        "--reduction-factor", type=positive_float, default=4, metavar="R", help="rung spacing and cut (default 4)"
    )
    p.add_argument(
        "--quantile",
        type=quantile,
        default=0.25,
        metavar="Q",
        help="predictive: stop when the predicted final loss is worse than this quantile of the completed "
        "trials' (default 0.25)",
    )
    p.add_argument(
        "--min-curves",
        type=positive_int,
        default=8,
        metavar="N",
        help="predictive: completed curves before predictions replace ASHA's rule (default 8)",
    )
    p.add_argument(
        "--predictor",
        choices=("svr", "qsvr"),
        default="svr",
        help="predictive: svr (scikit-learn) or qsvr (needs the qsvr extra)",
    )
    p.add_argument(
        "-w",
        "--resultsdir",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="where the JSON, markdown and PNG go (default: results)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_replay)


def _replay(args: argparse.Namespace) -> int:
    require_extra()
    curves = load_curves(args.data)
    max_t = args.max_t or curves.epochs
    if max_t > curves.epochs:
        raise UsageError(f"--max-t {max_t}: {curves.source} records only {curves.epochs} epochs per curve")
    if args.num_samples and args.num_samples > len(curves):
        raise UsageError(f"--num-samples {args.num_samples}: {curves.source} has only {len(curves)} curves")
    try:
        settings = SchedulerSettings(
            max_t=max_t,
            grace_period=args.grace_period,
            reduction_factor=args.reduction_factor,
            seed=args.first_seed,
            quantile=args.quantile,
            min_curves=args.min_curves,
            predictor=args.predictor,
        )
    except UsageError as e:
        raise UsageError(f"hpo replay: {e} (see --max-t, --grace-period, --reduction-factor, --min-curves)") from None
    report = compare(
        curves,
        args.scheduler,
        settings,
        range(args.first_seed, args.first_seed + args.seeds),
        num_samples=args.num_samples,
        progress=None if args.quiet else sys.stderr,
    )
    paths = write(report, args.resultsdir)
    if not args.quiet:
        print(table(report))
    for path in paths.values():
        print(f"wrote {path}")
    return 0
