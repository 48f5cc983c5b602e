"""Model FLOPs utilisation from the report's entries: a GPU's datasheet peak at the precision that
ran, times its devices; a CPU copy's measured ceiling; a run's sum over its copies; null with the
reason where a peak is unknown or nothing was achieved."""

from __future__ import annotations

import pytest

from hepbench.mlpf.train.utilisation import MEASURED, copy_peak, run_utilisation, utilisation


def gpu(name: str, index: int = 0) -> dict:
    return {"type": "gpu", "name": name, "index": index}


def cpu_copy(flops: float | None = 2e9, ceiling: float | None = 10e9) -> dict:
    return {
        "device": {"type": "cpu", "name": "AMD EPYC", "index": None},
        "ceiling": {"precision": "fp32", "flops_per_second": ceiling} if ceiling else None,
        "train": {"flops_per_second": flops} if flops else None,
    }


@pytest.mark.parametrize(
    "precision, fp32_matmul, ran, tflops",
    [
        ("fp32", "highest", "fp32", 51.0),
        ("fp32", "tf32", "tf32", 378.0),
        ("bf16", "highest", "bf16", 756.0),
        ("fp16", "tf32", "fp16", 756.0),  # TF32 concerns float32 products only
    ],
)
def test_a_gpu_counts_at_the_precision_that_ran(precision, fp32_matmul, ran, tflops):
    peak = copy_peak({"device": gpu("NVIDIA H100 PCIe")}, precision, fp32_matmul, environ={})
    assert (peak.precision, peak.flops_per_second, peak.devices) == (ran, pytest.approx(tflops * 1e12), 1)
    assert (peak.table_entry, peak.reason) == ("H100 PCIe", None)
    assert peak.source == "https://www.nvidia.com/en-us/data-center/h100/"


def test_tf32_asked_of_a_device_without_it_counts_at_fp32():
    peak = copy_peak({"device": gpu("AMD Instinct MI250X")}, "fp32", "tf32", environ={})
    assert (peak.precision, peak.flops_per_second) == ("fp32", pytest.approx(47.85e12))  # one GCD


def test_a_mirrored_copy_counts_every_replica():
    name = "NVIDIA A100-SXM4-80GB"
    entry = {"device": gpu(name), "replica_devices": [gpu(name, i) for i in range(4)]}
    peak = copy_peak(entry, "bf16", "highest", environ={})
    assert (peak.devices, peak.flops_per_second) == (4, pytest.approx(4 * 312e12))


def test_a_copy_over_different_gpus_names_every_entry_once():
    replicas = [gpu("NVIDIA H100 PCIe"), gpu("NVIDIA H100 80GB HBM3", 1), gpu("NVIDIA H100 PCIe", 2)]
    entry = {"device": replicas[0], "replica_devices": replicas}
    peak = copy_peak(entry, "fp32", "highest", environ={})
    assert (peak.flops_per_second, peak.devices) == (pytest.approx((2 * 51 + 67) * 1e12), 3)
    assert (peak.precision, peak.table_entry, peak.source) == (
        "fp32",
        "H100; H100 PCIe",
        "https://www.nvidia.com/en-us/data-center/h100/",
    )


def test_an_unknown_gpu_has_no_value_and_says_why():
    u = utilisation(5e12, copy_peak({"device": gpu("Tesla T4")}, "bf16", "highest", environ={}))
    assert u.value is None and u.peak_flops_per_second is None
    assert u.reason == "device 'Tesla T4' is not in the peaks table (hepbench/mlpf/peaks.yaml)"


def test_a_cpu_copy_counts_against_its_own_measured_ceiling():
    u = utilisation(2e9, copy_peak(cpu_copy(), "fp32", "tf32"))  # a CPU has no TF32: the ceiling's precision
    assert (u.value, u.peak_flops_per_second, u.precision, u.devices) == (pytest.approx(0.2), 10e9, "fp32", 1)
    assert u.source == MEASURED and u.table_entry is None and u.reason is None
    missing = utilisation(2e9, copy_peak(cpu_copy(ceiling=None), "fp32", "highest"))
    assert missing.value is None and missing.reason.startswith("no matmul ceiling measured on the CPU")


def test_a_run_sums_its_copies_peaks_and_a_failed_run_keeps_the_peak():
    copies = [cpu_copy(2e9, 10e9), cpu_copy(3e9, 15e9)]
    u = run_utilisation(copies, {"precision": "fp32", "fp32_matmul": "highest"}, 5e9)
    assert (u.value, u.peak_flops_per_second, u.devices, u.source) == (pytest.approx(0.2), 25e9, 2, MEASURED)
    failed = run_utilisation(copies, {"precision": "fp32", "fp32_matmul": "highest"}, None)
    assert failed.value is None and failed.peak_flops_per_second == 25e9
    assert failed.reason == "no FLOP/s achieved (the run failed)"


def test_ranks_on_gpus_add_up_and_one_unknown_device_leaves_the_run_without_a_value():
    train = {"precision": "bf16", "fp32_matmul": "highest"}
    ranks = [{"device": gpu("NVIDIA H200", 0)}, {"device": gpu("NVIDIA H200", 1)}]
    u = run_utilisation(ranks, train, 197.88e12)
    assert (u.value, u.devices, u.table_entry) == (pytest.approx(0.1), 2, "H200")
    u = run_utilisation([*ranks, {"device": gpu("Tesla T4", 2)}], train, 197.88e12)
    assert u.value is None and u.devices == 3 and "'Tesla T4' is not in the peaks table" in u.reason
