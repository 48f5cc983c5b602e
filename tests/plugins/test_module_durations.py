"""The module-durations plugin, run on a generated three-module suite in a pytest subprocess, in one
process and in two xdist workers (whose CPU times travel to the controller on the reports)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUSY_CHILD = "import subprocess, sys\n\ndef test_d():\n    subprocess.run([sys.executable, '-c', {!r}], check=True)\n"
SPIN = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\n"


@pytest.mark.parametrize("workers", [[], ["-n", "2", "-p", "tests.plugins.xdist_units"]], ids=["one", "xdist"])
def test_each_module_total_is_printed_longest_first_with_its_cpu_time(tmp_path, workers):
    (tmp_path / "test_quick.py").write_text("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    (tmp_path / "test_slow.py").write_text(
        "import time, pytest\n\n@pytest.fixture(scope='module')\ndef build():\n    time.sleep(0.8)\n\n"
        "def test_c(build):\n    time.sleep(0.4)\n"
    )
    (tmp_path / "test_busy.py").write_text(BUSY_CHILD.format(SPIN))
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.plugins.module_durations", "-p", "no:cacheprovider"]
        + workers
        + [str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    summary = r.stdout.split("durations per test module (wall, CPU)", 1)[1].splitlines()[1:6]
    pattern = r"\s*([\d.]+)s\s+([\d.]+)s cpu\s+(\d+) tests  (\S.*)$"
    rows = {Path(m[4]).name: (float(m[1]), float(m[2]), int(m[3])) for m in map(re.compile(pattern).match, summary[:4])}
    assert list(rows) == ["test_slow.py", "test_busy.py", "test_quick.py", "in all"]
    assert [n for _, _, n in rows.values()] == [1, 1, 2, 4]
    slow, busy, quick, total = rows.values()
    # The module fixture's 0.8 s counts towards its module; sleeping is wall time, not CPU time.
    assert slow[0] >= 1.2 > busy[0] and slow[1] < 0.3
    # A child process's CPU time counts towards the module that waited for it.
    assert busy[1] >= 0.5 > quick[1]
    assert total[0] >= slow[0] + busy[0] + quick[0] - 0.02
    assert re.fullmatch(r"machine: \d+ CPUs, busy \d+ % of the session", summary[4]), summary[4]
