"""Replay of the shared learning-curve table through Ray Tune: determinism per seed, what is counted,
the comparison report and the CLI. Short replays (a subset of the curves, max_t 12) on the one-CPU
Ray instance of tests/hpo/conftest.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("ray.tune")

from hepbench.cli import main  # noqa: E402
from hepbench.core.errors import UsageError  # noqa: E402
from hepbench.core.hyperparameters import CSV_COLUMN_ORDER  # noqa: E402
from hepbench.hpo.nearest import NearestCurve  # noqa: E402
from hepbench.hpo.replay import pause_points, replay, trial_order  # noqa: E402
from hepbench.hpo.schedulers import SchedulerSettings, make_scheduler  # noqa: E402
from hepbench.hpo.space import CSV_COLUMNS, load_space  # noqa: E402
from hepbench.qsvr.curves import load_curves  # noqa: E402

MAX_T = 12
SETTINGS = SchedulerSettings(max_t=MAX_T, grace_period=2, reduction_factor=2, quantile=0.3, min_curves=3)


@pytest.fixture(scope="module")
def curves():
    return load_curves()


def same_run(a, b):
    return (a.epochs_per_trial, a.curve_per_trial, a.decisions, a.best_final) == (
        b.epochs_per_trial,
        b.curve_per_trial,
        b.decisions,
        b.best_final,
    )


def test_predictive_replay_is_deterministic_per_seed(ray_local, curves):
    a = replay(curves, "predictive", SETTINGS, seed=1, num_samples=30)
    b = replay(curves, "predictive", SETTINGS, seed=1, num_samples=30)
    c = replay(curves, "predictive", SETTINGS, seed=2, num_samples=30)
    assert same_run(a, b)
    assert a.curve_per_trial == trial_order(len(curves), 1, 30)  # trials start in the seeded order
    assert c.curve_per_trial == trial_order(len(curves), 2, 30) != a.curve_per_trial
    assert {d["rule"] for d in a.decisions} == {"asha", "predicted"}
    assert any(d["action"] == "stop" and d["rule"] == "predicted" for d in a.decisions)
    # What is counted: each trial's epochs, the best among trials that reached max_t, its rank.
    assert a.epochs == sum(a.epochs_per_trial) < 30 * MAX_T
    assert all(1 <= e <= MAX_T for e in a.epochs_per_trial)
    finals = curves.losses[:, MAX_T - 1]
    reached = [k for k, e in zip(a.curve_per_trial, a.epochs_per_trial) if e == MAX_T]
    assert a.completed == len(reached) and a.stopped == 30 - len(reached)
    assert a.best_final == pytest.approx(finals[reached].min())
    assert a.rank == 1 + int(np.sum(finals < finals[reached].min()))


def test_hyperband_pauses_resume_without_repeating_epochs(ray_local, curves):
    a = replay(curves, "hyperband", SETTINGS, seed=5, num_samples=30)
    b = replay(curves, "hyperband", SETTINGS, seed=5, num_samples=30)
    assert same_run(a, b) and a.restarts == 0
    assert a.completed >= 1 and a.stopped >= 1  # some trials paused, went on to max_t
    assert sorted(a.curve_per_trial) == sorted(trial_order(len(curves), 5, 30))


def test_pause_points_are_hyperbands_budgets():
    s = make_scheduler("hyperband", SchedulerSettings(max_t=100, reduction_factor=4))
    assert sorted(pause_points(s, 100)) == [1, 4, 6, 16, 24, 25, 64, 96, 100]


def test_fifo_runs_every_curve_to_the_end(ray_local, curves):
    run = replay(curves, "fifo", SETTINGS, seed=0, num_samples=10)
    rows = trial_order(len(curves), 0, 10)
    assert run.epochs == 10 * MAX_T and run.completed == 10 and run.stopped == 0
    assert run.best_curve == rows[int(np.argmin(curves.losses[rows, MAX_T - 1]))]


def test_bohb_replays_the_nearest_recorded_curves(ray_local, curves):
    a = replay(curves, "bohb", SETTINGS, seed=3, num_samples=10)
    b = replay(curves, "bohb", SETTINGS, seed=3, num_samples=10)
    assert a.trials == 10 and a.restarts == 0
    assert all(0 <= k < len(curves) for k in a.curve_per_trial)
    assert (a.curve_per_trial, a.epochs_per_trial) == (b.curve_per_trial, b.epochs_per_trial)


def test_nearest_curve_maps_a_recorded_configuration_to_its_row(curves):
    nearest = NearestCurve(load_space(), curves)
    for row in (0, 17, 295):
        config = {name: curves.hyperparameters[row, CSV_COLUMN_ORDER.index(col)] for name, col in CSV_COLUMNS.items()}
        found = nearest(config)
        assert np.array_equal(curves.hyperparameters[found], curves.hyperparameters[row])
    # lr is compared on a log scale: a tenfold lr is far, a 1 % change is not
    config = {name: curves.hyperparameters[17, CSV_COLUMN_ORDER.index(col)] for name, col in CSV_COLUMNS.items()}
    assert nearest({**config, "lr": config["lr"] * 1.01}) == nearest(config)


def test_unknown_scheduler_and_bad_settings_are_usage_errors(curves):
    with pytest.raises(UsageError, match="unknown scheduler 'pbt'"):
        replay(curves, "pbt", SETTINGS)
    with pytest.raises(UsageError, match="max epochs 150 exceeds the 100 epochs"):
        replay(curves, "asha", SchedulerSettings(max_t=150), seed=0)


def test_cli_unknown_scheduler_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main(["hpo", "replay", "--scheduler", "asha,pbt"])
    assert e.value.code == 2
    assert "unknown scheduler(s) 'pbt'; choose from asha" in capsys.readouterr().err


def test_cli_bad_max_t_exits_2(tmp_path, capsys):
    assert main(["hpo", "replay", "--max-t", "101", "-w", str(tmp_path)]) == 2
    assert "--max-t 101" in capsys.readouterr().err


def test_cli_writes_table_json_and_plot(ray_local, tmp_path, capsys):
    code = main(
        [
            "hpo",
            "replay",
            "--scheduler",
            "asha,predictive",
            "--seeds",
            "2",
            "--num-samples",
            "12",
            "--max-t",
            str(MAX_T),
            "--grace-period",
            "2",
            "--reduction-factor",
            "2",
            "--min-curves",
            "3",
            "-w",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr()
    assert code == 0
    report = json.loads((tmp_path / "hpo_replay.json").read_text())
    assert list(report["schedulers"]) == ["asha", "predictive"]
    assert [(r["scheduler"], r["seed"]) for r in report["runs"]] == [
        ("asha", 0),
        ("asha", 1),
        ("predictive", 0),
        ("predictive", 1),
    ]
    assert report["schedulers"]["asha"]["runs"] == 2
    assert (tmp_path / "hpo_replay.png").read_bytes()[:4] == b"\x89PNG"
    assert "| predictive | 2 |" in (tmp_path / "hpo_replay.md").read_text()
    assert "replay predictive seed 1: 12 trials" in out.err
    from hepbench.core.schema import validation_errors

    assert validation_errors(report, "hpo_replay.schema.json") == []
    report["runs"][0]["scheduler"] = "pbt"
    assert validation_errors(report, "hpo_replay.schema.json") != []
