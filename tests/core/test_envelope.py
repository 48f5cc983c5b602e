"""The HEPscore envelope: its layout for ok and failed runs, its files, run_guarded, and every workload's
summary (ok and failed) built through it and valid against that workload's schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hepbench.core.envelope import RunInfo, Workload, build_summary, run_guarded, write_summary
from hepbench.core.errors import HepbenchError, UsageError
from hepbench.core.hostinfo import bmk_checksum, containment
from hepbench.core.schema import ReportError, validation_errors
from hepbench.hpo import bench as hpo_bench
from hepbench.hpo.search import SearchResult
from hepbench.hpo.trials import TrialRecord
from hepbench.mlpf.report import summary as mlpf_summary
from hepbench.qsvr import workload as qsvr_workload

TIMING = {"start": "2026-11-27T09:00:00.000+00:00", "end": "2026-11-27T09:10:05.000+00:00", "wall_seconds": 605.0}
TOY = Workload(
    name="toy-bmk",
    version="1.2.3",
    description="a toy",
    definition="toy: events / s",
    summary_file="toy_summary.json",
    schema="hpo_summary.schema.json",
)
MLPF_FIXTURE = Path(__file__).resolve().parents[1] / "mlpf" / "report" / "fixtures" / "ok_2copies.json"


def toy(failure=None, **kw) -> dict:
    args = dict(
        failure=failure,
        scores={"toy": 2.0},
        stats={"toy": {"count": 1}},
        fields={"mine": 1, "also": 2},
        bmkdata_checksum="ab" * 32,
        software={"hepbench": "1.2.3"},
        host={"cpu_model": "x"},
        timing=TIMING,
        command=("hepbench", "toy"),
    )
    return build_summary(
        TOY, RunInfo(copies=2, threads_per_copy=3, events_per_thread=4, extra_arguments="-x"), **{**args, **kw}
    )


def test_an_ok_summary_has_hepscores_layout_and_the_workloads_fields_in_place():
    s = toy(app_extra={"devices": [{"copy": 0}]})
    assert list(s) == ["app", "run_info", "report"]
    assert s["app"] == {
        "name": "toy-bmk",
        "version": "1.2.3",
        "description": "a toy",
        "containment": containment(),
        "bmk_checksum": bmk_checksum(),
        "bmkdata_checksum": "ab" * 32,
        "devices": [{"copy": 0}],
    }
    assert list(s["run_info"].items()) == [
        ("copies", 2),
        ("threads_per_copy", 3),
        ("events_per_thread", 4),
        ("extra_arguments", "-x"),
    ]
    r = s["report"]
    assert list(r) == [
        "wl-scores",
        "wl-stats",
        "log",
        "status",
        "definition",
        "mine",
        "also",
        "software",
        "host",
        "timing",
        "command",
    ]
    assert (r["wl-scores"], r["wl-stats"], r["log"], r["status"]) == ({"toy": 2.0}, {"toy": {"count": 1}}, "ok", "ok")
    assert r["definition"] == "toy: events / s" and r["command"] == ["hepbench", "toy"]


def test_a_failed_summary_has_its_reason_as_log_and_no_scores():
    r = toy(failure="copy 0: boom")["report"]
    assert (r["wl-scores"], r["wl-stats"], r["log"], r["status"]) == ({}, {}, "copy 0: boom", "failed")


def test_an_ok_summary_without_scores_is_refused():
    with pytest.raises(ValueError, match="needs its scores and stats"):
        toy(scores=None)


def _hpo_measured() -> dict:
    config = {
        "lr": 1e-3,
        "num_graph_layers_id": 2,
        "num_graph_layers_reg": 1,
        "dropout": 0.2,
        "bin_size": 16,
        "output_dim": 32,
        "weight_decay": 1e-4,
    }
    trials = [
        TrialRecord(
            trial_id=f"t{i}",
            config=config,
            status=status,
            val_loss=[1.0 - 0.1 * e for e in range(n)],
            train_loss=[1.0] * n,
            events_per_second=[10.0] * n,
            epoch_seconds=[0.5] * n,
            train_events=[hpo_bench.TRAIN_EVENTS] * n,
        )
        for i, (status, n) in enumerate([("completed", hpo_bench.EPOCHS), ("stopped", 1)])
    ]
    return hpo_bench.measure(SearchResult(trials, 60.0, {"nodes": ["a" * 56], "resources": {"CPU": 2.0}}))


QSVR_MEASURED = {
    "wl-scores": {"fits_per_second": 4.0, "mean_r2": 0.9},
    "wl-stats": {
        "fits_per_second": {"avg": 4.0, "median": 4.0, "min": 4.0, "max": 4.0, "count": 1, "std": 0.0},
        "mean_r2": {"avg": 0.9, "median": 0.9, "min": 0.9, "max": 0.9, "count": 1, "std": 0.0},
    },
    "r2": {m: {"best": 0.9, "worst": 0.9, "mean": 0.9, "std": 0.0, "median": 0.9, "count": 1} for m in ("qsvr", "svr")},
    "fits": [{"fit": 0, "seconds": 0.25, "r2": 0.9}],
    "protocol": {
        "fits": 1,
        "warmup_fits": 1,
        "svr_fits": 1,
        "seed": 0,
        "sampler": "simulated",
        "train_size": 20,
        "test_size": 148,
        "scaling": "leak-free",
        "r2_convention": "correct",
        "combine": "softmax_inverse_logcosh",
    },
    "data": {"source": "curves.csv", "curves": 295, "features": 13},
}


def _mlpf(failed: bool) -> dict:
    r = json.loads(MLPF_FIXTURE.read_text())["report"]
    ctx = mlpf_summary.RunContext(
        benchmark=r["benchmark"],
        config=r["config"],
        dataset=r["dataset"],
        model=r["model"],
        software=r["software"],
        host=r["host"],
        timing=r["timing"],
        command=r["command"],
        backend=r["backend"],
        log="interrupted by SIGTERM after 3 s" if failed else None,
    )
    return mlpf_summary.build_report(r["copies"], ctx)


def _qsvr(failed: bool) -> dict:
    options = qsvr_workload.WorkloadOptions(fits=1, svr_fits=1)
    return qsvr_workload.build_summary(
        options, None if failed else QSVR_MEASURED, "bad table" if failed else None, TIMING
    )


def _hpo(failed: bool, tmp_path: Path) -> dict:
    options = hpo_bench.BenchOptions(data_dir=tmp_path / "data", num_cpus=2, trials=2)
    return hpo_bench.build_summary(
        options, None if failed else _hpo_measured(), "no trial ran" if failed else None, TIMING
    )


WORKLOADS = {
    "mlpf-bmk": (mlpf_summary.BMK, lambda failed, tmp: _mlpf(failed)),
    "qsvr-bmk": (qsvr_workload.BMK, lambda failed, tmp: _qsvr(failed)),
    "hpo-bmk": (hpo_bench.BMK, _hpo),
}


@pytest.mark.parametrize("failed", [False, True], ids=["ok", "failed"])
@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_every_workloads_summary_is_built_through_the_envelope_and_valid(tmp_path, name, failed):
    workload, build = WORKLOADS[name]
    summary = build(failed, tmp_path)
    assert validation_errors(summary, workload.schema) == []
    assert summary["app"]["name"] == workload.name == name and summary["app"]["bmk_checksum"] == bmk_checksum()
    r = summary["report"]
    assert r["definition"] == workload.definition and list(r)[:5] == [
        "wl-scores",
        "wl-stats",
        "log",
        "status",
        "definition",
    ]
    assert list(r)[-4:] == ["software", "host", "timing", "command"]
    assert (r["status"] == "failed") == failed and (r["wl-scores"] == {}) == failed


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_write_summary_writes_inputs_version_and_summary(tmp_path, name):
    workload, build = WORKLOADS[name]
    summary = build(False, tmp_path)
    out = tmp_path / "res"
    path = write_summary(summary, out, workload, inputs_extra="DEVICE=cpu\n")
    assert path == out / workload.summary_file and json.loads(path.read_text()) == summary
    assert json.loads((out / "version.json").read_text()) == summary["app"]
    info = summary["run_info"]
    assert (out / "inputs.log").read_text() == (
        f"NCOPIES={info['copies']}\nNTHREADS={info['threads_per_copy']}\nNEVENTS_THREAD={info['events_per_thread']}\n"
        f"EXTRA_ARGS={info['extra_arguments']}\nDEVICE=cpu\n"
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(["inputs.log", "version.json", workload.summary_file])


def test_an_invalid_summary_is_refused_and_nothing_is_written(tmp_path):
    summary = _qsvr(False)
    summary["report"]["wl-scores"]["fits_per_second"] = "fast"
    with pytest.raises(ReportError, match="the qsvr-bmk summary does not match qsvr_summary.schema.json"):
        write_summary(summary, tmp_path / "res", qsvr_workload.BMK)
    assert not (tmp_path / "res").exists()


def test_run_guarded_returns_the_value_of_work_that_succeeds():
    assert run_guarded(lambda: {"a": 1}) == ({"a": 1}, None, 0)


def test_run_guarded_turns_a_hepbench_error_into_its_message_and_exit_code(capsys):
    def work():
        raise UsageError("--fits must be positive")

    assert run_guarded(work) == (None, "--fits must be positive", 2)
    assert capsys.readouterr().err == ""  # a HepbenchError is the user's message: no traceback


def test_run_guarded_names_an_error_without_a_message():
    def work():
        raise HepbenchError()

    assert run_guarded(work) == (None, "HepbenchError", 1)


def test_run_guarded_names_any_other_exception_and_prints_its_traceback(capsys):
    def work():
        raise KeyError("x")

    assert run_guarded(work) == (None, "KeyError: 'x'", 1)
    assert "Traceback" in capsys.readouterr().err


def test_run_guarded_lets_an_interrupt_through():
    interrupt = KeyboardInterrupt()

    def work():
        raise interrupt

    with pytest.raises(KeyboardInterrupt) as e:
        run_guarded(work)
    assert e.value is interrupt  # the very one, not a wrapper or another raised on the way out
