"""Report assembly (copies → score, statistics, failure log) and the MLLOG file, from fixtures."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from hepbench import __version__
from hepbench.core.schema import ReportError, validate_report
from hepbench.mlpf.report.mllog import mllog_lines, write_mllog
from hepbench.mlpf.report.summary import RunContext, build_report, score_line, software_versions, write_report

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def context(report: dict, log=None) -> RunContext:
    r = report["report"]
    return RunContext(
        benchmark=r["benchmark"],
        config=r["config"],
        dataset=r["dataset"],
        model=r["model"],
        software=r["software"],
        backend=r["backend"],
        host=r["host"],
        timing=r["timing"],
        command=r["command"],
        log=log,
    )


def test_the_score_is_the_sum_of_the_copies_rates():
    base = fixture("ok_2copies.json")
    report = build_report(base["report"]["copies"], context(base))
    validate_report(report)
    rates = [c["train"]["events_per_second"] for c in base["report"]["copies"]]
    assert report["report"]["wl-scores"]["train"] == pytest.approx(sum(rates))
    assert report["report"]["wl-stats"] == {
        "avg": pytest.approx(sum(rates) / 2),
        "median": pytest.approx(sum(rates) / 2),
        "min": min(rates),
        "max": max(rates),
        "count": 2,
    }
    assert report["report"]["throughput"]["windows"]["count"] == 6
    assert report["run_info"] == {
        "copies": 2,
        "threads_per_copy": 1,
        "events_per_thread": 24,
        "extra_arguments": "",
        "backend": "tensorflow",
    }
    assert report["report"]["backend"] == base["report"]["backend"]
    assert score_line(report) == "mlpf-bmk train score: 0.5313 events/s ± 1.2 % (2 copies, cpu, fp32, tensorflow)"


def test_the_report_says_how_far_to_trust_the_score():
    base = fixture("ok_2copies.json")
    report = build_report(base["report"]["copies"], context(base))
    validate_report(report)
    t = report["report"]["throughput"]
    ci = t["confidence_interval"]
    # Centred on the score: the copies' rates are events / seconds of their windows.
    assert (ci["low"] + ci["high"]) / 2 == pytest.approx(report["report"]["wl-scores"]["train"], rel=1e-4)
    assert ci["level"] == 0.95 and ci["half_width_percent"] == pytest.approx(1.2071, abs=1e-4)
    assert 2 < ci["degrees_of_freedom"] < 4  # Welch-Satterthwaite between one copy's 2 and both copies' 4
    assert t["window_cv_percent"] == pytest.approx(2.3743, abs=1e-4)
    assert t["first_window_ratio"] == pytest.approx((48 / 180.0) / (96 / 362.3))
    assert t["real_element_fraction"] == pytest.approx(113000 / 145920)


def test_one_window_gives_no_interval_and_no_plus_minus():
    base = fixture("ok_2copies.json")
    copies = base["report"]["copies"]
    for c in copies:
        c["windows"] = c["windows"][:1]
    report = build_report(copies, context(base))
    validate_report(report)
    t = report["report"]["throughput"]
    assert t["confidence_interval"] is None and t["first_window_ratio"] is None
    assert t["real_element_fraction"] == pytest.approx(113000 / 145920) and t["window_cv_percent"] is not None
    assert score_line(report) == "mlpf-bmk train score: 0.5313 events/s (2 copies, cpu, fp32, tensorflow)"


@pytest.mark.parametrize("strategy, what", [("horovod", "2 Horovod ranks"), ("ddp", "2 DDP ranks")])
def test_the_score_line_names_the_ranks_and_the_backend(strategy, what):
    base = fixture("ok_2copies.json")
    base["report"]["benchmark"]["strategy"] = strategy
    base["report"]["backend"] = {"name": "torch", "version": "2.13.0", "keras": "3.15.1", "compile": "eager"}
    report = build_report(base["report"]["copies"], context(base))
    validate_report(report)
    assert report["run_info"]["backend"] == "torch"
    assert score_line(report).endswith(f"({what}, cpu, fp32, torch)")


def test_one_failed_copy_fails_the_run_and_its_own_reason_is_the_log():
    base = fixture("ok_2copies.json")
    copies = copy.deepcopy(base["report"]["copies"])
    copies[0].update(status="failed", log="stopped: copy 1 failed", train=None, window_stats=None)
    copies[1].update(status="failed", log="training loss became nan at window 2, step 1", train=None, window_stats=None)
    report = build_report(copies, context(base))
    validate_report(report)
    assert report["report"]["status"] == "failed" and report["report"]["wl-scores"] == {}
    assert report["report"]["log"] == "copy 1: training loss became nan at window 2, step 1"
    t = report["report"]["throughput"]
    assert [
        t[k] for k in ("confidence_interval", "window_cv_percent", "first_window_ratio", "real_element_fraction")
    ] == [None] * 4
    assert score_line(report).startswith("mlpf-bmk: FAILED: copy 1")


def test_an_interruption_fails_the_run_even_when_the_copies_finished():
    base = fixture("ok_2copies.json")
    report = build_report(base["report"]["copies"], context(base, log="interrupted by SIGTERM after 12 s"))
    assert report["report"]["status"] == "failed" and report["report"]["log"].startswith("interrupted by SIGTERM")


def test_an_invalid_report_is_not_written(tmp_path):
    report = fixture("ok_2copies.json")
    report["report"]["wl-scores"]["train"] = "fast"
    with pytest.raises(ReportError, match=r"the report of this run does not match .*\n.*wl-scores\.train"):
        write_report(report, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_valid_report_is_written_with_version_json_and_inputs_log(tmp_path):
    base = fixture("ok_2copies.json")
    report = build_report(base["report"]["copies"], context(base))
    path = write_report(report, tmp_path)
    assert path == tmp_path / "mlpf_summary.json" and json.loads(path.read_text()) == report
    assert json.loads((tmp_path / "version.json").read_text()) == report["app"]
    assert (
        tmp_path / "inputs.log"
    ).read_text() == "NCOPIES=2\nNTHREADS=1\nNEVENTS_THREAD=24\nEXTRA_ARGS=\nDEVICE=cpu\n"


def test_the_software_block_names_hepbench_and_leaves_the_cuda_build_to_the_copies():
    software = software_versions()
    assert list(software)[:2] == ["hepbench", "python"] and software["hepbench"] == __version__
    assert software["cuda"] is None and software["cudnn"] is None
    assert isinstance(software["tensorflow"], str) and isinstance(
        software["keras"], str
    )  # a version or "not installed"
    assert {"jax", "jaxlib", "torch"} <= set(software)  # every backend's version, None where not installed


def test_a_report_without_a_backend_block_is_invalid():
    report = fixture("ok_2copies.json")
    del report["report"]["backend"]
    with pytest.raises(ReportError, match="'backend' is a required property"):
        validate_report(report)
    report = fixture("ok_2copies.json")
    report["report"]["backend"]["name"] = "mxnet"
    with pytest.raises(ReportError, match="report.backend.name"):
        validate_report(report)


def test_mllog_lines_follow_the_mlperf_format(tmp_path):
    path = write_mllog(fixture("failed_nan.json"), tmp_path / "run.mllog")
    events = [json.loads(line.removeprefix(":::MLLOG ")) for line in path.read_text().splitlines()]
    assert all(line.startswith(":::MLLOG {") for line in path.read_text().splitlines())
    assert {"namespace", "time_ms", "event_type", "key", "value", "metadata"} <= set(events[0])
    starts = [e for e in events if e["key"] == "epoch_start"]
    assert [(e["metadata"]["copy"], e["metadata"]["epoch_num"]) for e in starts] == [(0, 1), (1, 1)]
    assert events[-1]["key"] == "run_stop" and events[-1]["metadata"]["status"] == "aborted"
    ok = mllog_lines(fixture("ok_2copies.json"))
    assert '"status": "success"' in ok.splitlines()[-1]
