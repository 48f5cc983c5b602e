"""The rank watchdog (Horovod and DDP ranks) and launcher detection (no Horovod or torch.distributed needed)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from hepbench.mlpf.run.plan import launched_as_rank

SCRIPT = """
import sys, time
from pathlib import Path
from hepbench.mlpf.run.ranks import Watchdog
w = Watchdog(0.4, lambda: Path(sys.argv[1]).write_text("report"))
w.start()
for _ in range(int(sys.argv[2])):   # beats for a while, then hangs as a stuck collective would
    time.sleep(0.1); w.beat()
time.sleep(60)
"""


def test_a_rank_without_progress_reports_and_exits_within_the_timeout(tmp_path):
    marker = tmp_path / "failure-report"
    start = time.monotonic()
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(marker), "10"], timeout=30)
    elapsed = time.monotonic() - start
    assert r.returncode == 1 and marker.read_text() == "report"
    assert 1.0 + 0.4 <= elapsed < 10  # beat for 1 s, then timed out after 0.4 s (checked every 0.1 s)


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, False),
        ({"HOROVOD_RANK": "0"}, True),
        ({"OMPI_COMM_WORLD_SIZE": "4"}, True),
        ({"OMPI_COMM_WORLD_SIZE": "1"}, False),  # mpirun -np 1: a single process
        ({"PMI_SIZE": "2"}, True),
        ({"SLURM_STEP_NUM_TASKS": "8", "SLURM_NTASKS": "8"}, True),  # srun -n 8 hepbench run
        ({"SLURM_STEP_NUM_TASKS": "1", "SLURM_NTASKS": "8"}, False),  # the batch script of an 8-task job
        ({"WORLD_SIZE": "2", "RANK": "1", "TORCHELASTIC_RUN_ID": "x"}, True),  # torchrun --nproc-per-node 2
        ({"WORLD_SIZE": "1", "RANK": "0", "TORCHELASTIC_RUN_ID": "x"}, True),  # torchrun of one rank: still a rank
    ],
)
def test_launcher_detection(monkeypatch, env, expected):
    for name in (
        "HOROVOD_RANK",
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "SLURM_STEP_NUM_TASKS",
        "SLURM_NTASKS",
        "WORLD_SIZE",
        "RANK",
        "TORCHELASTIC_RUN_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert launched_as_rank() is expected
