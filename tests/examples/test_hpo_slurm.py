"""examples/slurm/hpo-ray-apptainer.sbatch: valid bash, a Ray head and workers over the allocation
with the resources asked for, a driver command `hepbench hpo run`'s own parser accepts, and the
refusals before anything starts. Its Ray cluster itself (head + worker processes, trials on both)
is tested in tests/hpo/test_ray_cluster.py, which also runs this script's wait-for-nodes code."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
from pathlib import Path

import pytest

from hepbench.cli import build_parser

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "slurm" / "hpo-ray-apptainer.sbatch"
README = SCRIPT.parent / "README.md"
# Only what the script reads: none of the host's SLURM_*, MLPF_*, RAY_* or TUNE_* settings may leak in.
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MLPF_", "HEPBENCH_", "RAY_", "TUNE_"))}
# Stand-in scontrol: expands a plain comma-separated node list (no ranges needed here).
FAKE_SCONTROL = """#!/bin/bash
[[ $1 == show && $2 == hostnames ]] || exit 64
tr , '\\n' <<< "$3"
"""


def run_script(env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env={**BASE_ENV, **env}, cwd=cwd, timeout=60
    )


def allocation(tmp_path: Path, nodes: list[str], **env) -> dict:
    """The variables sbatch gives the batch script on the first node of `nodes`, and scontrol."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "scontrol").write_text(FAKE_SCONTROL)
    (bin_dir / "scontrol").chmod(0o755)
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_JOB_ID": "42",
        "SLURMD_NODENAME": nodes[0],
        "SLURM_JOB_NODELIST": ",".join(nodes),
        "SLURM_JOB_NUM_NODES": str(len(nodes)),
        "MLPF_RAY_HEAD_IP": "10.1.2.3",
        **env,
    }


def dry_run(env: dict, tmp_path: Path) -> tuple[str, list[list[str]]]:
    """The summary comment, and each printed command as words (shell-quoted with printf %q)."""
    r = run_script({"MLPF_DRY_RUN": "1", **env}, tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    commands = []
    for line in lines:
        if line.startswith("#"):
            continue
        split = subprocess.run(
            ["bash", "-c", 'eval "w=($1)"; printf "%s\\0" "${w[@]}"', "_", line.removesuffix("&")],
            capture_output=True,
            text=True,
            check=True,
        )
        commands.append(split.stdout.split("\0")[:-1])
    return lines[0], commands


def hpo_run_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    (groups,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    (commands,) = [a for a in groups.choices["hpo"]._actions if isinstance(a, argparse._SubParsersAction)]
    return commands.choices["run"]


def parse_hpo_run(words: list[str]):
    """`hepbench hpo run`'s own parser; an unknown option or a bad value fails the test."""
    starts = [i for i, w in enumerate(words[:-2]) if w.endswith("/hepbench") and words[i + 1 : i + 3] == ["hpo", "run"]]
    assert len(starts) == 1, words
    args = words[starts[0] + 3 :]
    # argparse also takes abbreviations (--num-s): a renamed option would still match its old name.
    names = set(hpo_run_parser()._option_string_actions)
    for word in args:
        if word.startswith("-") and not re.fullmatch(r"-?\d+(\.\d+)?", word) and word.split("=")[0] not in names:
            pytest.fail(f"hepbench hpo run has no option {word!r}")
    try:
        return build_parser().parse_args(["hpo", "run", *args])
    except SystemExit as e:
        pytest.fail(f"hepbench hpo run rejects {args}: exit {e.code}")


def ray_options(words: list[str]) -> dict[str, str]:
    start = words.index("start")
    assert words[start - 1].endswith("/opt/hepbench/venv/bin/ray")
    return dict((w.split("=", 1) + [""])[:2] for w in words[start + 1 :])


def container(words: list[str]) -> list[str]:
    """The `apptainer exec ... IMAGE` part of a command."""
    i = words.index("apptainer")
    j = next(k for k, w in enumerate(words) if w.endswith(".sif"))
    return words[i : j + 1]


def test_the_script_is_bash_and_sbatch_reads_every_directive():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    lines = SCRIPT.read_text().splitlines()
    assert lines[0] == "#!/bin/bash" and "set -euo pipefail" in lines
    first_command = next(i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#"))
    directives = [i for i, line in enumerate(lines) if line.startswith("#SBATCH")]
    assert directives and max(directives) < first_command
    assert all(re.fullmatch(r"#SBATCH --[a-z-]+=\S+", lines[i]) for i in directives)
    # One task per node: each runs that node's Ray, with all its CPUs and GPUs.
    assert "#SBATCH --ntasks-per-node=1" in lines
    assert "hpo-ray-apptainer.sbatch" in README.read_text()


def test_a_gpu_cluster_over_three_nodes(tmp_path):
    env = allocation(
        tmp_path, ["jrc0001", "jrc0002", "jrc0003"], SLURM_CPUS_PER_TASK="32", SLURM_GPUS_PER_NODE="a100:4"
    )
    summary, (head, workers, driver) = dry_run(env, tmp_path)
    assert "TUNE_MAX_PENDING_TRIALS_PG=12" in summary  # the study's rule: nodes x GPUs per node
    assert head[:5] == ["srun", "--nodes=1", "--ntasks=1", "-w", "jrc0001"]
    assert workers[:6] == ["srun", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "-w", "jrc0002,jrc0003"]
    h, w = ray_options(head), ray_options(workers)
    assert "--head" in h and h["--port"] == "6379" and h["--node-ip-address"] == "10.1.2.3"
    assert h["--include-dashboard"] == "false" and "--block" in h and "--block" in w
    assert w["--address"] == "10.1.2.3:6379" and "--head" not in w
    for opts in (h, w):
        assert opts["--num-cpus"] == "32" and opts["--num-gpus"] == "4" and opts["--temp-dir"] == "/tmp/ray-42"
    # The same container everywhere: trials on any node read the data and write the results.
    assert container(head) == container(workers) == container(driver)
    assert "--nv" in driver and f"{tmp_path}/results/hpo-42:/results" in driver
    args = parse_hpo_run(driver)
    assert args.address == "10.1.2.3:6379" and args.resultsdir == Path("/results")
    assert args.data_dir == Path("/opt/hepbench/data/tfds")
    assert (args.scheduler, args.num_samples, args.max_epochs) == ("asha", 64, 100)
    assert args.gpus_per_trial == 1 and args.cpus_per_trial == 8  # 4 trials per node share its 32 CPUs


def test_cpu_nodes_with_a_host_data_set_and_extra_options(tmp_path):
    env = allocation(
        tmp_path,
        ["n1", "n2"],
        SLURM_CPUS_PER_TASK="64",
        MLPF_DEVICE="cpu",
        MLPF_DATA_DIR="data",
        MLPF_HPO_SCHEDULER="bohb",
        MLPF_HPO_SAMPLES="20",
        MLPF_HPO_MAX_EPOCHS="30",
        MLPF_HPO_CPUS_PER_TRIAL="16",
        MLPF_RAY_PORT="6400",
        MLPF_RAY_ARGS="--object-store-memory=2000000000",
        MLPF_HPO_EXTRA_ARGS="--grace-period 3 --seed 7 --train-events 500 --set train.jit_compile=false",
    )
    summary, (head, workers, driver) = dry_run(env, tmp_path)
    assert "TUNE_MAX_PENDING_TRIALS_PG=8" in summary  # 2 nodes x 64/16 trials
    assert "--nv" not in driver and f"{tmp_path}/data:/data:ro" in driver
    for opts in (ray_options(head), ray_options(workers)):
        assert opts["--num-gpus"] == "0" and opts["--object-store-memory"] == "2000000000"
    args = parse_hpo_run(driver)
    assert args.address == "10.1.2.3:6400" and args.data_dir == Path("/data")
    assert (args.scheduler, args.num_samples, args.max_epochs) == ("bohb", 20, 30)
    assert (args.cpus_per_trial, args.gpus_per_trial, args.grace_period, args.seed) == (16, 0, 3, 7)


def test_one_node_outside_an_allocation(tmp_path):
    # `bash hpo-ray-apptainer.sbatch` on a single machine: the head alone, its own CPUs.
    summary, commands = dry_run({"MLPF_DEVICE": "cpu"}, tmp_path)
    assert len(commands) == 2 and "1 node(s)" in summary
    head, driver = commands
    assert ray_options(head)["--num-cpus"] == str(len(os.sched_getaffinity(0)))  # nproc
    args = parse_hpo_run(driver)
    assert args.address.endswith(":6379") and args.resultsdir == Path("/results")


@pytest.mark.parametrize(
    "extra,message",
    [("--no-such-option", "no option"), ("--num-samples 0", "rejects"), ("--schedul asha", "no option '--schedul'")],
)
def test_a_wrong_option_is_caught(extra, message, tmp_path):
    # The checks above are only worth something if a wrong option or value makes them fail.
    _, commands = dry_run({"MLPF_HPO_EXTRA_ARGS": extra}, tmp_path)
    with pytest.raises(pytest.fail.Exception, match=message):
        parse_hpo_run(commands[-1])


@pytest.mark.parametrize(
    "nodes,env,message",
    [
        (None, {"MLPF_APPTAINER": "no-such-apptainer"}, "no 'no-such-apptainer' command"),
        (None, {"MLPF_APPTAINER": "true", "MLPF_IMAGE": "missing.sif"}, "no image"),
        (None, {"MLPF_APPTAINER": "false", "MLPF_IMAGE": "present.sif"}, "has no Ray"),
        (
            None,
            {"MLPF_APPTAINER": "true", "MLPF_IMAGE": "present.sif", "MLPF_DATA_DIR": "nodata"},
            "no built data set in",
        ),
        (None, {"MLPF_DEVICE": "tpu"}, "MLPF_DEVICE must be auto, gpu or cpu"),
        (None, {"MLPF_DEVICE": "gpu", "MLPF_GPUS_PER_NODE": "0"}, "no GPUs per node"),
        (None, {"MLPF_GPUS_PER_NODE": "4", "MLPF_HPO_GPUS_PER_TRIAL": "8"}, "a trial asks for 8 GPUs, a node has 4"),
        (None, {"MLPF_CPUS_PER_NODE": "many"}, "MLPF_CPUS_PER_NODE must be a whole number"),
        (["n1", "n2"], {"SLURMD_NODENAME": "n9"}, "this node (n9) is not in SLURM_JOB_NODELIST"),
        # Debian's /etc/hosts maps a host's own name to 127.0.1.1: the other nodes could not reach it.
        (["localhost", "n2"], {"MLPF_RAY_HEAD_IP": ""}, "which the other nodes cannot reach; set MLPF_RAY_HEAD_IP"),
    ],
)
def test_missing_inputs_are_refused_before_anything_starts(nodes, env, message, tmp_path):
    (tmp_path / "present.sif").write_text("")
    if nodes:
        env = allocation(tmp_path, nodes, **{"SLURM_CPUS_PER_TASK": "4", **env})
    r = run_script(env, tmp_path)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "results").exists()
