"""Real Ray Tune searches of the tiny MLPF model: ASHA, Hyperband and BOHB stop trials; the outputs;
checkpoint and resume; clear errors. One local Ray instance with one CPU (tests/hpo/conftest.py)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from hepbench.core.errors import UsageError
from hepbench.core.hyperparameters import CSV_COLUMN_ORDER as CSV_HYPERPARAMETERS
from hepbench.hpo.schedulers import SchedulerSettings
from hepbench.hpo.space import load_space
from hepbench.mlpf.config import config_to_dict, load_config

pytestmark = pytest.mark.slow
MAX_T = 3


def search(built, tiny_config, tiny_space, tmp_path, scheduler, num_samples, **settings):
    from hepbench.hpo.search import SearchConfig, run_search

    cfg = SearchConfig(
        data_dir=built,
        resultsdir=tmp_path,
        base=load_config(tiny_config),
        scheduler=scheduler,
        num_samples=num_samples,
        space=load_space(tiny_space),
        quiet=True,
        graph_optimizer=False,
        settings=SchedulerSettings(max_t=MAX_T, **settings),
    )
    return cfg, run_search(cfg)


# ASHA: test_run_writes_the_table_json_and_plot runs it through the command line.
@pytest.mark.parametrize(
    "scheduler, num_samples, settings",
    [
        ("hyperband", 4, dict(grace_period=1, reduction_factor=3, seed=3)),
        ("bohb", 4, dict(grace_period=1, reduction_factor=3, seed=3)),
    ],
)
def test_schedulers_stop_some_trials(
    ray_local, built, tiny_config, tiny_space, tmp_path, scheduler, num_samples, settings
):
    cfg, result = search(built, tiny_config, tiny_space, tmp_path, scheduler, num_samples, **settings)
    trials = result.trials
    assert len(trials) == num_samples
    assert [t.error for t in trials if t.status == "error"] == []
    status = [t.status for t in trials]
    assert "stopped" in status and "completed" in status, status
    for t in trials:
        assert 1 <= t.epochs <= MAX_T and (t.epochs == MAX_T) == (t.status == "completed")
        assert all(np.isfinite(t.val_loss)) and t.node_id and t.hostname
        assert t.config["bin_size"] == 16 and t.config["output_dim"] in (8, 16)
    # Fewer epochs than running every trial to the end: that is the point of stopping early.
    assert sum(t.epochs for t in trials) < num_samples * MAX_T


def test_run_writes_the_table_json_and_plot(ray_local, built, tiny_config, tiny_space, tmp_path, monkeypatch):
    from hepbench.cli import main

    # The records come from the driver's own callback, not from Tune's file loggers.
    monkeypatch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    out = tmp_path / "out"
    code = main(
        [
            "hpo",
            "run",
            "--data-dir",
            str(built),
            "-w",
            str(out),
            "--config",
            str(tiny_config),
            "--space",
            str(tiny_space),
            "--scheduler",
            "asha",
            "--num-samples",
            "3",
            "--max-epochs",
            str(MAX_T),
            "--grace-period",
            "1",
            "--reduction-factor",
            "2",
            "--seed",
            "5",
            "--no-graph-optimizer",
            "-q",
        ]
    )
    assert code == 0
    doc = json.loads((out / "hpo_trials.json").read_text())
    assert doc["scheduler"] == "asha" and doc["settings"]["max_t"] == MAX_T and len(doc["trials"]) == 3
    assert doc["counts"]["stopped"] >= 1 and doc["counts"]["completed"] >= 1 and doc["counts"]["error"] == 0
    assert doc["epochs"] < 3 * MAX_T and doc["graph_optimizer"] is False and doc["backend"] == "tensorflow"
    assert {t["backend"] for t in doc["trials"]} == {"tensorflow"}  # each trial's engine says so
    assert doc["epochs"] == sum(t["epochs"] for t in doc["trials"])
    best = json.loads((out / "best_config.json").read_text())["best"]
    completed = [t for t in doc["trials"] if t["status"] == "completed"]
    assert best["final_loss"] == min(t["final_loss"] for t in completed)
    with open(out / "hpo_trials.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [*CSV_HYPERPARAMETERS, *(f"loss_{i}" for i in range(MAX_T))]  # the shared table's layout
    assert len(rows) - 1 == len(doc["trials"])  # one row per trial, in the same order
    for row, trial in zip(rows[1:], doc["trials"]):
        losses = row[len(CSV_HYPERPARAMETERS) :]
        assert [float(v) for v in losses if v] == trial["val_loss"]
        assert losses[trial["epochs"] :] == [""] * (MAX_T - trial["epochs"])  # stopped: empty, not invented
        assert int(row[CSV_HYPERPARAMETERS.index("n_glayers_id")]) == trial["config"]["num_graph_layers_id"]
    # The ids are Tune's own: each names exactly one of the trial directories Tune wrote (TRAINABLE_ID_TAG_DATE).
    trial_dirs = [p.name for p in (out / "ray").glob("*/*") if p.is_dir()]
    ids = [t["trial_id"] for t in doc["trials"]]
    assert len(trial_dirs) == len(set(ids)) == 3
    assert all(sum(f"_{i}_" in name for name in trial_dirs) == 1 for i in ids), (ids, trial_dirs)
    assert (out / "hpo_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_from_a_checkpoint_continues_the_same_training(built, tiny_config, tiny_space, tmp_path):
    from hepbench.hpo.trainable import Trial, TrialSetup

    setup = TrialSetup(
        data_dir=str(built),
        config=config_to_dict(load_config(tiny_config)),
        space=load_space(tiny_space),
        max_epochs=MAX_T,
        graph_optimizer=False,
    )
    config = {
        "lr": 3e-3,
        "num_graph_layers_id": 1.0,
        "num_graph_layers_reg": 0.0,
        "dropout": 0.1,
        "bin_size": 16,
        "output_dim": 8,
        "weight_decay": 1e-3,
    }
    straight = Trial(setup, config)
    straight.epoch()
    straight.save(tmp_path)  # what Hyperband's pause leaves
    second = straight.epoch()
    resumed = Trial(setup, config)
    resumed.restore(tmp_path)
    again = resumed.epoch()
    assert again["epoch"] == second["epoch"] == 2
    assert again["val_loss"] == pytest.approx(second["val_loss"], rel=1e-6)
    assert again["train_loss"] == pytest.approx(second["train_loss"], rel=1e-6)
    fresh = Trial(setup, config)  # without the checkpoint: epoch 1 again, another loss
    assert fresh.epochs_done == 0 and fresh.epoch()["val_loss"] != pytest.approx(second["val_loss"], rel=1e-6)


def test_a_trial_needing_more_than_the_cluster_is_refused(ray_local, built, tiny_config, tmp_path):
    from hepbench.hpo.search import SearchConfig, run_search

    cfg = SearchConfig(data_dir=built, resultsdir=tmp_path, base=load_config(tiny_config), cpus_per_trial=4)
    with pytest.raises(UsageError, match="--cpus-per-trial 4: the Ray cluster has 1 CPU"):
        run_search(cfg)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scheduler", "random"], "unknown scheduler 'random'"),
        (["--num-samples", "0"], "expected a positive integer"),
        (["--max-epochs", "3", "--grace-period", "5"], r"grace period must be a whole number in \[1, max epochs = 3\]"),
        (["--reduction-factor", "1"], "reduction factor must be > 1"),
        (["--quantile", "1.5"], r"quantile must be in \(0, 1\)"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    from hepbench.cli import main

    out = tmp_path / "out"
    argv = ["hpo", "run", "-w", str(out), *args]
    if "--num-samples" in args or "--scheduler" in args:  # argparse's own checks: it exits itself
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    else:
        assert main(argv) == 2
    import re

    assert re.search(message, capsys.readouterr().err)
    assert not out.exists() or list(out.iterdir()) == []


def test_bad_space_file_exits_2(tmp_path, capsys):
    from hepbench.cli import main

    bad = tmp_path / "space.yaml"
    bad.write_text("lr: {sampler: loguniform, low: -1, high: 1}\n")
    assert main(["hpo", "run", "-w", str(tmp_path / "out"), "--space", str(bad)]) == 2
    assert f"search space {bad}: lr: loguniform needs low > 0" in capsys.readouterr().err


def test_bench_workload_writes_a_valid_summary(ray_local, built, tiny_config, tmp_path, capsys):
    from hepbench.cli import main
    from hepbench.core.schema import load_report

    out = tmp_path / "bench"
    assert (
        main(["hpo", "bench", "-w", str(out), "--data-dir", str(built), "--config", str(tiny_config), "--trials", "1"])
        == 0
    )
    summary = load_report(out / "hpo_summary.json")  # written only after validating against its schema
    report = summary["report"]
    assert report["status"] == "ok" and summary["app"]["name"] == "hpo-bmk"
    search = report["search"]
    assert search["trials"] == 1 and search["epochs"] == 4 and summary["run_info"]["threads_per_copy"] == 1
    assert report["wl-scores"]["trial_epochs_per_hour"] == pytest.approx(search["epochs"] / (search["seconds"] / 3600))
    assert report["protocol"]["config"] == str(tiny_config)
    assert {"version.json", "inputs.log", "hpo_trials.json", "hpo_trials.csv"} <= {p.name for p in out.iterdir()}
    assert "hpo-bmk score:" in capsys.readouterr().out
