"""`report show` prints the energy block where a report has one, and says nothing of it where not."""

from __future__ import annotations

from hepbench.mlpf.report.show import format_report

ENERGY = {
    "status": "measured",
    "reason": None,
    "joules": 1234.5,
    "seconds": 56.7,
    "mean_watts": 21.77,
    "events_per_joule": 0.01234,
    "sources": [
        {
            "name": "package-0",
            "kind": "powercap",
            "domain": "package",
            "path": "/sys/class/powercap/intel-rapl:0",
            "status": "measured",
            "reason": None,
            "joules": 1000.0,
            "mean_watts": 17.6,
            "windows": [
                {"window": 1, "joules": 510.0, "seconds": 28.0, "watts": 18.2},
                {"window": 2, "joules": 490.0, "seconds": 28.7, "watts": 17.1},
            ],
        },
        {
            "name": "package-0/dram",
            "kind": "powercap",
            "domain": "dram",
            "path": "/sys/class/powercap/intel-rapl:0:0",
            "status": "measured",
            "reason": None,
            "joules": 234.5,
            "mean_watts": 4.14,
            "windows": [
                {"window": 1, "joules": 117.0, "seconds": 28.0, "watts": 4.2},
                {"window": 2, "joules": 117.5, "seconds": 28.7, "watts": 4.1},
            ],
        },
        {
            "name": "gpu",
            "kind": "nvml",
            "domain": "gpu",
            "path": None,
            "status": "unavailable",
            "reason": "nvidia-ml-py is not installed",
            "joules": None,
            "mean_watts": None,
            "windows": [],
        },
    ],
}


def test_a_measured_energy_block_is_shown_with_its_sources_and_windows(ok_report):
    ok_report["report"]["energy"] = ENERGY
    lines = format_report(ok_report).splitlines()
    assert (
        "energy: measured, 1234 J in 56.70 s (21.77 W mean), 0.01234 events/J "
        "(every measured source, timed windows only)"
    ) in lines
    sources = {
        line.split()[0]: line.split()
        for line in lines[lines.index("energy sources:") + 1 :]
        if line.startswith("  ") and line.split()[0] in ("package-0", "package-0/dram", "gpu")
    }
    assert sources["package-0"][3:7] == ["measured", "1000", "17.60", "2"]
    assert sources["package-0"][-1] == "/sys/class/powercap/intel-rapl:0"
    assert " ".join(sources["gpu"][3:]) == "unavailable - - 0 nvidia-ml-py is not installed"
    windows = lines[lines.index("energy per window:") + 1 :]
    assert windows[0].split() == ["window", "package-0", "J", "package-0/dram", "J"]
    assert windows[1].split() == ["1", "510.0", "117.0"] and windows[2].split() == ["2", "490.0", "117.5"]


def test_an_unavailable_energy_block_says_why(ok_report):
    ok_report["report"]["energy"] = {
        "status": "unavailable",
        "sources": [],
        "reason": "powercap not readable: needs root or a mount inside the container",
    }
    text = format_report(ok_report)
    assert "energy: unavailable (powercap not readable: needs root or a mount inside the container)" in text
    assert "energy sources:" not in text


def test_a_report_from_before_the_energy_block_shows_no_energy(ok_report):
    assert "energy" not in format_report(ok_report)
