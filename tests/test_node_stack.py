"""The engines on each node stack (tests/node_stack.py: the GPU machine's, Python 3.12, NumPy 2.5.2,
jax 0.11.2, torch 2.11.0; and the newest, Python 3.13; neither has TensorFlow), hepbench installed
into it as benchmarks/gpu_check.sh installs it (offline, the stack's packages kept): JAX and PyTorch
agree on the default model as they do in the reference environment (tests/mlpf/train/parity_check.py,
the same tolerances), and two DDP ranks equal one process on the combined batch
(tests/mlpf/train/ddp_check.py). The GPU check itself (data build, a `hepbench run` per engine) runs
on these stacks in tests/benchmarks/test_gpu_check.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.mlpf.train.test_parity import BF16_JAX_TORCH, TOLERANCES, assert_agree
from tests.node_stack import STACKS
from tests.worker_results import RESULTS_DIR, read_results, run_workers

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", params=STACKS, ids=lambda s: s.name)
def stack(request, tmp_path_factory) -> dict:
    python = request.param.python()
    return {
        "python": python,
        "packages": request.param.packages,
        "env": request.param.install_site(python, tmp_path_factory.mktemp(request.param.name) / "site"),
    }


def test_jax_and_pytorch_agree_on_the_nodes_stack(stack, tmp_path):
    env = {**stack["env"], RESULTS_DIR: str(tmp_path)}
    procs = [
        subprocess.Popen(
            [stack["python"], "-m", "tests.mlpf.train.parity_check", backend, "fp32", "bf16"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for backend in ("jax", "torch")
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=1200)
        assert proc.returncode == 0, stderr[-3000:]
    found = read_results(tmp_path)
    assert found["jax-fp32"]["weights_sha256"] == found["torch-fp32"]["weights_sha256"]
    assert_agree(found["jax-fp32"], found["torch-fp32"], TOLERANCES["fp32"])
    assert_agree(found["jax-bf16"], found["torch-bf16"], BF16_JAX_TORCH)
    # What ran was the node's jax and torch, not the reference's.
    assert found["jax-fp32"]["engine"]["version"] == stack["packages"]["jax"]
    assert found["torch-fp32"]["engine"]["version"].split("+")[0] == stack["packages"]["torch"]


def test_two_ddp_ranks_equal_one_process_on_the_nodes_stack(stack):
    r, found = run_workers(
        [
            stack["python"],
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "tests.mlpf.train.ddp_check",
        ],
        cwd=ROOT,
        env=stack["env"],
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-4000:]
    assert sorted(found) == ["rank-0", "rank-1"]
    for out in found.values():
        assert out["max_weight_difference"] < 1e-4 and out["max_rank_difference"] == 0.0
        assert out["loss"] == pytest.approx(out["expected_loss"], rel=1e-5)
