"""A Ray cluster of two nodes on this machine, as examples/slurm/hpo-ray-apptainer.sbatch builds one over
a SLURM allocation: a head (`ray start --head`) and a worker (`ray start --address=HEAD:PORT`) as
separate processes, each with its own ports and temporary directory. `hepbench hpo run --address`
connects to it and its trials must run on both nodes.

Isolation from any other Ray on this machine (another test's `ray.init()`, someone's `ray start`):
every fixed port is a free one chosen here, the rest are random (0), each node has its own short
--temp-dir, and every client is given the head's explicit address (never `auto`, which would find
the newest cluster on the machine). Teardown ends only this cluster's processes: `ray stop` would end
every Ray on the machine.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the hpo extra: pip install 'hepbench[hpo]'")
pytest.importorskip("ray.tune", reason="the hpo extra: pip install 'hepbench[hpo]'")
pytestmark = pytest.mark.slow  # a cluster start and a real search: about a minute (several on a loaded machine)

BIN = Path(sys.executable).parent  # the venv running the tests: its ray and hepbench
START_TIMEOUT = 120  # s, for both nodes to be alive (a loaded 2-core machine needs ~50)
# No RAY_* setting from outside (RAY_ADDRESS would override what the commands are told). Token
# authentication with a token of this cluster's own, set explicitly for every process: Ray 2.60's
# `ray start --head` turns it on by itself when ~/.ray/auth_token exists (any earlier local
# `ray.init()` writes one), but `ray start --address` and `ray.init(address=...)` do not, and are
# then refused ("Authentication token is missing or incorrect").
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("RAY_")},
    "RAY_AUTH_MODE": "token",
    "RAY_AUTH_TOKEN": secrets.token_hex(32),
    "RAY_USAGE_STATS_ENABLED": "0",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "PYTHONUNBUFFERED": "1",
}

# Waits until NODES nodes are alive and prints their ids, as the SLURM script does before the driver.
# Writes the nodes to a file, not stdout, which Ray's driver shares with its own log lines.
WAIT_FOR_NODES = """
import json, os, sys, time, ray
address, nodes, timeout, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
ray.init(address=address, logging_level="ERROR", log_to_driver=False)
end = time.monotonic() + timeout
while True:
    alive = [n for n in ray.nodes() if n["Alive"]]
    if len(alive) >= nodes or time.monotonic() > end:
        break
    time.sleep(0.5)
with open(out + ".tmp", "w") as f:
    json.dump([{"node_id": n["NodeID"], "cpus": n["Resources"].get("CPU", 0)} for n in alive], f)
os.replace(out + ".tmp", out)
"""


def free_ports(n: int) -> list[int]:
    """n ports free now (all bound at once, so they differ). Another program may still take one
    before Ray binds it: a small race, which would show as a failed `ray start`."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def node_command(temp_dir: Path, ports: list[int], head_port: int, head: bool) -> list[str]:
    """`ray start --block` for one node of 1 CPU. The ports Ray would otherwise take at fixed numbers
    (GCS 6379, client server 10001, dashboard 8265, dashboard agent 52365) are free ones; the others are
    random (0; the client server port cannot be 0)."""
    cmd = [
        str(BIN / "ray"),
        "start",
        "--block",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=1",
        "--num-gpus=0",
        f"--temp-dir={temp_dir}",
        "--object-store-memory=100000000",
        "--disable-usage-stats",
        "--node-manager-port=0",
        "--object-manager-port=0",
        "--min-worker-port=0",
        "--max-worker-port=0",
        "--dashboard-agent-grpc-port=0",
        "--runtime-env-agent-port=0",
        "--metrics-export-port=0",
        f"--dashboard-agent-listen-port={ports[0]}",
    ]
    if head:  # (without the dashboard, Ray 2.60 still starts dashboard.py, at --dashboard-port)
        return cmd + [
            "--head",
            f"--port={head_port}",
            "--include-dashboard=false",
            f"--ray-client-server-port={ports[1]}",
            f"--dashboard-port={ports[2]}",
        ]
    return cmd + [f"--address=127.0.0.1:{head_port}"]


def session_processes(sessions: set[int]) -> list[int]:
    """Processes in these sessions: each `ray start` leads a session of its own (start_new_session),
    which its node's processes inherit: gcs_server, raylet, agents, and the Ray workers (these are
    process groups of their own, and their command lines read `ray::...`, so neither the process
    group nor the temporary directory in the command line finds them)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                # /proc/PID/stat: "pid (comm) state ppid pgrp session ..."; comm may hold spaces
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) in sessions and fields[0] != "Z":  # (a zombie is dead already)
                pids.append(int(proc.name))
    return pids


@dataclass
class Cluster:
    address: str
    node_ids: set[str]
    logs: Path

    def log_tail(self) -> str:
        return "".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.logs.glob("*.log"))
        )


def stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each `ray start --block`, which ends its node's processes (not while a worker node
    still waits for its head: then it ignores SIGTERM), then SIGKILL to whatever of their sessions is left."""
    for p in reversed(procs):  # the worker node first
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    sessions = {p.pid for p in procs}
    end = time.monotonic() + 10
    while (left := session_processes(sessions)) and time.monotonic() < end:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.fixture(scope="module")
def ray_cluster():
    # Short: Ray's Unix sockets live under --temp-dir, and a socket path has at most 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="hbray-", dir="/tmp"))
    logs = root / "logs"
    logs.mkdir()
    head_port, *ports = free_ports(6)
    procs: list[subprocess.Popen] = []
    try:
        for name, head, node_ports in (("head", True, ports[:3]), ("worker", False, ports[3:])):
            with open(logs / f"{name}.log", "wb") as log:
                procs.append(
                    subprocess.Popen(
                        node_command(root / name, node_ports, head_port, head),
                        env=ENV,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
            # (both at once: the worker retries until the head's GCS answers)
        cluster = Cluster(f"127.0.0.1:{head_port}", set(), logs)
        try:
            r = subprocess.run(
                [
                    str(BIN / "python"),
                    "-c",
                    WAIT_FOR_NODES,
                    cluster.address,
                    "2",
                    str(START_TIMEOUT),
                    str(root / "nodes.json"),
                ],
                env=ENV,
                capture_output=True,
                text=True,
                timeout=START_TIMEOUT + 60,
            )
        except subprocess.TimeoutExpired:
            pytest.fail("no answer from the Ray head\n" + cluster.log_tail())
        assert r.returncode == 0, r.stderr[-3000:] + cluster.log_tail()
        nodes = json.loads((root / "nodes.json").read_text())
        assert len(nodes) == 2 and all(n["cpus"] == 1 for n in nodes), f"{nodes}\n{cluster.log_tail()}"
        cluster.node_ids = {n["node_id"] for n in nodes}
        yield cluster
    finally:
        stop(procs)
        shutil.rmtree(root, ignore_errors=True)


SBATCH = Path(__file__).resolve().parents[2] / "examples" / "slurm" / "hpo-ray-apptainer.sbatch"


def test_the_slurm_scripts_wait_sees_both_nodes(ray_cluster):
    """The Python the SLURM script runs (from a here-document) before it starts the driver."""
    text = SBATCH.read_text()
    code = text[text.index("<<'EOF'") :].split("\n", 1)[1].split("\nEOF\n", 1)[0]
    r = subprocess.run(
        [str(BIN / "python"), "-", ray_cluster.address, "2", "30"],
        input=code,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"ray cluster at {ray_cluster.address}: 2 nodes, 2 CPUs, 0 GPUs" in r.stdout


# Small fixed architecture (the tiny model's): the trials differ in lr, dropout and weight decay only.
SMALL_SPACE = """
bin_size:             {sampler: constant, value: 16}
output_dim:           {sampler: constant, value: 16}
num_graph_layers_id:  {sampler: constant, value: 1}
num_graph_layers_reg: {sampler: constant, value: 1}
"""


def test_hepbench_hpo_run_spreads_its_trials_over_both_nodes(ray_cluster, built, tiny_config, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(SMALL_SPACE)
    results = tmp_path / "hpo"
    cmd = [
        str(BIN / "hepbench"),
        "hpo",
        "run",
        "--address",
        ray_cluster.address,
        "--data-dir",
        str(built),
        "-w",
        str(results),
        "--scheduler",
        "fifo",
        "--num-samples",
        "2",
        "--max-epochs",
        "1",
        "--cpus-per-trial",
        "1",
        "--config",
        str(tiny_config),
        "--space",
        str(space),
        "--seed",
        "0",
        "--no-graph-optimizer",
    ]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    trials = json.loads((results / "hpo_trials.json").read_text())["trials"]
    assert len(trials) == 2 and all(t["status"] == "completed" for t in trials), trials
    # 1 CPU per node and per trial: the two trials ran at once, one on each node.
    assert {t["node_id"] for t in trials} == ray_cluster.node_ids, (trials, ray_cluster.node_ids)
    assert all(t["hostname"] == socket.gethostname() for t in trials)
    for name in ("hpo_trials.csv", "best_config.json"):
        assert (results / name).is_file()
