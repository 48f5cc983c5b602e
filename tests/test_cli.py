"""The `hepbench` command as a user runs it: exit codes, messages, and the whole data round trip."""

from __future__ import annotations

import itertools
import json
import os
import socketserver
import subprocess
import sys
import threading

import numpy as np
import pytest

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def hepbench(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "hepbench", *map(str, args)], capture_output=True, text=True, env=ENV, cwd=cwd
    )


def test_help_and_version():
    r = hepbench("--help")
    assert r.returncode == 0 and "data" in r.stdout
    r = hepbench("--version")
    assert r.returncode == 0 and r.stdout.startswith("hepbench ")


@pytest.mark.parametrize(
    "args, message",
    [
        (["data", "synth", "--process", "ttbar", "--events", "0", "--out", "x"], "expected a positive integer, got 0"),
        (["data", "synth", "--process", "wjets", "--events", "1", "--out", "x"], "invalid choice: 'wjets'"),
        (
            ["data", "synth", "--process", "qcd", "--events", "1", "--seed", "-3", "--out", "x"],
            "expected an integer >= 0",
        ),
        (
            ["data", "synth", "--process", "qcd", "--events", "many", "--out", "x"],
            "expected a positive integer, got 'many'",
        ),
        (["data", "fetch", "--files", "-1", "--out", "x"], "expected an integer >= 0"),
        (["data", "frobnicate"], "invalid choice: 'frobnicate'"),
        (["data"], "required: COMMAND"),
    ],
)
def test_bad_options_exit_2_with_usage(tmp_path, args, message):
    r = hepbench(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert message in r.stderr and "usage:" in r.stderr
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


def test_data_errors_exit_1_with_a_message(tmp_path):
    r = hepbench("data", "info", tmp_path / "absent")
    assert r.returncode == 1
    assert r.stderr.startswith("hepbench: error: ") and "absent: no such directory" in r.stderr
    assert "Traceback" not in r.stderr
    (tmp_path / "empty").mkdir()
    r = hepbench("data", "build", "--manual-dir", tmp_path / "empty", "--data-dir", tmp_path / "tfds")
    assert r.returncode == 1 and "no data files" in r.stderr
    assert not (tmp_path / "tfds").exists()


def test_fetch_without_network_asks_once_and_points_to_synth(tmp_path):
    # A loopback server that hangs up at once: the record is asked for once, not retried with backoff,
    # since no attempt within seconds would find a network; the remedy is offline data.
    connections = []

    class HangUp(socketserver.BaseRequestHandler):
        def handle(self):
            connections.append(self.client_address)  # then the server closes the connection

    with socketserver.TCPServer(("127.0.0.1", 0), HangUp) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        r = hepbench("data", "fetch", "--files", "1", "--out", tmp_path / "d", "--record-url", url)
        server.shutdown()
    assert len(connections) == 1
    assert r.returncode == 1
    assert f"could not reach Zenodo at {url}" in r.stderr and "hepbench data synth" in r.stderr


@pytest.mark.slow
def test_generate_describe_build_and_batch(tmp_path):
    """The issue's acceptance path: 200 ttbar events → info → TFDS → batches."""
    manual, built = tmp_path / "manual", tmp_path / "tfds"
    r = hepbench("data", "synth", "--process", "ttbar", "--events", 200, "--seed", 3, "--out", manual, "--jobs", 2)
    assert r.returncode == 0, r.stderr
    assert "wrote 200 ttbar events in 2 files" in r.stdout

    r = hepbench("data", "info", manual, "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["events"] == 200 and info["synthetic"] is True
    assert 4000 <= info["elements"]["mean"] <= 6000
    assert info["element_types"]["tower"] > 0 and info["element_types"]["track"] > 0
    text = hepbench("data", "info", manual).stdout
    assert "mean " in text and "tower" in text and "track" in text and info["checksum"] in text

    r = hepbench("data", "build", "--manual-dir", manual, "--data-dir", built)
    assert r.returncode == 0, r.stderr
    assert "train: 200 events" in r.stdout

    from hepbench.mlpf.config import DataConfig
    from hepbench.mlpf.data.delphes import read_file
    from hepbench.mlpf.data.pipeline import Batches, element_counts

    cfg = DataConfig(batch_size=4, bucket_lookahead=0)  # file order
    counts = [e.num_elements for p in sorted(manual.iterdir()) for e in read_file(p)]
    seen = []
    for batch in itertools.islice(Batches(built, "train", cfg, bin_size=640), 3):
        X, y, n = batch["X"], batch["y"], batch["n_elements"]
        assert X.shape[0] == 4 and X.shape[1] % 640 == 0 and X.shape[2] == 12 and y.shape[2] == 7
        assert X.dtype == np.float32 and y.dtype == np.float32
        assert np.all(X[:, :, 0][np.arange(X.shape[1]) >= n[:, None]] == 0)  # padding is zero
        real, padded = element_counts(batch)
        assert real == n.sum() and padded == X.shape[0] * X.shape[1]
        seen.extend(np.minimum(n_orig, 6400) for n_orig in batch["n_elements_orig"])
    assert seen == [min(c, 6400) for c in counts[:12]]


def test_model_summary_prints_the_reference_counts_and_flops():
    r = hepbench("model", "summary")
    assert r.returncode == 0, r.stderr
    assert "3,292,489" in r.stdout and "38,400" in r.stdout
    assert "forward 61.0 GFLOP" in r.stdout


def test_model_summary_takes_the_study_hyperparameters():
    r = hepbench(
        "model",
        "summary",
        "--num-graph-layers-id",
        1,
        "--num-graph-layers-reg",
        1,
        "--output-dim",
        128,
        "--bin-size",
        320,
        "--dropout",
        0.1,
        "--learning-rate",
        1e-4,
        "--weight-decay",
        1e-5,
        "--elements",
        1000,
        "--json",
    )
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["trainable"] == 656_713 and info["padded_elements"] == 1280


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bin-size", "0"], "model.bin_size must be positive, not 0"),
        (["--output-dim", "0"], "model.output_dim must be positive, not 0"),
        (["--dropout", "-0.5"], "model.dropout must be in [0, 1)"),
        (["--set", "model.width=3"], "unknown key(s) ['width']"),
        (["--precision", "fp8"], "invalid choice: 'fp8'"),
        (["--learning-rate", "nan"], "expected a finite number"),
    ],
)
def test_model_summary_rejects_bad_hyperparameters(args, message):
    r = hepbench("model", "summary", *args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("name", ["bench", "run"])  # `qsvr run` is the old name of `qsvr bench`
def test_the_qsvr_workload_is_qsvr_bench_and_keeps_its_old_name(name):
    from hepbench.cli import build_parser

    args = build_parser().parse_args(["qsvr", name, "--fits", "3", "-w", "out"])
    assert args.func.__name__ == "_bench" and args.fits == 3 and str(args.resultsdir) == "out"


def test_help_names_the_qsvr_workload_bench():
    r = hepbench("qsvr", "--help")
    assert r.returncode == 0 and "bench (run)" in r.stdout
