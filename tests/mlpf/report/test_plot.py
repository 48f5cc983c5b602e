"""The throughput plot: a real PNG for good and failed reports, a clear error without windows."""

from __future__ import annotations

import pytest

from hepbench.core.schema import ReportError
from hepbench.mlpf.report.plot import plot_throughput

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["ok_report", "failed_report"])
def test_plot_writes_a_png(tmp_path, request, name):
    report = request.getfixturevalue(name)
    out = tmp_path / "plots" / "throughput.png"  # the directory is created
    assert plot_throughput(report, out) == out
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert sorted(p.name for p in out.parent.iterdir()) == ["throughput.png"]  # no temporary left behind


def test_plot_replaces_an_existing_file(tmp_path, ok_report):
    out = tmp_path / "t.png"
    out.write_bytes(b"old")
    plot_throughput(ok_report, out)
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_plot_single_window_and_gpu(tmp_path, ok_report):
    for i, c in enumerate(ok_report["report"]["copies"]):
        c["windows"] = c["windows"][:1]
        c["device"] = {"type": "gpu", "name": "NVIDIA H100", "index": i}
    ok_report["report"]["host"]["gpus"] = [{"name": "NVIDIA H100", "memory_bytes": None, "index": 0}]
    assert plot_throughput(ok_report, tmp_path / "g.png").read_bytes().startswith(PNG_MAGIC)


def test_plot_without_windows_is_an_error(tmp_path, failed_report):
    for c in failed_report["report"]["copies"]:
        c["windows"] = []
    out = tmp_path / "t.png"
    with pytest.raises(ReportError, match="^x.json has no timed windows to plot$"):
        plot_throughput(failed_report, out, source="x.json")
    assert not out.exists() and list(tmp_path.iterdir()) == []
