"""`hepbench run` on a stand-in NVIDIA, AMD and Intel node with two GPUs (tests/gpu_standins.py:
the vendor's management tool on the PATH, its driver's device nodes, a fake torch answering the GPU
probe as a CUDA, ROCm or XPU build): each of two copies is started with its own GPU through the
vendor's visibility variable, and the report lists both GPUs with their vendor and runtime; a CPU
run on such a node starts its copies and writes its report's host block as on a node without GPUs.

The copies are stand-ins too (no framework trains on a GPU here): each records the environment it
was started with, then ends without reporting, so the run writes a failure report, which is
validated against the schema like any other.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from hepbench.core import devices
from hepbench.core.errors import HepbenchError
from hepbench.core.hostinfo import host_info
from hepbench.core.schema import validate_report
from hepbench.mlpf.config import load_config
from hepbench.mlpf.run import benchmark, collect
from hepbench.mlpf.run.copy import CopySpec
from hepbench.mlpf.run.plan import RunOptions
from tests import gpu_standins

# A copy that writes the environment it was started in, then exits without a result.
RECORD_ENV = "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))"


@pytest.fixture
def started(monkeypatch, tmp_path):
    """The environments the run's copies were started with, by copy (filled as they start)."""
    envs: dict[int, dict] = {}
    folder = tmp_path / "copy-envs"
    folder.mkdir()

    def start(specs, workdir, vendor):
        import subprocess

        procs = []
        for spec in specs:
            path = folder / f"copy{spec.copy}.json"
            procs.append(
                subprocess.Popen([sys.executable, "-c", RECORD_ENV, str(path)], env=benchmark._child_env(spec, vendor))
            )
        for spec, proc in zip(specs, procs):
            proc.wait()
            envs[spec.copy] = json.loads((folder / f"copy{spec.copy}.json").read_text())
        return procs

    monkeypatch.setattr(benchmark, "_start", start)
    return envs


def run(built, tmp_path, **kw) -> dict:
    """The report of `hepbench run` (backend torch) with `kw` as its options; validated when written."""
    options = RunOptions(
        config=load_config(), data_dir=built, results_dir=tmp_path / "results", backend="torch", quiet=True, **kw
    )
    report, code, path = benchmark.run_benchmark(options, io.StringIO())
    assert code == 1 and path == tmp_path / "results" / "mlpf_summary.json"  # the stand-in copies never report
    return json.loads(path.read_text())


ASSIGNED = {
    "nvidia": ("CUDA_VISIBLE_DEVICES", {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}),
    "amd": ("ROCR_VISIBLE_DEVICES", {}),
    "intel": ("ZE_AFFINITY_MASK", {"ZE_ENABLE_PCI_ID_DEVICE_ORDER": "1"}),
}


@pytest.mark.parametrize("vendor", ["nvidia", "amd", "intel"])
def test_two_copies_each_get_their_own_gpu_of_the_vendor_and_the_report_lists_both(
    built, tmp_path, monkeypatch, started, vendor
):
    gpu_standins.install(tmp_path, monkeypatch, vendor, gpus=2)
    summary = run(built, tmp_path, device="gpu", copies=2)
    report = summary["report"]
    variable, order = ASSIGNED[vendor]
    assert [started[c][variable] for c in (0, 1)] == ["0", "1"]
    for env in started.values():
        assert {k: env[k] for k in order} == order
        # No other vendor's (or layer's) variable filters the copy's GPUs again.
        assert [v for v in devices.VISIBILITY_VARIABLES if v in env and v != variable] == []
    assert report["benchmark"]["device"] == "gpu" and report["benchmark"]["copies"] == 2
    assert [(c["device"]["type"], c["device"]["index"]) for c in report["copies"]] == [("gpu", 0), ("gpu", 1)]
    gpus = report["host"]["gpus"]
    assert [(g["vendor"], g["index"]) for g in gpus] == [(vendor, 0), (vendor, 1)]
    assert all(g["name"] and g["memory_bytes"] > 2**30 for g in gpus)
    runtime = report["host"]["gpu_runtime"]
    assert (runtime["vendor"], runtime["runtime"], runtime["source"]) == (
        vendor,
        devices.vendor(vendor).runtime,
        gpu_standins.VENDOR_TOOLS[vendor][0],
    )
    # What the engine adds on a GPU (none started here) is described by the schema too.
    report["backend"].update(gpu_runtime=runtime["runtime"], gpu_runtime_version="1.2")
    validate_report(summary)
    report["backend"]["gpu_runtime"] = "rocm"
    with pytest.raises(HepbenchError, match="gpu_runtime"):
        validate_report(summary)


def test_an_amd_node_s_outer_rocr_and_hip_selection_is_kept(built, tmp_path, monkeypatch, started):
    """A batch system's ROCR_VISIBLE_DEVICES, narrowed by HIP_VISIBLE_DEVICES: the copies get the
    physical GPUs both leave (5 and 7) in ROCR_VISIBLE_DEVICES, and no HIP-level variable."""
    gpu_standins.install(tmp_path, monkeypatch, "amd", gpus=2)
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "4,5,6,7")
    monkeypatch.setenv("HIP_VISIBLE_DEVICES", "1,3")
    report = run(built, tmp_path, device="gpu", copies=2)["report"]
    assert [started[c]["ROCR_VISIBLE_DEVICES"] for c in (0, 1)] == ["5", "7"]
    assert [("HIP_VISIBLE_DEVICES" in e, "CUDA_VISIBLE_DEVICES" in e) for e in started.values()] == [(False, False)] * 2
    assert [c["device"]["index"] for c in report["copies"]] == [5, 7]


def test_a_cpu_run_on_a_gpu_node_is_a_cpu_run_as_before(built, tmp_path, monkeypatch, started):
    gpu_standins.install(tmp_path, monkeypatch, "amd", gpus=2)
    monkeypatch.setattr(benchmark, "visible_gpus", lambda *a: pytest.fail("a CPU run asks no framework for GPUs"))
    report = run(built, tmp_path, device="cpu", copies=2)["report"]
    assert report["host"] == host_info([])  # the same keys and values: no gpu_runtime, no GPUs
    assert "gpu_runtime" not in report["backend"]
    for env in started.values():
        assert [v for v in (*devices.VISIBILITY_VARIABLES, "ZE_ENABLE_PCI_ID_DEVICE_ORDER") if v in env] == []


def test_without_a_management_tool_the_report_lists_the_copies_own_gpus(monkeypatch, tmp_path):
    gpu_standins.install(tmp_path, monkeypatch, "amd", tools=())
    spec = CopySpec(
        copy=0,
        copies=1,
        config={},
        data_dir="d",
        device="gpu",
        gpu_index=None,
        cpus=None,
        threads=1,
        events_per_window=1,
        validation_events=0,
        strategy="mirrored",
        gpu_indices=[2, 3],
        gpu_vendor="amd",
    )
    entries = [
        {
            "device": {"type": "gpu", "name": "AMD Instinct MI250X", "index": 2},
            "replica_devices": [{"type": "gpu", "name": "AMD Instinct MI250X", "index": i} for i in (2, 3)],
        }
    ]
    gpus, runtime = collect.host_gpus(spec, entries)
    assert [(g["index"], g["name"], g["memory_bytes"]) for g in gpus] == [
        (2, "AMD Instinct MI250X", None),
        (3, "AMD Instinct MI250X", None),
    ]
    assert runtime == {
        "vendor": "amd",
        "runtime": "hip",
        "version": None,
        "driver_version": None,
        "source": "framework",
    }
    cpu = CopySpec(
        copy=0,
        copies=1,
        config={},
        data_dir="d",
        device="cpu",
        gpu_index=None,
        cpus=None,
        threads=1,
        events_per_window=1,
        validation_events=0,
    )
    assert collect.host_gpus(cpu, entries) == ([], None)


@pytest.mark.parametrize("kind, group", [("xpu", "xccl"), ("cuda", "nccl")])
def test_a_ddp_rank_joins_with_its_gpu_api_s_collectives(monkeypatch, kind, group):
    torch = pytest.importorskip("torch")
    import torch.distributed as dist

    from hepbench.mlpf.run.ddp import DdpRank

    chosen, joined = [], {}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: kind == "cuda")
    monkeypatch.setattr(torch.xpu, "is_available", lambda: kind == "xpu")
    module = torch.get_device_module(kind)
    monkeypatch.setattr(module, "device_count", lambda: 2)
    monkeypatch.setattr(module, "set_device", chosen.append)
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: joined.update(kw))
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.setenv(
            name,
            {"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}[
                name
            ],
        )
    rank = DdpRank()
    options = RunOptions(config=load_config(), data_dir=Path("d"), results_dir=Path("r"), device="gpu", backend="torch")
    assert rank.join(options) == ["0", "1"]
    assert chosen == [1] and rank.process_group == group and rank.benchmark() == {"process_group": group}
    assert (joined["backend"], joined["rank"], joined["world_size"]) == (f"cpu:gloo,{kind}:{group}", 3, 4)
