"""examples/slurm/: the job scripts are valid bash and sbatch files, pass `hepbench run` only options
it has, refuse missing inputs, and run end to end under a stand-in `srun`: the Horovod scripts as
two real Horovod ranks (horovodrun, Gloo) on this host, the DDP script as two real srun tasks
(SLURM_PROCID, SLURM_LOCALID, SLURM_STEP_NUM_TASKS) that form one PyTorch DDP job."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hepbench.cli import build_parser
from hepbench.core.schema import load_report, validate_report

SLURM = Path(__file__).resolve().parents[2] / "examples" / "slurm"
SCRIPTS = sorted(SLURM.glob("*.sbatch"))
VENV = Path(sys.executable).parent.parent  # the venv running the tests (not resolved: bin/python is a link)
# Only what the scripts read: none of the host's SLURM_* or MLPF_* settings may leak in.
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "MLPF_", "HEPBENCH_"))}

# Stand-in srun: records its options, drops them and starts the command as $SLURM_NTASKS Horovod
# ranks here, as srun starts one task per rank (horovodrun --gloo instead of PMIx).
FAKE_SRUN = f"""#!/bin/bash
while [[ $# -gt 0 && $1 == -* ]]; do echo "$1" >> "$FAKE_LOG"; shift; done
exec {VENV / "bin" / "horovodrun"} -np "$SLURM_NTASKS" --gloo -H "localhost:$SLURM_NTASKS" "$@"
"""
# Stand-in srun as srun itself starts tasks: $SLURM_NTASKS copies of the command, each with its
# task variables (what a DDP rank reads its place in the job from).
FAKE_SRUN_TASKS = """#!/bin/bash
while [[ $# -gt 0 && $1 == -* ]]; do echo "$1" >> "$FAKE_LOG"; shift; done
pids=()
for ((i = 0; i < SLURM_NTASKS; i++)); do
  SLURM_PROCID=$i SLURM_LOCALID=$i SLURM_STEP_NUM_TASKS=$SLURM_NTASKS "$@" & pids+=($!)
done
status=0
for p in "${pids[@]}"; do wait "$p" || status=$?; done
exit $status
"""
# Stand-in apptainer: `exec [options] IMAGE CMD...` runs CMD here. The image is a directory whose
# /opt/hepbench holds links to this venv and data set; paths in CMD under /opt/hepbench or under a
# --bind destination are rewritten to where they are on the host (what the mounts would do).
FAKE_APPTAINER = """#!/bin/bash
[[ $1 == exec ]] || exit 64; shift
echo "exec $*" >> "$FAKE_LOG"
binds=()
while [[ $1 == -* ]]; do
  case $1 in
    --bind|-B) src=${2%%:*} rest=${2#*:}; binds+=("${rest%%:*}=$src"); shift 2 ;;
    *) shift ;;
  esac
done
image=$1; shift
args=()
for a in "$@"; do
  for b in "${binds[@]}"; do
    dst=${b%%=*} src=${b#*=}
    if [[ $a == "$dst" || $a == "$dst"/* ]]; then a=$src${a#"$dst"}; fi
  done
  if [[ $a == /opt/hepbench/* ]]; then a=$image$a; fi
  args+=("$a")
done
export APPTAINER_CONTAINER=$image
exec "${args[@]}"
"""


def script(name: str) -> Path:
    return SLURM / name


def run_script(path: Path, env: dict, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(path)], capture_output=True, text=True, env={**BASE_ENV, **env}, cwd=cwd, timeout=timeout
    )


def dry_run_words(path: Path, env: dict, tmp_path: Path) -> list[str]:
    r = run_script(path, {"MLPF_DRY_RUN": "1", **env}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    # The printed line is shell-quoted (printf %q): let bash split it back into words.
    split = subprocess.run(
        ["bash", "-c", 'eval "w=($1)"; printf "%s\\0" "${w[@]}"', "_", r.stdout],
        capture_output=True,
        text=True,
        check=True,
    )
    return split.stdout.split("\0")[:-1]


def hepbench_run_args(words: list[str]) -> list[str]:
    starts = [i for i, w in enumerate(words[:-1]) if w.endswith("/hepbench") and words[i + 1] == "run"]
    assert len(starts) == 1, words
    return words[starts[0] + 2 :]


def parse_run(args: list[str]):
    """hepbench's own parser; an unknown option or a bad value fails the test (argparse exits)."""
    parser = build_parser()
    (groups,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    # argparse also takes abbreviations (--data-d): a renamed option would still match its old name.
    names = set(groups.choices["run"]._option_string_actions)
    for word in args:
        if word.startswith("-") and word.split("=")[0] not in names:
            pytest.fail(f"hepbench run has no option {word!r}")
    try:
        return parser.parse_args(["run", *args])
    except SystemExit as e:
        pytest.fail(f"hepbench run rejects {args}: exit {e.code}")


def test_both_scripts_and_their_readme_are_there():
    assert {p.name for p in SCRIPTS} == {
        "mlpf-apptainer.sbatch",
        "mlpf-venv.sbatch",
        "mlpf-ddp.sbatch",
        "hpo-ray-apptainer.sbatch",
    }
    assert (SLURM / "README.md").is_file()


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_bash_and_sbatch_reads_every_directive(path):
    subprocess.run(["bash", "-n", str(path)], check=True)
    lines = path.read_text().splitlines()
    assert lines[0] == "#!/bin/bash"
    first_command = next(i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#"))
    directives = [i for i, line in enumerate(lines) if line.startswith("#SBATCH")]
    assert directives and max(directives) < first_command  # sbatch stops reading them at the first command
    assert all(re.fullmatch(r"#SBATCH --[a-z-]+=\S+", lines[i]) for i in directives)
    assert "set -euo pipefail" in lines


CASES = [  # (script, settings): every launcher, with and without the optional parts
    ("mlpf-venv.sbatch", {}),
    (
        "mlpf-venv.sbatch",
        {"SLURM_CPUS_PER_TASK": "8", "MLPF_EXTRA_ARGS": "--events 2000 --precision bf16 --set train.jit_compile=false"},
    ),
    (
        "mlpf-venv.sbatch",
        {"MLPF_LAUNCHER": "mpirun", "SLURM_NTASKS": "8", "SLURM_CPUS_PER_TASK": "4", "MLPF_DEVICE": "cpu"},
    ),
    ("mlpf-apptainer.sbatch", {}),
    (
        "mlpf-apptainer.sbatch",
        {
            "MLPF_DEVICE": "cpu",
            "MLPF_THREADS": "16",
            "MLPF_DATA_DIR": "data",
            "MLPF_EXTRA_ARGS": "--windows 5 --rank-timeout 300",
        },
    ),
    ("mlpf-apptainer.sbatch", {"MLPF_LAUNCHER": "mpirun", "SLURM_NTASKS": "8", "SLURM_CPUS_PER_TASK": "8"}),
    ("mlpf-apptainer.sbatch", {"MLPF_GPU_VENDOR": "amd"}),
    ("mlpf-apptainer.sbatch", {"MLPF_GPU_VENDOR": "amd", "MLPF_DEVICE": "cpu"}),
]


@pytest.mark.parametrize("name,env", CASES)
def test_hepbench_run_accepts_the_arguments_the_scripts_pass(name, env, tmp_path):
    words = dry_run_words(script(name), {"SLURM_JOB_ID": "42", **env}, tmp_path)
    assert words[0] == env.get("MLPF_LAUNCHER", "srun")
    if words[0] == "srun":
        assert words[1:4] == ["--mpi=pmix", "--kill-on-bad-exit=0", "--wait=300"]
    args = parse_run(hepbench_run_args(words))
    assert args.strategy == "horovod" and args.device == env.get("MLPF_DEVICE", "auto")
    threads = env.get("MLPF_THREADS", env.get("SLURM_CPUS_PER_TASK"))
    assert args.threads == (int(threads) if threads else None)
    if name == "mlpf-apptainer.sbatch":
        # Results and data are paths inside the container, bound from the host's.
        assert args.resultsdir == Path("/results") and f"{tmp_path}/results/mlpf-42:/results" in words
        flag = {"nvidia": "--nv", "amd": "--rocm"}[env.get("MLPF_GPU_VENDOR", "nvidia")]
        assert [w for w in words if w in ("--nv", "--rocm")] == ([flag] if args.device != "cpu" else [])
        if "MLPF_DATA_DIR" in env:
            assert args.data_dir == Path("/data") and f"{tmp_path}/data:/data:ro" in words
        else:
            assert args.data_dir == Path("/opt/hepbench/data/tfds")
    else:
        assert args.resultsdir == tmp_path / "results" / "mlpf-42" and args.data_dir == tmp_path / "work" / "tfds-s0"


DDP_CASES = [  # (settings, expected launcher words up to the hepbench command)
    ({}, ["srun", "--kill-on-bad-exit=0", "--wait=300"]),
    (
        {
            "MLPF_LAUNCHER": "torchrun",
            "SLURM_JOB_NUM_NODES": "2",
            "SLURM_NTASKS_PER_NODE": "4",
            "SLURM_CPUS_PER_TASK": "8",
            "MLPF_DEVICE": "cpu",
            "MLPF_EXTRA_ARGS": "--events 96",
        },
        [
            "srun",
            "--kill-on-bad-exit=0",
            "--wait=300",
            "--ntasks=2",
            "--ntasks-per-node=1",
            "--cpus-per-task=32",
            "torchrun",
            "--nnodes",
            "2",
            "--nproc-per-node",
            "4",
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            "node7:29500",
            "--rdzv-id",
            "mlpf-42",
            "--no-python",
        ],
    ),
]


@pytest.mark.parametrize("env,launch", DDP_CASES)
def test_the_ddp_script_runs_torch_ranks_that_meet_on_the_first_node(env, launch, tmp_path):
    settings = {"SLURM_JOB_ID": "42", "MASTER_ADDR": "node7", "MASTER_PORT": "29500", **env}
    words = dry_run_words(script("mlpf-ddp.sbatch"), settings, tmp_path)
    (start,) = [i for i, w in enumerate(words[:-1]) if w.endswith("/hepbench") and words[i + 1] == "run"]
    assert [w.rsplit("/", 1)[-1] for w in words[:start]] == launch
    args = parse_run(words[start + 2 :])
    assert args.backend == "torch" and args.strategy == "ddp" and args.device == env.get("MLPF_DEVICE", "auto")
    assert args.threads == (int(env["SLURM_CPUS_PER_TASK"]) if "SLURM_CPUS_PER_TASK" in env else None)
    assert args.resultsdir == tmp_path / "results" / "mlpf-42" and args.data_dir == tmp_path / "work" / "tfds-s0"


def test_the_ddp_script_meets_on_the_first_node_of_the_allocation(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "scontrol").write_text("#!/bin/sh\nprintf 'gpu017\\ngpu018\\n'\n")  # scontrol show hostnames LIST
    (fake / "scontrol").chmod(0o755)
    settings = {
        "MLPF_DRY_RUN": "1",
        "SLURM_JOB_ID": "20042",
        "SLURM_JOB_NODELIST": "gpu[017-018]",
        "MLPF_LAUNCHER": "torchrun",
        "PATH": f"{fake}:{os.environ['PATH']}",
    }
    r = run_script(script("mlpf-ddp.sbatch"), settings, cwd=tmp_path)
    assert r.returncode == 0 and "--rdzv-endpoint gpu017:20042 " in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize(
    "extra,message",
    [("--no-such-option", "no option"), ("--events 0", "rejects"), ("--event 5", "no option '--event'")],
)
def test_a_wrong_option_is_caught(extra, message, tmp_path):
    # The check above is only worth something if a wrong option or value makes it fail.
    words = dry_run_words(script("mlpf-venv.sbatch"), {"MLPF_EXTRA_ARGS": extra}, tmp_path)
    with pytest.raises(pytest.fail.Exception, match=message):
        parse_run(hepbench_run_args(words))


@pytest.mark.parametrize(
    "name,env,message",
    [
        ("mlpf-venv.sbatch", {"MLPF_VENV": "/nonexistent"}, "no hepbench in /nonexistent"),
        ("mlpf-venv.sbatch", {"MLPF_VENV": str(VENV), "MLPF_DATA_DIR": "nodata"}, "no built data set in"),
        ("mlpf-venv.sbatch", {"MLPF_LAUNCHER": "ssh"}, "MLPF_LAUNCHER must be srun or mpirun"),
        ("mlpf-ddp.sbatch", {"MLPF_VENV": "/nonexistent"}, "no hepbench in /nonexistent"),
        ("mlpf-ddp.sbatch", {"MLPF_VENV": str(VENV), "MLPF_DATA_DIR": "nodata"}, "no built data set in"),
        ("mlpf-ddp.sbatch", {"MLPF_LAUNCHER": "mpirun"}, "MLPF_LAUNCHER must be srun or torchrun"),
        ("mlpf-apptainer.sbatch", {"MLPF_APPTAINER": "no-such-apptainer"}, "no 'no-such-apptainer' command"),
        ("mlpf-apptainer.sbatch", {"MLPF_APPTAINER": "true", "MLPF_IMAGE": "missing.sif"}, "no image"),
        ("mlpf-apptainer.sbatch", {"MLPF_GPU_VENDOR": "intel"}, "MLPF_GPU_VENDOR must be nvidia or amd, not 'intel'"),
    ],
)
def test_missing_inputs_are_refused_before_anything_starts(name, env, message, tmp_path):
    r = run_script(script(name), env, cwd=tmp_path)
    assert r.returncode == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "results").exists()


def fake_slurm(tmp_path: Path, tasks: int, srun: str = FAKE_SRUN) -> dict:
    """PATH with the stand-ins first, and the variables sbatch gives a 1-node job of `tasks` tasks."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    for name, text in (("srun", srun), ("apptainer", FAKE_APPTAINER)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_LOG": str(tmp_path / "fake.log"),
        "SLURM_JOB_ID": "7",
        "SLURM_SUBMIT_DIR": str(tmp_path),
        "SLURM_NTASKS": str(tasks),
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_CPUS_PER_TASK": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }


def check_two_rank_report(r: subprocess.CompletedProcess, results: Path) -> dict:
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    score = r.stdout.strip().splitlines()[-1]
    # rank 0's own score line (horovodrun prefixes "[0]<stdout>:"), then the script's, from the report;
    # counted in the whole output, where another rank's line could share a line with rank 0's
    assert score.startswith("mlpf-bmk train score:") and "2 Horovod ranks" in score
    assert r.stdout.count(score) == 2
    report = load_report(results / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    assert rep["status"] == "ok" and rep["benchmark"]["strategy"] == "horovod"
    assert report["run_info"]["copies"] == 2 and [c["rank"] for c in rep["copies"]] == [0, 1]
    assert report["run_info"]["threads_per_copy"] == 1  # SLURM_CPUS_PER_TASK became --threads
    return report


# One end-to-end run (CI time): the Apptainer script, the one sites use most; the venv script
# shares its launch and report code, and its command line is checked above.
@pytest.mark.slow
def test_apptainer_script_runs_two_ranks_under_srun(built, tiny_config, tmp_path):
    pytest.importorskip("horovod.tensorflow", reason="Horovod is built by `make setup` (second step)")
    image = tmp_path / "image"  # the stand-in image: /opt/hepbench/{venv,data/tfds}
    (image / "opt" / "hepbench" / "data").mkdir(parents=True)
    (image / "opt" / "hepbench" / "venv").symlink_to(VENV)
    (image / "opt" / "hepbench" / "data" / "tfds").symlink_to(built)
    env = {
        **fake_slurm(tmp_path, 2),
        "MLPF_IMAGE": "image",
        "MLPF_DEVICE": "cpu",
        "MLPF_APPTAINER_ARGS": f"--bind {tiny_config}:/config.yaml",
        "MLPF_EXTRA_ARGS": "--config /config.yaml",
    }
    r = run_script(script("mlpf-apptainer.sbatch"), env, cwd="/", timeout=600)
    report = check_two_rank_report(r, tmp_path / "results" / "mlpf-7")
    assert report["app"]["containment"] == "apptainer"  # the environment reached the ranks
    assert report["run_info"]["extra_arguments"] == "--config /config.yaml"
    calls = (tmp_path / "fake.log").read_text().splitlines()
    assert "--mpi=pmix" in calls and sum(c.startswith("exec ") for c in calls) == 4  # data check, 2 ranks, summary


def test_venv_script_refuses_a_horovod_without_mpi(built, tmp_path):
    hvd = pytest.importorskip("horovod.tensorflow", reason="Horovod is built by `make setup` (second step)")
    if hvd.mpi_built():
        pytest.skip("this Horovod has MPI")
    # Under a real srun, a Gloo-only Horovod would make each task a 1-rank job of its own.
    r = run_script(script("mlpf-venv.sbatch"), {"MLPF_VENV": str(VENV), "MLPF_DATA_DIR": str(built)}, cwd=tmp_path)
    assert r.returncode == 1 and "built without MPI" in r.stderr, r.stderr
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_ddp_script_runs_two_srun_tasks_as_one_ddp_job(built, tiny_config, tmp_path):
    pytest.importorskip("torch.distributed")
    env = {
        **fake_slurm(tmp_path, 2, FAKE_SRUN_TASKS),
        "MLPF_VENV": str(VENV),
        "MLPF_DATA_DIR": str(built),
        "MLPF_DEVICE": "cpu",
        "MLPF_EXTRA_ARGS": f"--config {tiny_config}",
        "MASTER_ADDR": "127.0.0.1",
    }
    r = run_script(script("mlpf-ddp.sbatch"), env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    score = r.stdout.strip().splitlines()[-1]
    # rank 0's own score line, then the script's, from the report (counted as above)
    assert score.startswith("mlpf-bmk train score:") and "2 DDP ranks" in score
    assert r.stdout.count(score) == 2
    report = load_report(tmp_path / "results" / "mlpf-7" / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    assert rep["status"] == "ok" and rep["benchmark"]["strategy"] == "ddp"
    assert rep["benchmark"]["process_group"] == "gloo"
    assert report["run_info"]["copies"] == 2 and [c["rank"] for c in rep["copies"]] == [0, 1]
    assert report["run_info"]["threads_per_copy"] == 1  # SLURM_CPUS_PER_TASK became --threads
    assert "--kill-on-bad-exit=0" in (tmp_path / "fake.log").read_text().splitlines()
