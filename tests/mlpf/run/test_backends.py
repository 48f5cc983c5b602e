"""`hepbench run --backend jax|torch`: the same run path as TensorFlow's (report, score line, failure
reports), a JAX or PyTorch copy that never imports TensorFlow, and backends refused before anything
is written (unknown, without their framework, without the strategy)."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from hepbench.cli import main
from hepbench.core.schema import load_report, validate_report
from hepbench.mlpf.config import config_to_dict, load_config
from hepbench.mlpf.data.built import describe_built
from hepbench.mlpf.run.collect import collect, requested_backend
from hepbench.mlpf.run.copy import failed_entry
from hepbench.mlpf.run.plan import Outcome, Plan, RunOptions, plan_copies

ENV = {**{k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}, "TF_CPP_MIN_LOG_LEVEL": "2"}
COMPILE = {"jax": "jax.jit", "torch": "eager"}  # the default step of each (train.compile=false)


@pytest.fixture(scope="module")
def without_tensorflow(tmp_path_factory) -> dict:
    """Environment entries that put first on the path a `tensorflow` package whose import fails:
    a process that imports TensorFlow fails as it would where TensorFlow is not installed."""
    shadow = tmp_path_factory.mktemp("no-tensorflow")
    (shadow / "tensorflow").mkdir()
    (shadow / "tensorflow" / "__init__.py").write_text(
        'raise ImportError("tensorflow is shadowed: a JAX or PyTorch run must not import it")\n'
    )
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(shadow), os.environ.get("PYTHONPATH")]))}


@pytest.mark.parametrize("backend", sorted(COMPILE))
def test_a_run_on_each_backend_reports_through_the_same_path_without_tensorflow(
    hepbench_run, built, tiny_config, tmp_path, without_tensorflow, backend
):
    r = hepbench_run(
        "--backend",
        backend,
        "--data-dir",
        built,
        "--config",
        tiny_config,
        "-w",
        tmp_path,
        "--device",
        "cpu",
        "--set",
        "train.fp32_matmul=tf32",
        env=without_tensorflow,
    )
    assert r.returncode == 0, r.stderr
    report = load_report(tmp_path / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    assert rep["status"] == "ok" and rep["wl-scores"]["train"] > 0
    assert report["run_info"]["backend"] == backend
    assert rep["backend"]["name"] == backend and rep["backend"]["compile"] == COMPILE[backend]
    assert rep["backend"]["version"] == rep["software"][backend] and rep["backend"]["keras"] == rep["software"]["keras"]
    if backend == "jax":
        assert rep["backend"]["jaxlib"] == rep["software"]["jaxlib"]
    (copy,) = rep["copies"]
    assert [w["events"] for w in copy["windows"]] == [4, 4] and copy["validation"]["events"] == 2
    assert rep["model"]["trainable_parameters"] > 0
    assert rep["fp32_matmul"] == rep["config"]["train"]["fp32_matmul"] == "tf32"  # asked for (a CPU has no TF32)
    numerics = rep["numerics"]  # held to TF32's tolerance, as asked; a CPU computes float32
    assert (numerics["status"], numerics["arithmetic"]) == ("passed", "tf32") and numerics["device"]["grad_norm"] > 0
    # The CPU's peak: a matmul ceiling measured with the run's own framework, in fp32 whatever was asked.
    mfu = rep["throughput"]["model_flops_utilisation"]
    assert copy["ceiling"]["framework"] == backend and mfu["precision"] == "fp32" and mfu["value"] > 0
    assert r.stdout.strip().endswith(f"(1 copy, cpu, fp32, {backend})")
    assert f"mlpf-bmk: 1 copy on cpu ({backend})" in r.stderr


@pytest.mark.parametrize("backend", sorted(COMPILE))
def test_a_nan_loss_fails_the_run_with_a_failure_report_that_names_the_backend(
    hepbench_run, built, tiny_config, tmp_path, backend
):
    r = hepbench_run(
        "--backend",
        backend,
        "--data-dir",
        built,
        "--config",
        tiny_config,
        "-w",
        tmp_path,
        "--device",
        "cpu",
        "--learning-rate",
        "1e30",
    )
    assert r.returncode == 1, r.stderr
    report = load_report(tmp_path / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    assert rep["status"] == "failed" and rep["wl-scores"] == {} and "training loss became" in rep["log"]
    assert rep["backend"]["name"] == backend and rep["backend"]["compile"] == COMPILE[backend]  # the engine ran
    assert "FAILED" in r.stdout


def test_jax_mirrored_trains_one_process_over_two_cpu_devices(hepbench_run, built, tiny_config, tmp_path):
    # The mirrored plan is TensorFlow's (batch_size per replica); JAX's engine is keras.distribution.
    r = hepbench_run(
        "--backend",
        "jax",
        "--data-dir",
        built,
        "--config",
        tiny_config,
        "-w",
        tmp_path,
        "--device",
        "cpu",
        "--strategy",
        "mirrored",
        "--replicas",
        "2",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().endswith("(1 process, 2 mirrored replicas, cpu, fp32, jax)")
    report = load_report(tmp_path / "mlpf_summary.json")
    validate_report(report)
    rep = report["report"]
    assert rep["benchmark"]["strategy"] == "mirrored" and rep["backend"]["name"] == "jax"
    (copy,) = rep["copies"]
    assert copy["replicas"] == 2 and [d["type"] for d in copy["replica_devices"]] == ["cpu", "cpu"]
    assert [(w["steps"], w["events"]) for w in copy["windows"]] == [(2, 8), (2, 8)]
    # Checked on replica 0's share of the first batch (2 of its 4 events), by a function of its own.
    assert (rep["numerics"]["status"], rep["numerics"]["events"]) == ("passed", 2)
    mfu = rep["throughput"]["model_flops_utilisation"]  # the replicas share one CPU set: one ceiling
    assert mfu["devices"] == 1 and mfu["peak_flops_per_second"] == copy["ceiling"]["flops_per_second"]


def test_a_run_whose_engine_never_started_still_has_a_valid_report_naming_the_requested_backend(built, tmp_path):
    options = RunOptions(config=load_config(), data_dir=built, results_dir=tmp_path, backend="jax")
    specs = plan_copies(options, "cpu", [], [0])
    plan = Plan(specs=specs, dataset=describe_built(built), copies=1)
    outcome = Outcome(
        entries=[failed_entry(specs[0], "the copy process ended with exit code -9 before reporting")],
        context={},
        log=None,
        exit_code=1,
        start_iso="2026-12-02T00:00:00.000+00:00",
        start=0.0,
    )
    report = collect(options, plan, outcome)
    validate_report(report)
    assert report["run_info"]["backend"] == "jax" and report["report"]["status"] == "failed"
    backend = report["report"]["backend"]
    assert (backend["name"], backend["compile"]) == ("jax", None)
    assert backend["version"] == report["report"]["software"]["jax"] and "jaxlib" in backend
    assert config_to_dict(options.config) == report["report"]["config"]
    numerics = report["report"]["numerics"]
    assert (numerics["status"], numerics["device"], numerics["arithmetic"]) == ("not run", None, "fp32")
    mfu = report["report"]["throughput"]["model_flops_utilisation"]
    assert mfu["value"] is None and mfu["reason"].startswith("no matmul ceiling measured on the CPU")


def test_a_failed_torch_run_names_torchs_own_version_not_its_metadatas(tmp_path, monkeypatch):
    # PyPI's CUDA wheels: metadata 2.13.0, torch.__version__ 2.13.0+cu130 (what a run's report says).
    fake = tmp_path / "site"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise ImportError('the report must not import torch')\n")
    (fake / "torch" / "version.py").write_text("__version__ = '9.1.0+cu999'\ncuda = '99.9'\n")
    (fake / "torch-9.1.0.dist-info").mkdir()
    (fake / "torch-9.1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 9.1.0\n")
    monkeypatch.syspath_prepend(str(fake))
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert requested_backend("torch")["version"] == "9.1.0+cu999"
    (fake / "torch" / "version.py").unlink()  # no version file: the metadata's
    assert requested_backend("torch")["version"] == "9.1.0"


def test_an_unknown_backend_is_a_usage_error(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit) as e:
        main(["run", "-w", str(tmp_path / "r"), "--backend", "nope"])
    assert e.value.code == 2 and "--backend: invalid choice: 'nope'" in capsys.readouterr().err
    monkeypatch.setenv("KERAS_BACKEND", "nope")
    assert main(["run", "-w", str(tmp_path / "r")]) == 2
    assert "$KERAS_BACKEND: the backend must be one of tensorflow, jax, torch, not 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_keras_backend_is_the_default_and_backend_overrides_it(built, tmp_path, capsys, monkeypatch):
    # The strategy check names the backend in effect, before anything starts.
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    results = tmp_path / "r"
    assert main(["run", "--data-dir", str(built), "-w", str(results), "--strategy", "horovod"]) == 2
    assert "--strategy horovod is not available with --backend jax" in capsys.readouterr().err
    assert (
        main(["run", "--data-dir", str(built), "-w", str(results), "--backend", "torch", "--strategy", "mirrored"]) == 2
    )
    assert "--strategy mirrored is not available with --backend torch (it has single, ddp)" in capsys.readouterr().err
    assert not results.exists()


@pytest.mark.parametrize("backend, missing", [("jax", "jaxlib"), ("torch", "torch")])
def test_a_backend_without_its_framework_is_a_missing_extra(built, tmp_path, capsys, monkeypatch, backend, missing):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a))
    results = tmp_path / "r"
    assert main(["run", "--data-dir", str(built), "-w", str(results), "--backend", backend]) == 2
    assert (
        f"--backend {backend} needs {missing}, which is not installed: pip install 'hepbench[{backend}]'"
        in capsys.readouterr().err
    )
    assert not results.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "train.compile=true"], "train.compile=true (torch.compile) is for --backend torch only"),
        (
            ["--backend", "jax", "--set", "train.jit_compile=true"],
            "train.jit_compile=true (XLA) is for --backend tensorflow",
        ),
    ],
)
def test_compile_settings_of_another_backend_are_refused_before_anything_is_written(
    built, tmp_path, capsys, monkeypatch, args, message
):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    results = tmp_path / "r"
    assert main(["run", "--data-dir", str(built), "-w", str(results), *args]) == 2
    assert message in capsys.readouterr().err
    assert not results.exists()
