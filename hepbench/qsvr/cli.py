"""`hepbench qsvr ...`: the SVR/QSVR performance-prediction study (study), the qsvr-bmk workload
(bench), Baker's predictor (baker).

Nothing heavy is imported here: scikit-learn, dimod and dwave-samplers (the `qsvr` extra) are
loaded by the commands, so `hepbench --help` and the MLPF benchmark never need them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hepbench.core.cliargs import finite_float, non_negative_int, positive_float, positive_int
from hepbench.core.errors import MissingExtra, UsageError
from hepbench.core.errors import require_extra as require_extra_modules
from hepbench.core.hostinfo import command_line, extra_arguments

EXTRA_MODULES = ("sklearn", "dimod", "dwave.samplers")
TOKEN_VARIABLE = "DWAVE_API_TOKEN"


def require_extra() -> None:
    require_extra_modules("qsvr", EXTRA_MODULES, "the qsvr commands")


def require_sampler(sampler: str) -> None:
    """The D-Wave sampler needs dwave-system and a token: check before any work (never print the token)."""
    if sampler != "dwave":
        return
    if not os.environ.get(TOKEN_VARIABLE, "").strip():
        raise UsageError(f"--sampler dwave needs a D-Wave Leap API token in the environment variable {TOKEN_VARIABLE}")
    try:
        import dwave.system  # noqa: F401
    except ImportError:
        raise MissingExtra("--sampler dwave needs the `dwave` extra: pip install 'hepbench[qsvr,dwave]'") from None


def register(groups) -> None:
    qsvr = groups.add_parser(
        "qsvr",
        help="SVR and quantum SVR prediction of MLPF final losses (needs the qsvr extra)",
        description="Predict the final loss of MLPF trainings from their early learning curve "
        "with SVR and QSVR (the SVR dual as a QUBO, annealed).",
    )
    commands = qsvr.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data_help = "learning-curve CSV (default: the packaged study table)"

    p = commands.add_parser(
        "study",
        help="the study's protocol: SVR x1000, Sim-QSVR x100, ensemble x10",
        description="Run the study's protocol in two scaling variants (published: scalers fitted "
        "on all curves; leak-free: on the training curves) and write qsvr_study.json, "
        "qsvr_study.md and qsvr_study.png.",
    )
    p.add_argument("--data", type=Path, metavar="CSV", help=data_help)
    p.add_argument(
        "-w",
        "--resultsdir",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="where the JSON, markdown and PNG go (default: results)",
    )
    p.add_argument("--svr-repeats", type=positive_int, default=1000, metavar="N", help="SVR fits (default 1000)")
    p.add_argument("--qsvr-repeats", type=positive_int, default=100, metavar="N", help="QSVR fits (default 100)")
    p.add_argument(
        "--ensemble-repeats", type=positive_int, default=10, metavar="N", help="QSVR-ensemble fits (default 10)"
    )
    p.add_argument(
        "--r2-convention",
        choices=("correct", "swapped"),
        default="correct",
        help="headline R²: correct = r2_score(y_true, y_pred), swapped = r2_score(y_pred, y_true) as "
        "published (both are always recorded)",
    )
    p.add_argument("--seed", type=non_negative_int, default=0, help="study seed (default 0)")
    p.add_argument(
        "--sampler",
        choices=("simulated", "dwave"),
        default="simulated",
        help=f"QUBO sampler (dwave: D-Wave hardware, needs ${TOKEN_VARIABLE} and the dwave extra)",
    )
    p.add_argument("--num-reads", type=positive_int, metavar="N", help="annealer reads per QSVR fit (default 1000)")
    p.add_argument("--num-sweeps", type=positive_int, metavar="N", help="sweeps per simulated-annealing read")
    p.add_argument("--bits", "-K", type=positive_int, metavar="K", help="bits per coefficient (default 3)")
    p.add_argument("--base", "-B", type=positive_float, metavar="B", help="encoding base (default 0.5)")
    p.add_argument(
        "--baker", action="store_true", help="also evaluate the Baker-style nu-SVR predictor (R² vs fraction)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_study)

    p = commands.add_parser(
        "bench",
        aliases=["run"],
        help="the qsvr-bmk HEPscore workload: timed Sim-QSVR fits -> qsvr_summary.json (`qsvr run`: its old name)",
        description="A fixed, short protocol (seeded Sim-QSVR fits on the learning-curve table) "
        "timed for HEPscore: wl-scores.fits_per_second (main) and mean_r2.",
    )
    p.add_argument(
        "-w",
        "--resultsdir",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="where qsvr_summary.json goes (default: results)",
    )
    p.add_argument("--fits", type=positive_int, default=20, metavar="N", help="timed QSVR fits (default 20)")
    p.add_argument("--svr-fits", type=positive_int, default=100, metavar="N", help="reference SVR fits (default 100)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed (default 0)")
    p.add_argument(
        "--sampler",
        choices=("simulated", "dwave"),
        default="simulated",
        help=f"QUBO sampler (dwave needs ${TOKEN_VARIABLE} and the dwave extra)",
    )
    p.add_argument("--data", type=Path, metavar="CSV", help=data_help)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the score line")
    p.set_defaults(func=_bench)

    p = commands.add_parser(
        "baker",
        help="Baker-style nu-SVR: R² of the final loss against the observed fraction",
        description="Fit one nu-SVR per observed fraction of the curve (Baker et al. 2017) and "
        "write qsvr_baker.json and qsvr_baker.png.",
    )
    p.add_argument("--data", type=Path, metavar="CSV", help=data_help)
    p.add_argument(
        "-w",
        "--resultsdir",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="where qsvr_baker.json and qsvr_baker.png go (default: results)",
    )
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the splits (default 0)")
    p.add_argument("--repeats", type=positive_int, metavar="N", help="random train/test splits (default 10)")
    p.add_argument(
        "--fractions",
        type=fraction_list,
        metavar="F,F,...",
        help="observed fractions of the curve, each in (0, 1] (default 0.1,0.25,0.5,0.75)",
    )
    p.add_argument(
        "--test-size",
        type=test_part,
        metavar="X",
        help="test part: a fraction in (0, 1) or a number of curves (default 0.2: 236/59)",
    )
    p.set_defaults(func=_baker)


def fraction_list(text: str) -> tuple[float, ...]:
    try:
        values = tuple(finite_float(part) for part in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers in (0, 1], got {text!r}") from None
    if not all(0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"each fraction must be in (0, 1], got {text!r}")
    return values


def test_part(text: str):
    if text.isdigit():
        return int(text)
    value = finite_float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1) or a number of curves, got {text!r}")
    return value


def _study(args: argparse.Namespace) -> int:
    require_extra()
    require_sampler(args.sampler)
    from hepbench.qsvr.study_runner import run_study_command  # scikit-learn, dimod: after the check above

    qsvr = {
        key: value
        for key, value in (
            ("num_reads", args.num_reads),
            ("num_sweeps", args.num_sweeps),
            ("K", args.bits),
            ("B", args.base),
        )
        if value is not None
    }
    paths, table = run_study_command(args, qsvr)
    if not args.quiet:
        print(table)
    for path in paths.values():
        print(f"wrote {path}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    require_extra()
    require_sampler(args.sampler)
    # Here: the workload loads scikit-learn and dimod (the qsvr extra), checked just above.
    from hepbench.qsvr.workload import WorkloadOptions, run_workload, score_line

    options = WorkloadOptions(
        results_dir=args.resultsdir,
        fits=args.fits,
        svr_fits=args.svr_fits,
        seed=args.seed,
        sampler=args.sampler,
        data=args.data,
        extra_arguments=extra_arguments(),
        command=tuple(command_line()),
    )
    summary, code = run_workload(options)
    print(score_line(summary))
    if not args.quiet and code == 0:
        print(f"wrote {args.resultsdir / 'qsvr_summary.json'}", file=sys.stderr)
    return code


def _baker(args: argparse.Namespace) -> int:
    require_extra()
    from hepbench.qsvr.study_runner import run_baker_command  # scikit-learn: after the check above

    for path in run_baker_command(args):
        print(f"wrote {path}")
    return 0
