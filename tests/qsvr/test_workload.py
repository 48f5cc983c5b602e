"""`hepbench qsvr run`: the qsvr-bmk HEPscore summary, its failure report, determinism, the D-Wave token."""

from __future__ import annotations

import json
import sys

import pytest

from hepbench.cli import main
from hepbench.core.schema import validate_report


def run(tmp_path, *args, out="res"):
    return main(["qsvr", "run", "-w", str(tmp_path / out), "--svr-fits", "3", *args])


def summary(tmp_path, out="res") -> dict:
    return json.loads((tmp_path / out / "qsvr_summary.json").read_text())


def test_run_writes_a_valid_summary_with_a_positive_score(tmp_path, capsys):
    assert run(tmp_path, "--fits", "2", "--seed", "1") == 0
    doc = summary(tmp_path)
    validate_report(doc, "qsvr_summary.schema.json")
    report = doc["report"]
    assert report["status"] == "ok" and report["log"] == "ok"
    assert report["wl-scores"]["fits_per_second"] > 0 and -1 < report["wl-scores"]["mean_r2"] <= 1
    assert report["wl-stats"]["fits_per_second"]["count"] == 2 and len(report["fits"]) == 2
    assert report["r2"]["svr"]["count"] == 3 and report["r2"]["qsvr"]["count"] == 2
    assert doc["app"]["name"] == "qsvr-bmk" and doc["run_info"] == {
        "copies": 1,
        "threads_per_copy": 1,
        "events_per_thread": 2,
        "extra_arguments": "",
    }
    assert json.loads((tmp_path / "res" / "version.json").read_text()) == doc["app"]
    assert "NEVENTS_THREAD=2" in (tmp_path / "res" / "inputs.log").read_text()
    assert "qsvr-bmk score:" in capsys.readouterr().out


def test_the_same_seed_gives_the_same_fits(tmp_path):
    assert run(tmp_path, "--fits", "1", "--seed", "5", out="a") == 0
    assert run(tmp_path, "--fits", "1", "--seed", "5", out="b") == 0
    a, b = summary(tmp_path, "a")["report"], summary(tmp_path, "b")["report"]
    assert a["r2"] == b["r2"] and [f["r2"] for f in a["fits"]] == [f["r2"] for f in b["fits"]]


def test_a_bad_table_leaves_a_failure_report(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("bin_size,dropout\n1,2\n")
    assert run(tmp_path, "--data", str(bad)) == 1
    doc = summary(tmp_path)
    validate_report(doc, "qsvr_summary.schema.json")
    assert doc["report"]["status"] == "failed" and doc["report"]["wl-scores"] == {}
    assert "bad.csv: missing column(s)" in doc["report"]["log"]
    assert "FAILED" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fits", "0"], "expected a positive integer, got 0"),
        (["--sampler", "quantum"], "invalid choice: 'quantum'"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as e:
        run(tmp_path, *args)
    assert e.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def test_dwave_needs_a_token_and_never_prints_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DWAVE_API_TOKEN", raising=False)
    assert run(tmp_path, "--sampler", "dwave") == 2
    assert "DWAVE_API_TOKEN" in capsys.readouterr().err and not (tmp_path / "res").exists()
    monkeypatch.setenv("DWAVE_API_TOKEN", "secret-token-123")
    monkeypatch.setitem(sys.modules, "dwave.system", None)  # never reach a real annealer from a test
    code = run(tmp_path, "--sampler", "dwave", "--fits", "1")  # dwave-system missing: refused, exit 2
    captured = capsys.readouterr()
    assert code == 2 and "secret-token-123" not in captured.out + captured.err
    assert (
        not (tmp_path / "res").exists()
        or "secret-token-123" not in (tmp_path / "res" / "qsvr_summary.json").read_text()
    )
