"""benchmarks/host_overhead.py: the HLO instruction count, and a real run on every installed backend
(a row per engine with its operations per step, and the input pipeline's line)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "host_overhead.py"
HLO = """HloModule jit_step, entry_computation_layout={(f32[2]{0})->f32[]}

%fused (p: f32[2]) -> f32[2] {
  %p = f32[2]{0} parameter(0)
  ROOT %e = f32[2]{0} exponential(%p)
}

ENTRY %main.9 (a: f32[2], b: f32[2,2]) -> (f32[2], s32[]) {
  %a = f32[2]{0} parameter(0), metadata={op_name="a"}
  %b = f32[2,2]{1,0} parameter(1)
  %c = s32[] constant(1)
  %f = f32[2]{0} fusion(%a), kind=kLoop, calls=%fused
  %d = f32[2]{0} dot(%b, %f), lhs_contracting_dims={1}, rhs_contracting_dims={0}
  %s = (f32[2]{0}, s32[2]{0}) sort(%d, %c), dimensions={0}, to_apply=%fused
  %g = f32[2]{0} get-tuple-element(%s), index=0
  ROOT %t = (f32[2]{0}, s32[]) tuple(%g, %c)
}
"""


def load():
    spec = importlib.util.spec_from_file_location("host_overhead", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_entry_computation_counts_the_instructions_that_do_work():
    # fusion, dot and sort (tuple-shaped) in ENTRY; not the fused computation's, nor parameters,
    # constants, get-tuple-element or the ROOT tuple
    assert load().entry_work(HLO) == 3


def test_a_run_gives_each_engine_its_host_time_and_operations(tmp_path, built):
    backends = [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b)]
    r = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--backends",
            ",".join(backends),
            "--steps",
            "2",
            "--windows",
            "2",
            "--warmup",
            "1",
            "--data-dir",
            str(built),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    modes = {"tensorflow": "tf.function", "jax": "jax.jit", "torch": "eager"}
    for backend in backends:
        (row,) = [line.split() for line in r.stdout.splitlines() if line.split()[:1] == [backend]]
        assert row[1] == modes[backend], r.stdout
        ms, low, high = float(row[2]), *map(float, row[3].split("-"))
        assert 0 < low <= ms <= high and int(row[4]) > 10, r.stdout  # a step is many operations
    assert re.search(r"input pipeline, batches of 32 cached in memory: \d+ events/s \(a pass of 12 events", r.stdout)
