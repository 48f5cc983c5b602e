"""The run's phases without a framework: validate refuses bad input before anything is written, plan
lays out CPU sets, GPUs and per-copy sizes (single, mirrored, a Horovod or DDP rank) for the chosen
backend, report on a rank > 0."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hepbench.core.errors import HepbenchError, UsageError
from hepbench.mlpf.config import load_config
from hepbench.mlpf.run.benchmark import LocalCopies, _child_env, choose_strategy, report_run
from hepbench.mlpf.run.collect import collect
from hepbench.mlpf.run.copy import failed_entry
from hepbench.mlpf.run.horovod import HorovodRank
from hepbench.mlpf.run.plan import (
    Inputs,
    Outcome,
    Plan,
    RunOptions,
    check_options,
    plan_copies,
    plan_mirrored,
    rank_spec,
    resolve_device,
    resolve_strategy,
    split_cpus,
)

DATASET = {"name": "delphes_pf", "version": "1.1.0", "synthetic": True, "train_events": 12, "test_events": 4}


def options(**kw) -> RunOptions:
    kw.setdefault("data_dir", Path("data"))
    kw.setdefault("results_dir", Path("results"))
    return RunOptions(config=load_config(), **kw)


@pytest.mark.parametrize(
    "cpus, copies, expected",
    [
        ([0, 1], 2, [[0], [1]]),
        ([0, 1, 2, 3, 4], 2, [[0, 1, 2], [3, 4]]),
        ([4, 5, 8, 9], 3, [[4, 5], [8], [9]]),  # the CPUs this process may use, not 0..n-1
        ([0, 1, 2, 3], 1, [[0, 1, 2, 3]]),
    ],
)
def test_cpu_sets_are_disjoint_contiguous_and_cover_everything(cpus, copies, expected):
    assert split_cpus(cpus, copies) == expected


def test_more_copies_than_cpus_is_refused():
    with pytest.raises(UsageError, match="--copies 3 needs at least 3 CPUs; this process may use 2"):
        split_cpus([0, 1], 3)


def test_device_resolution():
    assert resolve_device("auto", []) == "cpu"
    assert resolve_device("auto", ["0"]) == "gpu"
    assert resolve_device("cpu", ["0"]) == "cpu"
    with pytest.raises(UsageError, match="TensorFlow sees no GPU"):
        resolve_device("gpu", [])
    with pytest.raises(UsageError, match="--device gpu: PyTorch sees no GPU"):
        resolve_device("gpu", [], "torch")
    with pytest.raises(UsageError, match="--device gpu: JAX sees no GPU"):
        resolve_device("gpu", [], "jax")


LAUNCHER_VARIABLES = (
    "HOROVOD_RANK",
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
    "SLURM_STEP_NUM_TASKS",
    "WORLD_SIZE",
    "TORCHELASTIC_RUN_ID",
)


def test_the_strategy_is_horovod_only_when_launched_as_a_rank(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert isinstance(choose_strategy(options()), LocalCopies)
    assert choose_strategy(options(strategy="mirrored")).strategy == "mirrored"
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    assert isinstance(choose_strategy(options()), HorovodRank)
    assert choose_strategy(options(strategy="single")).strategy == "single"
    with pytest.raises(UsageError, match="--strategy must be one of auto, single, mirrored, horovod, ddp"):
        choose_strategy(options(strategy="ring"))


@pytest.mark.parametrize(
    "env",
    [{"WORLD_SIZE": "2", "RANK": "0"}, {"TORCHELASTIC_RUN_ID": "x", "WORLD_SIZE": "1"}, {"OMPI_COMM_WORLD_SIZE": "2"}],
)
def test_launched_as_a_rank_each_backend_gets_its_own_data_parallel_strategy(monkeypatch, env):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert resolve_strategy("auto", "tensorflow") == "horovod"
    assert resolve_strategy("auto", "torch") == "ddp"
    with pytest.raises(UsageError, match="--backend jax runs one process over the local devices"):
        resolve_strategy("auto", "jax")
    assert resolve_strategy("mirrored", "jax") == "mirrored"  # asked for: one process of the job may run it


def test_a_strategy_the_backend_lacks_is_refused(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert resolve_strategy("auto", "jax") == "single"
    for backend, strategy in (("jax", "horovod"), ("torch", "mirrored"), ("tensorflow", "ddp"), ("jax", "ddp")):
        with pytest.raises(UsageError, match=f"--strategy {strategy} is not available with --backend {backend}"):
            choose_strategy(options(strategy=strategy, backend=backend))


def test_a_backend_whose_framework_is_missing_is_a_missing_extra(monkeypatch):
    import importlib.util

    from hepbench.core.errors import MissingExtra

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(MissingExtra, match=r"--backend torch needs torch.*hepbench\[torch\]"):
        choose_strategy(options(backend="torch"))
    assert isinstance(choose_strategy(options(backend="jax")), LocalCopies)


def with_settings(*settings: str, **kw) -> RunOptions:
    return RunOptions(
        config=load_config(overrides=list(settings)), data_dir=Path("data"), results_dir=Path("results"), **kw
    )


@pytest.mark.parametrize(
    "backend, setting, message",
    [
        (
            "tensorflow",
            "train.compile=true",
            r"train.compile=true \(torch.compile\) is for --backend torch only; "
            r"--backend tensorflow compiles with train.jit_compile=true \(XLA\)",
        ),
        ("jax", "train.compile=true", "is for --backend torch only; --backend jax compiles with jax.jit, always"),
        (
            "torch",
            "train.jit_compile=true",
            r"train.jit_compile=true \(XLA\) is for --backend tensorflow only; "
            r"--backend torch compiles with train.compile=true",
        ),
        ("jax", "train.jit_compile=true", "--backend jax compiles with jax.jit, always"),
    ],
)
def test_compile_settings_belong_to_their_backend(backend, setting, message):
    with pytest.raises(UsageError, match=message):
        check_options(with_settings(setting, backend=backend), DATASET)


def test_a_compile_backend_without_compiling_is_refused():
    with pytest.raises(UsageError, match="train.compile_backend=aot_eager needs train.compile=true"):
        check_options(with_settings("train.compile_backend=aot_eager", backend="torch"), DATASET)
    check_options(with_settings("train.compile_backend=aot_eager", "train.compile=true", backend="torch"), DATASET)


def test_the_tensorflow_xla_rules_concern_tensorflow_only():
    check_options(with_settings("train.compile=true", backend="torch"), DATASET)
    # XLA compiles each padded length on its first execution, which the loop's warming runs untimed.
    check_options(with_settings("train.jit_compile=true", "bench.warmup_steps=0"), DATASET)
    # The mirrored XLA refusal is TensorFlow's merge call; a JAX mirrored plan is the same layout.
    spec = plan_mirrored(options(backend="jax", replicas=2), "cpu", [], [0, 1])
    assert (spec.backend, spec.strategy, spec.replicas, spec.events_per_window) == ("jax", "mirrored", 2, 24)


def test_every_copy_and_rank_carries_the_backend():
    assert {s.backend for s in plan_copies(options(copies=2, backend="jax"), "cpu", [], [0, 1])} == {"jax"}
    assert plan_copies(options(), "cpu", [], [0])[0].backend == "tensorflow"
    rank = rank_spec(options(backend="torch"), "cpu", rank=1, size=2, local_rank=1, strategy="ddp")
    assert (rank.backend, rank.strategy, rank.local_rank, rank.num_workers) == ("torch", "ddp", 1, 2)
    entry = failed_entry(rank, "did not report")  # a DDP rank's entry names its rank, as a Horovod rank's does
    assert (entry["copy"], entry["rank"], entry["local_rank"], entry["status"]) == (1, 1, 1, "failed")


def test_cpu_copies_get_their_cpu_sets_threads_and_the_cpu_sizes():
    specs = plan_copies(options(copies=2), "cpu", [], [0, 1, 2, 3])
    assert [s.cpus for s in specs] == [[0, 1], [2, 3]] and [s.threads for s in specs] == [2, 2]
    assert {s.events_per_window for s in specs} == {12} and {s.validation_events for s in specs} == {8}
    assert [s.gpu_index for s in specs] == [None, None]
    assert _child_env(specs[0], "nvidia")["CUDA_VISIBLE_DEVICES"] == ""
    assert _child_env(specs[0], "nvidia")["OMP_NUM_THREADS"] == "2"


def test_gpu_copies_get_one_gpu_each_and_the_gpu_sizes():
    # CUDA_VISIBLE_DEVICES=2,5 outside: the copies must use GPUs 2 and 5, not 0 and 1.
    specs = plan_copies(options(copies=2, threads=3, events=500), "gpu", ["2", "5"], list(range(8)))
    assert [s.gpu_index for s in specs] == [2, 5] and [s.threads for s in specs] == [3, 3]
    assert [s.cpus for s in specs] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert {s.events_per_window for s in specs} == {500} and {s.validation_events for s in specs} == {2000}
    assert [_child_env(s, "nvidia")["CUDA_VISIBLE_DEVICES"] for s in specs] == ["2", "5"]
    with pytest.raises(UsageError, match="needs 3 GPUs"):
        plan_copies(options(copies=3), "gpu", ["0", "1"], list(range(8)))


def test_a_mirrored_plan_is_one_process_whose_window_scales_with_the_replicas():
    spec = plan_mirrored(options(replicas=2), "cpu", [], [0, 1, 2, 3])
    assert (spec.strategy, spec.replicas, spec.cpus, spec.events_per_window) == ("mirrored", 2, [0, 1, 2, 3], 24)
    gpu = plan_mirrored(options(), "gpu", ["3", "6"], list(range(4)))
    assert gpu.replicas == 2 and gpu.gpu_indices == [3, 6] and gpu.events_per_window == 20000
    assert _child_env(gpu, "nvidia")["CUDA_VISIBLE_DEVICES"] == "3,6"
    with pytest.raises(UsageError, match="use --replicas, not --copies"):
        plan_mirrored(options(copies=2), "cpu", [], [0, 1])
    with pytest.raises(UsageError, match="--replicas 3 needs 3 GPUs; 2 visible"):
        plan_mirrored(options(replicas=3), "gpu", ["0", "1"], [0])


def test_a_horovod_rank_reads_its_shard_on_its_local_gpu_and_keeps_the_launchers_binding():
    spec = rank_spec(options(threads=2), "gpu", rank=3, size=4, local_rank=1)
    assert (spec.copy, spec.copies, spec.num_workers, spec.local_rank) == (3, 4, 4, 1)
    assert (spec.strategy, spec.gpu_index, spec.cpus, spec.threads) == ("horovod", 1, None, 2)
    assert (spec.events_per_window, spec.validation_events) == (10000, 2000)
    cpu = rank_spec(options(events=7), "cpu", rank=0, size=2, local_rank=0)
    assert (cpu.gpu_index, cpu.events_per_window, cpu.validation_events) == (None, 7, 8)


def test_validate_refuses_bad_input_and_writes_nothing(tmp_path):
    results = tmp_path / "results"
    for bad, message in [
        (options(results_dir=results, replicas=2), "--replicas belongs to --strategy mirrored"),
        (options(results_dir=results, copies=0), "--copies must be at least 1, not 0"),
        (options(results_dir=results, data_dir=tmp_path / "none"), "no delphes_pf"),
    ]:
        with pytest.raises(HepbenchError, match=message):
            LocalCopies("single").validate(bad)
    assert list(tmp_path.iterdir()) == []


def test_plan_refuses_a_layout_before_it_creates_the_results_directory(tmp_path):
    inputs = Inputs(dataset=DATASET, device="cpu", gpus=[], cpus=[0, 1])
    results = tmp_path / "results"
    with pytest.raises(UsageError, match="--copies 3 needs at least 3 CPUs"):
        LocalCopies("single").plan(options(results_dir=results, copies=3), inputs)
    assert not results.exists()
    plan = LocalCopies("single").plan(options(results_dir=results, copies=2, mllog=tmp_path / "log" / "m.txt"), inputs)
    assert results.is_dir() and (tmp_path / "log").is_dir()  # claimed by the plan's last check
    assert plan.copies == 2 and [s.cpus for s in plan.specs] == [[0], [1]] and plan.mllog == tmp_path / "log" / "m.txt"


def test_a_horovod_rank_above_0_writes_no_report_and_exits_by_the_job_s_status(tmp_path):
    spec = rank_spec(options(results_dir=tmp_path), "cpu", rank=1, size=2, local_rank=1)
    plan = Plan(specs=[spec], dataset=DATASET, copies=2, benchmark={"controller": "gloo"})
    for statuses, code in ((["ok", "ok"], 0), (["ok", "failed"], 1)):
        outcome = Outcome(
            entries=[{"status": s} for s in statuses],
            context={},
            log=None,
            exit_code=0,
            start_iso="2026-01-01T00:00:00.000+00:00",
            start=0.0,
            publish=False,
        )
        assert collect(options(results_dir=tmp_path), plan, outcome) is None
        assert report_run(options(results_dir=tmp_path), plan, outcome, None, stream=None) == (None, code, None)
    stopped = dataclasses.replace(outcome, exit_code=143, complete=False)
    assert report_run(options(results_dir=tmp_path), plan, stopped, None, stream=None) == (None, 143, None)
    assert list(tmp_path.iterdir()) == []


def test_a_gpu_run_loads_its_configuration_again_with_the_gpu_defaults():
    from hepbench.mlpf.config import ConfigSource

    source = ConfigSource(None, ("train.precision=fp16",))
    options = with_settings(*source.overrides, config_source=source)
    assert options.for_device("cpu") is options
    gpu = options.for_device("gpu").config
    assert (gpu.data.batch_size, gpu.data.cache, gpu.train.precision) == (32, "memory", "fp16")  # the user's precision
    plain = with_settings()  # no source (a library caller's own Config): used as given everywhere
    assert plain.for_device("gpu").config.data.batch_size == 2
