"""`hepbench run` verifies the data set before any timing: a damaged one fails the run (exit 1, a
failure report naming the file) before a copy starts; an intact one's digest is the report's checksum."""

from __future__ import annotations

import io
import shutil

import pytest

from hepbench.core.schema import load_report, validate_report
from hepbench.mlpf.config import load_config
from hepbench.mlpf.data.built import built_dir, describe_built
from hepbench.mlpf.data.integrity import MANIFEST_FILE, record_checksums
from hepbench.mlpf.run.benchmark import LocalCopies, verify_data
from hepbench.mlpf.run.collect import collect
from hepbench.mlpf.run.copy import failed_entry
from hepbench.mlpf.run.plan import Outcome, Plan, RunOptions, plan_copies, rank_spec
from hepbench.mlpf.run.ranks import RankJob

TRAIN = "delphes_pf-train.array_record-00000-of-00001"


@pytest.fixture
def recorded(built, tmp_path):
    """A private copy of the small built data set with its checksums recorded: (data dir, digest)."""
    data_dir = tmp_path / "tfds"
    shutil.copytree(built, data_dir)
    return data_dir, record_checksums(built_dir(data_dir))


def flip_middle_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, problem", [("flipped byte", "content changed"), ("no checksums", "missing")])
def test_a_damaged_data_set_fails_the_run_before_any_window(
    hepbench_run, recorded, tiny_config, tmp_path, damage, problem
):
    data_dir, _ = recorded
    version_dir = built_dir(data_dir)
    if damage == "flipped byte":
        damaged = version_dir / TRAIN
        flip_middle_byte(damaged)
    else:  # as built by an older hepbench
        damaged = version_dir / MANIFEST_FILE
        damaged.unlink()
    results = tmp_path / "results"
    r = hepbench_run("--data-dir", data_dir, "--config", tiny_config, "-w", results, "--device", "cpu")
    assert r.returncode == 1, r.stderr
    assert f"{damaged}: {problem}" in r.stderr and "hepbench data build" in r.stderr
    assert "window" not in r.stderr and "train score" not in r.stdout and "FAILED" in r.stdout
    report = load_report(results / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    assert rep["status"] == "failed" and rep["wl-scores"] == {} and str(damaged) in rep["log"]
    (copy,) = rep["copies"]
    assert copy["status"] == "failed" and copy["windows"] == [] and copy["warmup"] is None
    assert rep["backend"]["compile"] is None  # no copy started: no engine, no model
    # Nothing was verified: no checksum is claimed for the data; the source files' checksum stays.
    assert report["app"]["bmkdata_checksum"] is None and rep["dataset"]["checksum"] is None
    assert rep["dataset"]["source_checksum"] == describe_built(data_dir)["source_checksum"]


def test_the_verified_digest_is_the_reports_checksum(recorded, tmp_path):
    data_dir, digest = recorded
    options = RunOptions(config=load_config(), data_dir=data_dir, results_dir=tmp_path, quiet=True)
    specs = plan_copies(options, "cpu", [], [0])
    plan = Plan(specs=specs, dataset=describe_built(data_dir), copies=1)
    assert plan.dataset["checksum"] is None  # nothing claimed before verification
    verified, refused = verify_data(LocalCopies("single"), options, plan, io.StringIO())
    assert refused is None and verified.dataset["checksum"] == digest
    assert verified.dataset["source_checksum"] == plan.dataset["source_checksum"] != digest
    outcome = Outcome(
        entries=[failed_entry(specs[0], "stopped for the test")],
        context={},
        log=None,
        exit_code=1,
        start_iso="2026-12-02T00:00:00.000+00:00",
        start=0.0,
    )
    report = collect(options, verified, outcome)
    validate_report(report)
    assert report["app"]["bmkdata_checksum"] == report["report"]["dataset"]["checksum"] == digest


class OneRankOfTwo(RankJob):
    """Rank `rank` of a two-rank DDP job whose other rank's verification found `other` (None: nothing)."""

    strategy = "ddp"

    def __init__(self, rank: int, other: str | None):
        self.rank, self.size, self.local_rank, self.other = rank, 2, rank, other

    def join(self, options):
        return []

    def gather(self, obj):
        return [obj if r == self.rank else self.other for r in range(self.size)]

    def benchmark(self):
        return {}


def _rank_plan(options: RunOptions, job: OneRankOfTwo) -> Plan:
    spec = rank_spec(options, "cpu", job.rank, job.size, job.local_rank, strategy="ddp")
    return Plan(specs=[spec], dataset=describe_built(options.data_dir), copies=job.size)


def test_ranks_reading_one_damaged_copy_all_stop_and_rank_0_reports_for_the_job(recorded, tmp_path):
    data_dir, _ = recorded
    (built_dir(data_dir) / TRAIN).unlink()
    options = RunOptions(config=load_config(), data_dir=data_dir, results_dir=tmp_path, strategy="ddp")
    messages = {}
    for rank in (1, 0):  # rank 1 first: rank 0 is then told what rank 1 found, the same problem
        job = OneRankOfTwo(rank, messages.get(1 - rank))
        stream = io.StringIO()
        _, refused = verify_data(job, options, _rank_plan(options, job), stream)
        messages[rank] = refused.log.split(": ", 1)[1]
        assert refused.exit_code == 1 and f"{TRAIN}: missing" in refused.log and refused.log in stream.getvalue()
        assert refused.publish is (rank == 0) and job.reported  # finish() waits for rank 0's report
    assert refused.log.startswith("ranks 0, 1: the data set in")  # told once for both ranks
    assert [e["rank"] for e in refused.entries] == [0, 1] and {e["status"] for e in refused.entries} == {"failed"}


def test_a_rank_with_an_intact_copy_stops_when_another_ranks_copy_is_damaged(recorded, tmp_path):
    data_dir, _ = recorded
    options = RunOptions(config=load_config(), data_dir=data_dir, results_dir=tmp_path, strategy="ddp")
    job = OneRankOfTwo(0, "/node2/data/train: truncated")
    _, refused = verify_data(job, options, _rank_plan(options, job), io.StringIO())
    assert refused.exit_code == 1 and refused.log == "rank 1: /node2/data/train: truncated" and refused.publish
    job = OneRankOfTwo(1, None)  # and when every rank's copy is intact, the job goes on
    verified, refused = verify_data(job, options, _rank_plan(options, job), io.StringIO())
    assert refused is None and verified.dataset["checksum"] and not job.reported
