"""Data-parallel jobs on two hosts: two network namespaces joined by a veth pair, one rank in each, and one report
that names both hosts. Horovod: `hepbench run --strategy horovod` started by horovodrun over a stand-in ssh
(multihost/ssh_agent.sh). PyTorch DDP: `hepbench scale --launcher torchrun` on the first host starts one torchrun per
host (the second over the stand-in ssh), which meet in a c10d rendezvous on the first host's address (--nnodes 2)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hepbench.core.schema import load_report, validate_report

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
AGENT = Path(__file__).parent / "multihost" / "ssh_agent.sh"
# Host name -> address. horovodrun runs on the first host, as it would on a cluster's first node.
HOSTS = {"hepbench-node-a": "10.213.7.1", "hepbench-node-b": "10.213.7.2"}
# Horovod matches interfaces across hosts by name, so both ends of the veth pair carry this one.
IFACE = "hb0"
# `ip netns exec NS` mounts /etc/netns/NS/hosts over /etc/hosts: each "host" resolves the others' names, which
# Horovod's Gloo transport needs (it looks up this host's own name), as on a real cluster.
ETC_NETNS = Path("/etc/netns")


def ip(*args) -> str:
    r = subprocess.run(["ip", *args], capture_output=True, text=True)
    assert r.returncode == 0, f"ip {' '.join(args)}: {r.stderr.strip()}"
    return r.stdout


@pytest.fixture
def netns():
    """{host name: namespace}: two namespaces joined by a veth pair, with `lo` up and IFACE addressed."""
    if os.geteuid() != 0:
        pytest.skip("creating network namespaces needs root")
    if not (shutil.which("ip") and shutil.which("unshare")):
        pytest.skip("needs `ip` (iproute2) and `unshare` (util-linux)")
    names = dict(zip(HOSTS, (f"hepbench-{os.getpid()}-{c}" for c in "ab")))  # per run: parallel runs do not clash
    made_etc_netns = not ETC_NETNS.exists()
    created = []
    try:
        for ns in names.values():
            r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
            if r.returncode != 0:
                pytest.skip(f"cannot create a network namespace here: {r.stderr.strip()}")
            created.append(ns)
        a, b = names.values()
        ip("link", "add", IFACE, "netns", a, "type", "veth", "peer", "name", IFACE, "netns", b)
        hosts_file = "127.0.0.1\tlocalhost\n" + "".join(f"{addr}\t{host}\n" for host, addr in HOSTS.items())
        for host, ns in names.items():
            ip("-n", ns, "addr", "add", f"{HOSTS[host]}/24", "dev", IFACE)
            ip("-n", ns, "link", "set", "lo", "up")
            ip("-n", ns, "link", "set", IFACE, "up")
            (ETC_NETNS / ns).mkdir(parents=True, exist_ok=True)
            (ETC_NETNS / ns / "hosts").write_text(hosts_file)
        yield names
    finally:
        for ns in created:  # deleting a namespace deletes its end of the veth pair, hence the pair
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
            shutil.rmtree(ETC_NETNS / ns, ignore_errors=True)
        if made_etc_netns:
            with contextlib.suppress(OSError):
                ETC_NETNS.rmdir()  # only once empty: a parallel run may still use it


def link_bytes(ns: str) -> tuple[int, int]:
    """(received, sent) bytes on IFACE in namespace ns."""
    stats = json.loads(ip("-n", ns, "-j", "-s", "link", "show", IFACE))[0]["stats64"]
    return stats["rx"]["bytes"], stats["tx"]["bytes"]


def launch(netns: dict[str, str], tmp_path: Path, *cmd) -> tuple[int, str]:
    """`cmd` on the first host, in its namespace and under its name, with the stand-in ssh first on its PATH
    (a launcher runs on the first host, as it would on a cluster's first node); returns (exit code, output)."""
    agent_dir = tmp_path / "agent"
    agent_dir.mkdir()
    shutil.copy(AGENT, agent_dir / "ssh")
    (agent_dir / "ssh").chmod(0o755)
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PATH": f"{agent_dir}:{os.environ['PATH']}",
        "HEPBENCH_TEST_HOSTS": " ".join(f"{host}={ns}" for host, ns in netns.items()),
    }
    first = next(iter(HOSTS))
    cmd = [
        "ip",
        "netns",
        "exec",
        netns[first],
        "unshare",
        "--uts",
        "sh",
        "-c",
        'hostname "$0" && exec "$@"',
        first,
        *map(str, cmd),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        out, _ = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the launchers stop their ranks on SIGTERM; SIGKILL would orphan them
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"the run did not end in 600 s:\n{out[-6000:]}")
    return proc.returncode, out


def check_report(results: Path, strategy: str) -> dict:
    """The two-host report: one rank per host, rank 0 on the first; the score is the sum; the losses agree."""
    report = load_report(results / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    ranks = rep["copies"]
    assert [c["rank"] for c in ranks] == [0, 1] and [c["local_rank"] for c in ranks] == [0, 0]
    assert [c["host"] for c in ranks] == list(HOSTS)
    assert rep["benchmark"]["strategy"] == strategy and rep["wl-stats"]["count"] == 2
    assert rep["wl-scores"]["train"] == pytest.approx(sum(c["train"]["events_per_second"] for c in ranks))
    # Gradients are averaged across the link: both ranks train the same model, so the losses agree.
    assert ranks[0]["train"]["final_loss"] == pytest.approx(ranks[1]["train"]["final_loss"], rel=1e-6)
    return rep


def check_gradients_crossed(before: tuple[int, int], after: tuple[int, int], rep: dict) -> None:
    """Each rank must receive the other's whole fp32 gradient at every step, so at least that much crossed the veth
    pair in each direction (on top of the launcher's and the library's control traffic)."""
    received, sent = after[0] - before[0], after[1] - before[1]
    first = rep["copies"][0]
    steps = first["warmup"]["steps"] + first["train"]["steps"]
    gradients = 4 * rep["model"]["trainable_parameters"] * steps
    assert received > gradients and sent > gradients, (received, sent, gradients)


def test_one_horovod_rank_per_host_over_a_veth_link(netns, built, tiny_config, tmp_path):  # netns first: skip early
    pytest.importorskip("horovod.tensorflow", reason="Horovod is built by `make setup` (second step)")
    results = tmp_path / "results"
    ns_a = netns[next(iter(HOSTS))]
    before = link_bytes(ns_a)
    # --disable-cache: horovodrun would otherwise skip its ssh and interface checks on a second run.
    code, out = launch(
        netns,
        tmp_path,
        BIN / "horovodrun",
        "-np",
        "2",
        "--gloo",
        "-H",
        ",".join(f"{host}:1" for host in HOSTS),
        "--disable-cache",
        "--start-timeout",
        "120",
        BIN / "hepbench",
        "run",
        "--strategy",
        "horovod",
        "--data-dir",
        built,
        "--config",
        tiny_config,
        "-w",
        results,
        "--threads",
        "1",
    )
    assert code == 0, out[-6000:]
    assert out.count("train score") == 1, out[-6000:]  # rank 0 alone reports
    rep = check_report(results, "horovod")
    check_gradients_crossed(before, link_bytes(ns_a), rep)


def test_one_ddp_rank_per_host_meeting_at_the_first_host(netns, built, tiny_config, tmp_path):
    pytest.importorskip("torch.distributed")
    results = tmp_path / "scaling"
    ns_a = netns[next(iter(HOSTS))]
    before = link_bytes(ns_a)
    code, out = launch(
        netns,
        tmp_path,
        BIN / "hepbench",
        "scale",
        "--launcher",
        "torchrun",
        "--ranks",
        "2",
        "-H",
        ",".join(f"{host}:1" for host in HOSTS),
        "-w",
        results,
        "--timeout",
        "500",
        "--",
        "--data-dir",
        built,
        "--config",
        tiny_config,
        "--threads",
        "1",
    )
    log = (results / "ranks-2" / "launcher.log").read_text() if (results / "ranks-2" / "launcher.log").exists() else ""
    assert code == 0, out[-3000:] + log[-6000:]
    assert "ssh -o BatchMode=yes hepbench-node-b" in out and "--rdzv-endpoint hepbench-node-a:" in out
    assert log.count("train score") == 1, log[-6000:]  # rank 0 alone reports
    rep = check_report(results / "ranks-2", "ddp")
    assert rep["benchmark"]["process_group"] == "gloo" and rep["backend"]["name"] == "torch"
    check_gradients_crossed(before, link_bytes(ns_a), rep)
