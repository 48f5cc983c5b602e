"""The module-durations plugin, run on a generated two-module suite in a pytest subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_each_module_total_is_printed_longest_first(tmp_path):
    (tmp_path / "test_quick.py").write_text("def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    (tmp_path / "test_slow.py").write_text(
        "import time, pytest\n\n@pytest.fixture(scope='module')\ndef build():\n    time.sleep(0.4)\n\n"
        "def test_c(build):\n    time.sleep(0.2)\n"
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.plugins.module_durations",
            "-p",
            "no:cacheprovider",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    summary = r.stdout.split("durations per test module", 1)[1].splitlines()[1:4]
    rows = [re.match(r"\s*([\d.]+)s\s+(\d+) tests  (\S.*)$", line).groups() for line in summary]
    assert [(Path(name).name, int(n)) for _, n, name in rows] == [
        ("test_slow.py", 1),
        ("test_quick.py", 2),
        ("in all", 3),
    ]
    # The module fixture's 0.4 s counts towards its module.
    assert float(rows[0][0]) >= 0.6 > float(rows[1][0])
    assert float(rows[2][0]) >= float(rows[0][0]) + float(rows[1][0]) - 0.02
