"""--device gpu on a machine where the engine sees no GPU: a DeviceUnavailable refusal (a usage
error naming the engine and the way out) whose plan keeps the GPU device with none assigned, so the
run's failure report says what was asked for; --device auto resolves to the CPU instead."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from hepbench.core.errors import UsageError
from hepbench.mlpf.config import load_config
from hepbench.mlpf.run import benchmark
from hepbench.mlpf.run.plan import DeviceUnavailable, Inputs, RunOptions, plan_copies, plan_mirrored, resolve_device

DATASET = {"name": "delphes_pf", "version": "1.1.0", "synthetic": True, "train_events": 12, "test_events": 4}


def options(**kw) -> RunOptions:
    kw.setdefault("data_dir", Path("data"))
    kw.setdefault("results_dir", Path("results"))
    return RunOptions(config=load_config(), **kw)


@pytest.mark.parametrize("backend, label", [("tensorflow", "TensorFlow"), ("jax", "JAX"), ("torch", "PyTorch")])
def test_a_gpu_request_without_a_gpu_is_a_device_refusal_naming_the_engine_and_the_way_out(backend, label):
    with pytest.raises(DeviceUnavailable, match=rf"--device gpu: {label} sees no GPU .*use --device cpu or auto"):
        resolve_device("gpu", [], backend)
    assert issubclass(DeviceUnavailable, UsageError)  # callers that stop on a usage error still do
    assert resolve_device("auto", [], backend) == "cpu"


def test_a_refused_plan_keeps_the_gpu_device_and_assigns_none():
    for copies in (1, 2):
        specs = plan_copies(options(copies=copies), "gpu", [], [0, 1], refused=True)
        assert [(s.device, s.gpu_index) for s in specs] == [("gpu", None)] * copies
    with pytest.raises(UsageError, match=r"--copies 1 needs 1 GPUs \(one per copy\); 0 visible"):
        plan_copies(options(), "gpu", [], [0, 1])  # not refused: the layout check stands
    spec = plan_mirrored(options(strategy="mirrored"), "gpu", [], [0, 1], refused=True)
    assert (spec.device, spec.replicas, spec.gpu_indices) == ("gpu", 1, [])
    assert Inputs(dataset=DATASET, device="cpu").refusal is None  # only a refused run carries one


@pytest.mark.parametrize("strategy", ["single", "mirrored"])
def test_run_benchmark_writes_a_failure_report_and_starts_nothing(monkeypatch, built, tmp_path, strategy):
    monkeypatch.setattr(benchmark, "visible_gpus", lambda backend, vendor=None: [])
    monkeypatch.setattr(benchmark, "verify_data", lambda *a: pytest.fail("a refused run verifies nothing"))
    monkeypatch.setattr(benchmark, "_start", lambda *a: pytest.fail("a refused run starts no copy"))
    results, stream = tmp_path / "results", io.StringIO()
    report, code, path = benchmark.run_benchmark(
        options(device="gpu", data_dir=built, results_dir=results, strategy=strategy), stream
    )
    assert code == 2 and path == results / "mlpf_summary.json"
    assert "hepbench: error: --device gpu: TensorFlow sees no GPU" in stream.getvalue()
    written = json.loads(path.read_text())["report"]
    assert written["status"] == "failed" and "sees no GPU" in written["log"] and written["wl-scores"] == {}
    assert written["benchmark"]["device"] == "gpu"
    assert [(c["status"], c["device"]["type"], c["windows"]) for c in written["copies"]] == [("failed", "gpu", [])]
    assert report["report"]["status"] == "failed"


def test_a_refusal_is_only_for_a_missing_device(monkeypatch, built, tmp_path):
    monkeypatch.setattr(benchmark, "visible_gpus", lambda backend, vendor=None: [])
    inputs = benchmark.LocalCopies("single").validate(options(device="auto", data_dir=built, results_dir=tmp_path))
    assert (inputs.device, inputs.refusal) == ("cpu", None)
