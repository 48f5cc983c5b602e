"""benchmarks/profile_step.py: the self-time arithmetic, the table, and a real profile of a tiny
model on every installed backend (its top ops must be that framework's op names)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "profile_step.py"
TINY = [
    "--set",
    "model.bin_size=64",
    "--set",
    "model.distance_dim=8",
    "--set",
    "model.ffn_dist_hidden_dim=8",
    "--set",
    "model.output_dim=16",
    "--set",
    "model.decoder_hidden_dim=16",
    "--set",
    "model.num_graph_layers_id=1",
    "--set",
    "model.num_graph_layers_reg=1",
]
# Op names each framework's profiler gives the products of the model: TensorFlow's op types (oneDNN's
# _Mkl variants where it is on), XLA's HLO instructions (YNNPACK fusions hold dots), ATen ops.
MATMULS = {
    "tensorflow": {"MatMul", "BatchMatMulV2", "_MklMatMul", "_MklBatchMatMulV2", "_FusedMatMul", "_MklFusedMatMul"},
    "jax": {"dot", "ynn_fusion", "fusion"},
    "torch": {"aten::mm", "aten::bmm", "aten::addmm", "aten::matmul"},
}


def load():
    spec = importlib.util.spec_from_file_location("profile_step", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_self_times_subtract_nested_ops_only_once():
    ps = load()
    # A call op (0..100) holding two ops, the second holding a third; then a sibling after the call.
    events = [
        (0, 100, "Call", "f"),
        (10, 30, "MatMul", "a"),
        (50, 40, "Mul", "b"),
        (60, 10, "Exp", "c"),
        (100, 5, "Add", "d"),
    ]
    times = {name: t for _, name, t, _ in ps.self_times(events)}
    assert times == {"f": 30, "a": 30, "b": 30, "c": 10, "d": 5}
    assert sum(times.values()) == 105  # the wall span of the line: nothing counted twice


def test_table_groups_shares_and_filters():
    ps = load()
    records = [
        ("MatMul", "x/MatMul", 6_000_000_000, 1),
        ("MatMul", "y/MatMul", 2_000_000_000, 1),
        ("Mul", "x/mul", 1_500_000_000, 3),
        ("Exp", "x/exp", 500_000_000, 1),
    ]
    t = ps.table(records, steps=2, by="type", top=2)
    assert [r["op"] for r in t["rows"]] == ["MatMul", "Mul"]
    first = t["rows"][0]
    assert first["ms_per_step"] == pytest.approx(4.0) and first["share"] == pytest.approx(0.8)
    assert first["calls_per_step"] == pytest.approx(1.0)
    assert t["op_ms_per_step"] == pytest.approx(5.0) and t["ops"] == 3
    assert t["rows"][1]["calls_per_step"] == pytest.approx(1.5)
    assert t["covered"] == pytest.approx(0.95)
    by_name = ps.table(records, steps=1, by="name", top=10, only=frozenset({"Mul"}))
    assert [r["op"] for r in by_name["rows"]] == ["x/mul"]
    assert by_name["rows"][0]["share"] == pytest.approx(0.15)  # still a share of all op time


def installed(backend: str) -> bool:
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[backend]
    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_profile_of_a_tiny_model(backend, tmp_path):
    if not installed(backend):
        pytest.skip(f"{backend} is not installed")
    if backend == "jax" and not installed("tensorflow"):
        pytest.skip("the trace is read with TensorFlow's xplane protobuf module")
    out = tmp_path / "profile.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--backend",
            backend,
            "--elements",
            "128",
            "--events",
            "1",
            "--steps",
            "1",
            "--warmup",
            "0",
            "--top",
            "5",
            "--json",
            str(out),
            *TINY,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [result] = json.loads(out.read_text())
    rows = result["rows"]
    assert len(rows) == 5 and result["ops"] >= 5
    shares = [r["share"] for r in rows]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-9
    assert result["covered"] == pytest.approx(sum(shares))
    assert result["step_s"] > 0 and result["op_ms_per_step"] > 0
    # The model's matrix products are among the top ops, under the framework's own op names.
    assert MATMULS[backend] & {r["op"] for r in rows}, rows
    assert f"{backend} (" in proc.stdout and "rank" in proc.stdout
