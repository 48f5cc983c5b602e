"""Energy of timed windows: a fake powercap tree (two packages, dram, wrap-around, an unreadable
counter), a fake NVML module, and the report block against the schema."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from hepbench.core.energy import EnergyMeter, energy_block, gpu_sources, nvml_sources, powercap_sources
from tests.unprivileged import without_file_override

SCHEMA = Path(__file__).resolve().parents[2] / "results_schema" / "mlpf_summary.schema.json"


def zone(root: Path, name: str, label: str, uj: int, max_uj: int = 1_000_000_000) -> Path:
    z = root / name
    z.mkdir()
    (z / "name").write_text(label + "\n")
    (z / "energy_uj").write_text(f"{uj}\n")
    (z / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return z


@pytest.fixture
def tree(tmp_path):
    zone(tmp_path, "intel-rapl:0", "package-0", 100_000_000)
    zone(tmp_path, "intel-rapl:0:0", "core", 5)  # inside the package: left out
    zone(tmp_path, "intel-rapl:0:1", "dram", 10_000_000)
    zone(tmp_path, "intel-rapl:1", "package-1", 999_000_000)  # wraps during the window
    zone(tmp_path, "intel-rapl-mmio:0", "package-0", 7)  # the same package again: left out
    return tmp_path


def set_uj(root: Path, name: str, uj: int) -> None:
    (root / name / "energy_uj").write_text(f"{uj}\n")


def test_two_packages_dram_and_wraparound(tree):
    clock = iter([0.0, 2.0])
    meter = EnergyMeter(powercap_sources(tree), clock=lambda: next(clock))
    assert [s.name for s in meter.sources] == ["package-0", "package-0/dram", "package-1"]
    meter.start(1)
    set_uj(tree, "intel-rapl:0", 150_000_000)  # +50 J
    set_uj(tree, "intel-rapl:0:1", 14_000_000)  # +4 J
    set_uj(tree, "intel-rapl:1", 29_000_000)  # wrapped: 1 J to the top, then 29 J
    meter.stop(1)
    sources = meter.to_list()
    assert [s["joules"] for s in sources] == pytest.approx([50.0, 4.0, 30.0])
    assert sources[0]["windows"] == [
        {"window": 1, "joules": pytest.approx(50.0), "seconds": 2.0, "watts": pytest.approx(25.0)}
    ]
    block = energy_block(sources, events=168)
    assert block["status"] == "measured" and block["joules"] == pytest.approx(84.0)
    assert block["seconds"] == 2.0 and block["mean_watts"] == pytest.approx(42.0)
    assert block["events_per_joule"] == pytest.approx(2.0)


def test_a_nested_devices_tree_as_mounted_in_a_container(tmp_path):
    top = tmp_path / "intel-rapl"
    top.mkdir()
    (top / "name").write_text("intel-rapl\n")
    package = zone(top, "intel-rapl:0", "package-0", 1)
    zone(package, "intel-rapl:0:0", "dram", 2)
    assert [s.name for s in powercap_sources(tmp_path)] == ["package-0", "package-0/dram"]


def test_the_class_directory_of_links(tmp_path):
    devices = tmp_path / "devices"
    devices.mkdir()
    package = zone(devices, "intel-rapl:0", "package-0", 1)
    dram = zone(package, "intel-rapl:0:0", "dram", 2)
    cls = tmp_path / "class"
    cls.mkdir()
    (cls / "intel-rapl:0").symlink_to(package)
    (cls / "intel-rapl:0:0").symlink_to(dram)
    sources = powercap_sources(cls)
    assert [s.name for s in sources] == ["package-0", "package-0/dram"]
    assert sources[1].path == str(cls / "intel-rapl:0:0" / "energy_uj")


def test_unreadable_counter_says_why(tree):
    # In a process that file modes bind even as root (tests/unprivileged.py), as on a kernel with the
    # 2020 PLATYPUS fix, where energy_uj is readable by root only.
    (tree / "intel-rapl:0" / "energy_uj").chmod(0o200)
    code = (
        "import json, sys; from hepbench.core.energy import powercap_sources; "
        "print(json.dumps({s.name: s.reason for s in powercap_sources(sys.argv[1])}))"
    )
    r = subprocess.run(
        without_file_override([sys.executable, "-c", code, str(tree)]), capture_output=True, text=True, check=True
    )
    reasons = json.loads(r.stdout)
    assert f"{tree / 'intel-rapl:0' / 'energy_uj'}: Permission denied" in reasons["package-0"]
    assert "CVE-2020-8694" in reasons["package-0"]
    assert reasons["package-1"] is None  # the other package is still measured


def test_missing_directory_and_unreadable_everything(tmp_path):
    meter = EnergyMeter(powercap_sources(tmp_path / "nope"))
    meter.start(1)
    meter.stop(1)
    block = energy_block(meter.to_list(), events=10)
    assert block["status"] == "unavailable" and "does not exist" in block["reason"]
    assert block["joules"] is None and block["events_per_joule"] is None


def test_counter_failing_mid_run_drops_the_source(tree):
    meter = EnergyMeter(powercap_sources(tree))
    meter.start(1)
    (tree / "intel-rapl:1" / "energy_uj").write_text("garbage\n")
    meter.stop(1)
    s = {x["name"]: x for x in meter.to_list()}
    assert s["package-1"]["status"] == "unavailable" and "not an integer" in s["package-1"]["reason"]
    assert s["package-0"]["status"] == "measured"


class FakeNvml:
    def __init__(self, energy_mj):
        self.energy = energy_mj

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, i):
        if i not in self.energy:
            raise RuntimeError("Invalid Argument")
        return i

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA H200"

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        return self.energy[h]


def test_fake_nvml_per_gpu():
    nvml = FakeNvml({0: 1_000_000, 1: 5_000})
    meter = EnergyMeter(nvml_sources([1, 3], nvml), clock=iter([0.0, 4.0]).__next__)
    assert meter.sources[0].name == "gpu1 NVIDIA H200" and meter.sources[0].path == "nvml:1"
    assert "Invalid Argument" in meter.sources[1].reason
    meter.start(1)
    nvml.energy[1] += 2_000_000  # 2 kJ
    meter.stop(1)
    block = energy_block(meter.to_list(), events=4000)
    assert block["joules"] == pytest.approx(2000.0) and block["mean_watts"] == pytest.approx(500.0)
    assert block["events_per_joule"] == pytest.approx(2.0)


def test_no_gpu_library_names_both():
    class Broken:
        def nvmlInit(self):
            raise RuntimeError("NVML Shared Library Not Found")

    class NoAmd:
        def amdsmi_init(self):
            raise RuntimeError("no amdgpu driver")

    (s,) = gpu_sources([0], Broken(), NoAmd())
    assert "NVML Shared Library Not Found" in s.reason and "no amdgpu driver" in s.reason


def test_a_known_vendor_reads_its_own_library_and_intel_says_it_is_not_read():
    class Untouched:
        def __getattr__(self, name):
            pytest.fail(f"another vendor's library was asked for {name}")

    class Amd:
        def amdsmi_init(self):
            pass

        def amdsmi_get_processor_handles(self):
            return ["h0", "h1"]

        def amdsmi_get_energy_count(self, handle):
            return {"energy_accumulator": 1_000, "counter_resolution": 15.3}

    amd = gpu_sources([1], nvml=Untouched(), amdsmi=Amd(), vendor="amd")
    assert [(s.kind, s.path, s.reason, s.read()) for s in amd] == [("amdsmi", "amdsmi:1", None, pytest.approx(0.0153))]
    nvidia = gpu_sources([0], nvml=FakeNvml({0: 7}), amdsmi=Untouched(), vendor="nvidia")
    assert [(s.kind, s.reason) for s in nvidia] == [("nvml", None)]
    intel = gpu_sources([0, 1], nvml=Untouched(), amdsmi=Untouched(), vendor="intel")
    assert [(s.kind, s.path, s.to_dict()["status"]) for s in intel] == [
        ("level_zero", "level_zero:0", "unavailable"),
        ("level_zero", "level_zero:1", "unavailable"),
    ]
    assert "zesPowerGetEnergyCounter" in intel[0].reason and "docs/energy.md" in intel[0].reason


def test_block_matches_the_schema(tree):
    schema = json.loads(SCHEMA.read_text())
    meter = EnergyMeter(powercap_sources(tree) + nvml_sources([0], FakeNvml({0: 10})))
    meter.start(1)
    meter.stop(1)
    block = energy_block(meter.to_list(), events=3)
    energy = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/energy"}
    jsonschema.validate(block, energy)
    jsonschema.validate(energy_block([s.to_dict() for s in powercap_sources(tree / "x")], 3), energy)
    with pytest.raises(jsonschema.ValidationError, match=r"'guessed' is not one of \['measured', 'unavailable'\]"):
        jsonschema.validate({**block, "status": "guessed"}, energy)
