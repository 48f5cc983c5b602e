"""`hepbench hpo ...`: Ray Tune searches of MLPF, replay of recorded learning curves, the hpo-bmk workload.

Nothing heavy is imported here: Ray, hpbandster, ConfigSpace and scikit-learn (the `hpo` extra)
and TensorFlow are loaded by the commands, so `hepbench --help` never needs them.
"""

from __future__ import annotations

from hepbench.hpo import bench_cli, replay_cli, run_cli


def register(groups) -> None:
    hpo = groups.add_parser(
        "hpo",
        help="hyperparameter optimisation of MLPF with Ray Tune (needs the hpo extra)",
        description="Search MLPF hyperparameters with Ray Tune, stopping bad trials early "
        "(ASHA, Hyperband, BOHB, or a prediction of the final loss).",
    )
    commands = hpo.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_cli.register(commands)
    replay_cli.register(commands)
    bench_cli.register(commands)
