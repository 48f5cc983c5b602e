"""The device layer (hepbench.core.devices) on a CPU machine: each vendor's management tool, run as
a stand-in printing its documented output (tests/gpu_standins.py), lists the node's GPUs; each
vendor's visibility variables are read in the order its runtime applies them and a copy is given
its GPUs through the vendor's own variable; a node's vendor is found from its driver's device
nodes; the frameworks' runtime strings are read."""

from __future__ import annotations

import json

import pytest

from hepbench.core import devices
from hepbench.core.devices import AMD, INTEL, NVIDIA, Gpu, GpuRuntime
from tests import gpu_standins


@pytest.mark.parametrize(
    "vendor, expected, runtime",
    [
        (
            "nvidia",
            [
                Gpu("nvidia", 0, "NVIDIA A100-SXM4-80GB", 81920 * 2**20, "00000000:07:00.0"),
                Gpu("nvidia", 1, "NVIDIA A100-SXM4-80GB", 81920 * 2**20, "00000000:0B:00.0"),
            ],
            GpuRuntime("cuda", "12.4", "550.54.15"),
        ),
        (
            "amd",
            [
                Gpu("amd", 0, "AMD Instinct MI250X", 65520 * 2**20, "0000:c1:00.0"),
                Gpu("amd", 1, "AMD Instinct MI250X", 65520 * 2**20, "0000:c6:00.0"),
            ],
            GpuRuntime("hip", "6.2.2", "6.8.5"),
        ),
        (
            "intel",
            [
                Gpu("intel", 0, "Intel(R) Data Center GPU Max 1550", 137438953472, "0000:29:00.0"),
                Gpu("intel", 1, "Intel(R) Data Center GPU Max 1550", 137438953472, "0000:3a:00.0"),
            ],
            GpuRuntime("level_zero", None, "I915_24.3.23_PSB_240416.31"),
        ),
    ],
)
def test_each_vendor_lists_the_node_s_gpus_with_its_own_tool(tmp_path, monkeypatch, vendor, expected, runtime):
    gpu_standins.install(tmp_path, monkeypatch, vendor)
    listing = devices.vendor(vendor).listing()
    assert listing.gpus == expected and listing.runtime == runtime
    assert listing.source == gpu_standins.VENDOR_TOOLS[vendor][0]
    assert listing.host_runtime(vendor) == {
        "vendor": vendor,
        "runtime": runtime.name,
        "version": runtime.version,
        "driver_version": runtime.driver_version,
        "source": listing.source,
    }
    assert [g.to_dict()["vendor"] for g in listing.gpus] == [vendor, vendor]


def test_amd_falls_back_to_rocm_smi_and_no_tool_is_no_listing(tmp_path, monkeypatch):
    gpu_standins.install(tmp_path, monkeypatch, "amd", tools=("rocm-smi",))
    listing = AMD.listing()
    assert listing.source == "rocm-smi" and [g.index for g in listing.gpus] == [0, 1]
    assert listing.gpus[1] == Gpu("amd", 1, "AMD Instinct MI250X", 68702699520, "0000:C6:00.0")
    assert listing.runtime == GpuRuntime("hip", None, "6.8.5")
    assert NVIDIA.listing() is None and INTEL.listing() is None  # their tools are not on this PATH


def test_a_tool_that_fails_or_prints_something_else_lists_nothing(tmp_path, monkeypatch):
    gpu_standins.install(tmp_path, monkeypatch, "amd", tools=())
    gpu_standins.write_tool(tmp_path / "standin-bin", "amd-smi", {})  # refuses every command (exit 2)
    gpu_standins.write_tool(
        tmp_path / "standin-bin",
        "rocm-smi",
        {("--showproductname", "--showmeminfo", "vram", "--showbus", "--showdriverversion", "--json"): "WARNING: no"},
    )
    assert AMD.listing() is None


def test_the_older_and_newer_formats_of_each_tool_are_read():
    older = json.dumps(
        [
            {
                "gpu": 3,
                "asic": {"market_name": "MI210"},
                "bus": {"bdf": "0000:03:00.0"},
                "vram": {"vram_type": "HBM2E", "vram_size_mb": 65536},
            }
        ]
    )  # ROCm 6.1: a list, vram_size_mb
    listing = devices.parse_amd_smi(older, json.dumps([{"rocm_version": "N/A", "kernel_version": "6.7.0"}]))
    assert listing.gpus == [Gpu("amd", 3, "MI210", 65536 * 2**20, "0000:03:00.0")]
    assert listing.runtime == GpuRuntime("hip", None, "6.7.0")
    unknown = json.dumps({"gpu_data": [{"gpu": 0, "asic": {"market_name": "N/A"}, "vram": {"size": "N/A"}}]})
    assert devices.parse_amd_smi(unknown, None).gpus == [Gpu("amd", 0, "AMD GPU", None, None)]
    lower = json.dumps({"card0": {"card series": "Radeon", "VRAM Total Memory (B)": "1024"}, "system": {}})
    assert devices.parse_rocm_smi(lower).gpus == [Gpu("amd", 0, "Radeon", 1024, None)]
    unified = devices.parse_nvidia_smi("0, NVIDIA GB10, [N/A], 0000000F:01:00.0\n", None)
    assert unified.gpus == [Gpu("nvidia", 0, "NVIDIA GB10", None, "0000000F:01:00.0")]  # memory.total [N/A]
    assert unified.runtime == GpuRuntime("cuda", None, None)  # an nvidia-smi without --version


@pytest.mark.parametrize(
    "vendor, env, count, expected",
    [
        (NVIDIA, {}, 2, ["0", "1"]),
        (NVIDIA, {"CUDA_VISIBLE_DEVICES": "2,5"}, 2, ["2", "5"]),
        (NVIDIA, {"CUDA_VISIBLE_DEVICES": "2,5"}, 1, ["2"]),  # the framework sees fewer than listed
        (NVIDIA, {"CUDA_VISIBLE_DEVICES": ""}, 0, []),
        (AMD, {"ROCR_VISIBLE_DEVICES": "4,5,6,7", "HIP_VISIBLE_DEVICES": "1,3"}, 2, ["5", "7"]),  # HIP indexes ROCr's
        (AMD, {"ROCR_VISIBLE_DEVICES": "2,3", "CUDA_VISIBLE_DEVICES": "1"}, 1, ["3"]),  # CUDA_: HIP's alias
        (AMD, {"ROCR_VISIBLE_DEVICES": "6,7", "HIP_VISIBLE_DEVICES": "0", "CUDA_VISIBLE_DEVICES": "1"}, 1, ["6"]),
        (AMD, {"HIP_VISIBLE_DEVICES": "2,3"}, 2, ["2", "3"]),
        (AMD, {"ROCR_VISIBLE_DEVICES": "GPU-4b2c1a9f,GPU-77aa"}, 2, ["GPU-4b2c1a9f", "GPU-77aa"]),
        (INTEL, {"ZE_AFFINITY_MASK": "1,3"}, 2, ["1", "3"]),
        (INTEL, {"CUDA_VISIBLE_DEVICES": "1"}, 2, ["0", "1"]),  # another vendor's variable
    ],
)
def test_the_visible_gpus_follow_the_vendor_s_variables_in_the_runtime_s_order(vendor, env, count, expected):
    assert vendor.visible(env, count) == expected


def test_a_copy_gets_its_gpus_through_its_vendor_s_variable_and_a_cpu_copy_none():
    outer = {"ROCR_VISIBLE_DEVICES": "4,5,6,7", "HIP_VISIBLE_DEVICES": "1,3", "CUDA_VISIBLE_DEVICES": "1", "X": "y"}
    env = dict(outer)
    AMD.assign_env(env, ["7"])  # ROCr's physical index; no HIP-level variable to index it again
    assert env == {"ROCR_VISIBLE_DEVICES": "7", "X": "y"}
    env = {"CUDA_VISIBLE_DEVICES": "2,5"}
    NVIDIA.assign_env(env, ["5"])
    assert env == {"CUDA_VISIBLE_DEVICES": "5", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    env = {}
    INTEL.assign_env(env, ["0", "1"])
    assert env == {"ZE_AFFINITY_MASK": "0,1", "ZE_ENABLE_PCI_ID_DEVICE_ORDER": "1"}
    hidden = {vendor.name: dict(outer) for vendor in (NVIDIA, AMD, INTEL)}
    for vendor in (NVIDIA, AMD, INTEL):
        vendor.hide_env(hidden[vendor.name])
    assert hidden["nvidia"]["CUDA_VISIBLE_DEVICES"] == "" and hidden["amd"]["HIP_VISIBLE_DEVICES"] == "-1"
    assert hidden["intel"] == outer  # Level Zero documents no "none" value: the engine's CPU device keeps it off


def test_the_node_s_vendor_is_found_from_its_driver(tmp_path):
    assert devices.node_vendor(tmp_path) is None
    for vendor in ("amd", "intel", "nvidia"):
        assert devices.node_vendor(gpu_standins.make_node(tmp_path / vendor, vendor)) is devices.vendor(vendor)
    both = gpu_standins.make_node(gpu_standins.make_node(tmp_path / "both", "intel"), "nvidia")
    assert devices.node_vendor(both) is NVIDIA  # a discrete GPU before Intel's graphics
    amd_render = tmp_path / "amd-render" / "sys" / "class" / "drm" / "renderD128" / "device"
    amd_render.mkdir(parents=True)
    (amd_render / "vendor").write_text("0x1002\n")  # a render node alone is not Intel's, nor ROCm's /dev/kfd
    assert devices.node_vendor(tmp_path / "amd-render") is None
    with pytest.raises(ValueError, match="unknown GPU vendor 'matrox' .*nvidia, amd, intel"):
        devices.vendor("matrox")


def test_the_frameworks_runtime_strings_are_read():
    assert devices.runtime_from_platform_version("cuda 12040") == GpuRuntime("cuda", "12.4")
    assert devices.runtime_from_platform_version("rocm 60200") == GpuRuntime("hip", "60200")
    assert devices.runtime_from_platform_version("cpu") is None
    assert devices.runtime_from_build_info({"is_cuda_build": True, "cuda_version": "12.5.1"}) == GpuRuntime(
        "cuda", "12.5.1"
    )
    assert devices.runtime_from_build_info({"is_rocm_build": True, "rocm_version": "6.2"}) == GpuRuntime("hip", "6.2")
    assert GpuRuntime("hip", "6.2").to_backend() == {"gpu_runtime": "hip", "gpu_runtime_version": "6.2"}
    assert devices.Listing([], None, "framework").host_runtime("amd") is None  # no GPUs: no key in report.host
    assert devices.VISIBILITY_VARIABLES == (
        "CUDA_VISIBLE_DEVICES",
        "ROCR_VISIBLE_DEVICES",
        "HIP_VISIBLE_DEVICES",
        "ZE_AFFINITY_MASK",
    )
