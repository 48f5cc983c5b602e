"""What a job's report must say after one of its ranks was killed outright (tests of test_horovod.py and
test_ddp.py): not rank 0's placeholder, written as the job starts (run/ranks.py), but what rank 0 found
when it handled the loss: its own measured windows and why it stopped (the launcher's SIGTERM, its
collective's failure, or the watchdog's timeout)."""

from __future__ import annotations

from pathlib import Path

from hepbench.core.schema import load_report, validate_report
from hepbench.mlpf.run.ranks import UNFINISHED


def check_killed_rank_report(results: Path, strategy: str, output: str) -> dict:
    """The report's checks; `output`, the launcher's, goes into a failure's message."""
    try:
        return _check(results, strategy)
    except AssertionError as e:
        raise AssertionError(f"{e}\nthe launcher's output:\n{output[-4000:]}") from None


def _check(results: Path, strategy: str) -> dict:
    report = load_report(results / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    first, killed = rep["copies"]
    assert rep["status"] == "failed" and rep["wl-scores"] == {} and rep["benchmark"]["strategy"] == strategy
    # The placeholder had this log and an empty rank-0 entry ("did not report", no windows).
    assert rep["log"] != UNFINISHED and rep["log"] == f"rank 0: {first['log']}", rep["log"]
    assert first["status"] == "failed" and first["log"] not in ("did not report", "did not start", "ok")
    assert first["windows"] and all(w["events"] > 0 and w["seconds"] > 0 for w in first["windows"])
    assert killed["rank"] == 1 and killed["status"] == "failed" and killed["log"] == "did not report"
    return rep
