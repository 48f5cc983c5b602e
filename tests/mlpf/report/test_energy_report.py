"""The report's energy block and wl-scores.events_per_joule from the copies' counters (fixtures),
validated by the schema, and MLPerf's power keys in the MLLOG output."""

from __future__ import annotations

import json
from pathlib import Path

from hepbench.core.schema import validate_report
from hepbench.mlpf.report.mllog import mllog_lines
from hepbench.mlpf.report.summary import RunContext, build_report

FIXTURES = Path(__file__).parent / "fixtures"


def base() -> dict:
    return json.loads((FIXTURES / "ok_2copies.json").read_text())


def context(report: dict) -> RunContext:
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
    )


def source(name: str, domain: str, watts: float, windows: list[dict]) -> dict:
    ws = [
        {"window": w["window"], "joules": watts * w["seconds"], "seconds": w["seconds"], "watts": watts}
        for w in windows
    ]
    joules = sum(w["joules"] for w in ws)
    return {
        "name": name,
        "kind": "powercap",
        "domain": domain,
        "path": f"/fake/{name}/energy_uj",
        "host": "h",
        "status": "measured",
        "reason": None,
        "joules": joules,
        "mean_watts": joules / sum(w["seconds"] for w in ws),
        "windows": ws,
    }


def test_package_energy_of_copy_0_against_every_copys_events():
    report = base()
    copies = report["report"]["copies"]
    for c in copies:
        c.pop("energy_sources", None)
    copies[0]["energy_sources"] = [
        source("package-0", "package", 100.0, copies[0]["windows"]),
        source("package-0/dram", "dram", 10.0, copies[0]["windows"]),
    ]
    out = build_report(copies, context(report))
    validate_report(out)
    energy = out["report"]["energy"]
    seconds = sum(w["seconds"] for w in copies[0]["windows"])
    events = sum(c["train"]["events"] for c in copies)
    assert energy["status"] == "measured" and abs(energy["joules"] - 110.0 * seconds) < 1e-6
    assert abs(energy["mean_watts"] - 110.0) < 1e-9
    assert abs(out["report"]["wl-scores"]["events_per_joule"] - events / (110.0 * seconds)) < 1e-12
    log = mllog_lines(out)
    readings = [json.loads(line.split(":::MLLOG ", 1)[1]) for line in log.splitlines() if '"power_reading"' in line]
    assert len(readings) == 2 * len(copies[0]["windows"]) and readings[0]["value"] == 100.0
    assert '"power_measurement_start"' in log and '"power_measurement_stop"' in log


def test_no_counter_read_is_unavailable_with_the_reason_and_no_score():
    report = base()
    copies = report["report"]["copies"]
    copies[0]["energy_sources"] = [
        {
            "name": "powercap",
            "kind": "powercap",
            "domain": "package",
            "path": "/sys/class/powercap",
            "host": "h",
            "status": "unavailable",
            "reason": "powercap not readable: x",
            "joules": None,
            "mean_watts": None,
            "windows": [],
        }
    ]
    out = build_report(copies, context(report))
    validate_report(out)
    assert out["report"]["energy"]["status"] == "unavailable"
    assert out["report"]["energy"]["reason"] == "powercap not readable: x"
    assert "events_per_joule" not in out["report"]["wl-scores"]
    assert "power_reading" not in mllog_lines(out)
