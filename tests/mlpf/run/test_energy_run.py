"""A tiny `hepbench run` reads the energy counters of the configured powercap directory at its
windows' boundaries: a fake tree here (the real one needs root; docs/energy.md), one of whose
counters the run may not read, as a user who is not root may not read the real ones."""

from __future__ import annotations

import json

from hepbench.core.schema import load_report, validate_report
from tests.unprivileged import without_file_override


def test_a_run_reports_the_packages_of_the_configured_powercap_tree(hepbench_run, built, tiny_config, tmp_path):
    tree = tmp_path / "powercap"
    for name, label in (("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "dram"), ("intel-rapl:1", "package-1")):
        (tree / name).mkdir(parents=True)
        (tree / name / "name").write_text(label + "\n")
        (tree / name / "energy_uj").write_text("5000000\n")  # still: 0 J, but every window read
        (tree / name / "max_energy_range_uj").write_text("262143328850\n")
    (tree / "intel-rapl:1" / "energy_uj").chmod(0o200)  # unreadable: the run is bound by file modes, even as root
    results, mllog = tmp_path / "results", tmp_path / "mllog.txt"
    r = hepbench_run(
        "--data-dir",
        built,
        "--config",
        tiny_config,
        "-w",
        results,
        "--device",
        "cpu",
        "--mllog",
        mllog,
        "--set",
        f"bench.powercap_dir={tree}",
        wrap=without_file_override,
    )
    assert r.returncode == 0, r.stderr
    report = load_report(results / "mlpf_summary.json")
    validate_report(report)
    energy = report["report"]["energy"]
    sources = {s["name"]: s for s in energy["sources"]}
    assert energy["status"] == "measured" and energy["joules"] == 0.0
    assert sources["package-0"]["path"] == str(tree / "intel-rapl:0" / "energy_uj")
    assert [w["window"] for w in sources["package-0/dram"]["windows"]] == [1, 2]
    assert all(w["seconds"] > 0 for w in sources["package-0"]["windows"])
    assert report["report"]["copies"][0]["energy_sources"] == energy["sources"]
    assert sources["package-1"]["status"] == "unavailable" and sources["package-1"]["joules"] is None
    assert f"{tree / 'intel-rapl:1' / 'energy_uj'}: Permission denied" in sources["package-1"]["reason"]
    assert "events_per_joule" not in report["report"]["wl-scores"]  # 0 J: no ratio
    keys = [json.loads(line.removeprefix(":::MLLOG "))["key"] for line in mllog.read_text().splitlines()]
    assert keys.count("power_reading") == 2 * sum(s["status"] == "measured" for s in sources.values())
