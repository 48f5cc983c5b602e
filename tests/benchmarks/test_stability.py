"""benchmarks/stability.py's arithmetic and output, with canned runs (it never runs a benchmark here)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "mlpf" / "report" / "fixtures" / "ok_2copies.json"


def _load():
    spec = importlib.util.spec_from_file_location("stability", ROOT / "benchmarks" / "stability.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stability = _load()


def run(score, wall=150.0, ratio=1.0, windows=(1.0, 1.0, 1.0)):
    return {
        "status": "ok",
        "score": score,
        "half_width_percent": 1.0,
        "first_window_ratio": ratio,
        "window_cv_percent": 0.5,
        "window_rates": list(windows),
        "wall_seconds": wall,
    }


def test_run_figures_come_from_the_report():
    report = json.loads(FIXTURE.read_text())
    fig = stability.run_figures(report, 321.0)
    assert fig["score"] == 0.5313 and fig["wall_seconds"] == 321.0
    assert fig["half_width_percent"] == report["report"]["throughput"]["confidence_interval"]["half_width_percent"]
    assert fig["first_window_ratio"] == report["report"]["throughput"]["first_window_ratio"]
    assert fig["window_rates"] == [0.2606, 0.26, 0.2597, 0.273, 0.2724, 0.2682]
    report["report"].update(status="failed", log="training loss became nan")
    assert stability.run_figures(report, 5.0) == {
        "status": "failed",
        "log": "training loss became nan",
        "wall_seconds": 5.0,
    }


def test_summary_over_runs():
    runs = [
        run(1.0, wall=100, ratio=0.98, windows=(0.9, 1.0)),
        run(1.1, wall=120, ratio=1.01, windows=(1.1, 1.2)),
        run(0.9, wall=110, ratio=1.0, windows=(1.0, 0.8)),
    ]
    s = stability.summarise(runs)
    assert s["runs"] == 3 and s["failed_runs"] == 0
    assert s["mean_score"] == pytest.approx(1.0) and s["score_cv_percent"] == pytest.approx(10.0)  # s = 0.1
    assert (s["min_score"], s["max_score"]) == (0.9, 1.1)
    assert s["windows"] == 6 and (s["window_min"], s["window_max"]) == (0.8, 1.2)
    assert s["window_spread_percent"] == pytest.approx(100 * 0.4 / 1.0)
    assert s["mean_first_window_ratio"] == pytest.approx(2.99 / 3) and s["worst_first_window_ratio"] == 0.98
    assert s["mean_wall_seconds"] == pytest.approx(110) and s["max_wall_seconds"] == 120


def test_verdict_passes_only_when_every_target_is_met():
    good = [run(1.0), run(1.01), run(0.99, ratio=0.975)]
    ok, line = stability.verdict(stability.summarise(good))
    assert ok and line.startswith(
        "verdict: PASS (score CV 1.00 % <= 2 %; longest wall 150 s <= 180 s; first window off by 2.50 % <= 3 %)"
    )
    for bad, why in [
        (run(1.1), "score CV 5.31 % NOT <= 2 %"),
        (run(1.0, wall=181), "longest wall 181 s NOT <= 180 s"),
        (run(1.0, ratio=1.04), "first window off by 4.00 % NOT <= 3 %"),
    ]:
        ok, line = stability.verdict(stability.summarise(good[:2] + [bad]))
        assert not ok and line.startswith("verdict: FAIL") and why in line, line


def test_a_failed_run_or_a_single_run_cannot_pass():
    failed = {"status": "failed", "log": "exit 2, no report: bad option", "wall_seconds": 1.0}
    s = stability.summarise([run(1.0), failed])
    assert s["failed_runs"] == 1 and s["mean_score"] == 1.0
    ok, line = stability.verdict(s)
    assert not ok and line.endswith("; 1 run(s) failed)")
    ok, line = stability.verdict(stability.summarise([run(1.0)]))
    assert not ok and "score CV - % NOT <= 2 %" in line  # one run has no CV
    assert stability.run_line(2, 5, failed) == "run 2/5: FAILED after 1 s: exit 2, no report: bad option"


def test_options_pass_through_to_hepbench_run(capsys):
    args, extra = stability.parse(["--runs", "3", "--data-dir", "d", "--", "--set", "bench.windows=5"])
    assert args.runs == 3 and extra == ["--data-dir", "d", "--set", "bench.windows=5"]
    for argv, message in (
        (["--resultsdir", "x"], "--resultsdir is set by this script"),
        (["--runs", "0"], "--runs must be at least 1, not 0"),
    ):
        with pytest.raises(SystemExit) as e:
            stability.parse(argv)
        assert e.value.code == 2 and message in capsys.readouterr().err


def test_main_prints_each_run_the_summary_and_the_verdict(monkeypatch, tmp_path, capsys):
    canned = iter([run(1.0, windows=(1.0, 1.01)), run(1.01, windows=(1.0, 1.02))])
    seen = []

    def fake_run(results, run_args):
        seen.append((results.name, run_args))
        return next(canned)

    monkeypatch.setattr(stability, "one_run", fake_run)
    out_json = tmp_path / "stability.json"
    code = stability.main(["--runs", "2", "--json", str(out_json), "--set", "bench.windows=4"])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and seen == [("run-1", ["--set", "bench.windows=4"]), ("run-2", ["--set", "bench.windows=4"])]
    assert lines[0] == "2 x hepbench run --set bench.windows=4"
    assert lines[1] == "run 1/2: score 1 events/s ± 1.00 %, wall 150 s, first window / later 1.000, window CV 0.50 %"
    assert lines[3].startswith("over 2 runs: mean score 1.005 events/s, CV 0.70 %")
    assert lines[-1].startswith("verdict: PASS")
    written = json.loads(out_json.read_text())
    assert written["pass"] is True and len(written["runs"]) == 2
    assert math.isclose(written["summary"]["mean_score"], 1.005)
    assert written["targets"] == {"score_cv_percent": 2.0, "wall_seconds": 180.0, "first_window_deviation": 0.03}


def test_main_stops_at_the_first_failed_run(monkeypatch, capsys):
    monkeypatch.setattr(
        stability,
        "one_run",
        lambda results, run_args: {"status": "failed", "log": "exit 2, no report: bad", "wall_seconds": 1.0},
    )
    assert stability.main(["--runs", "5"]) == 1
    out = capsys.readouterr().out
    assert out.count("FAILED") == 1 and "run 2/5" not in out
