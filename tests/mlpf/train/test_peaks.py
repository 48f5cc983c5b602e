"""The peaks table: devices found by the names frameworks give them, per-device shares of a package,
refused malformed entries, and docs/training.md's table equal to the packaged one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hepbench.mlpf.train.peaks import PRECISIONS, lookup, parse, table

DOCS = Path(__file__).resolve().parents[3] / "docs" / "training.md"


@pytest.mark.parametrize(
    "name, key",
    [
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA H100 PCIe", "H100 PCIe"),
        ("NVIDIA H100 NVL", "H100 NVL"),
        ("nvidia h100-pcie", "H100 PCIe"),
        ("NVIDIA H200", "H200"),
        ("NVIDIA H200 NVL", "H200 NVL"),
        ("NVIDIA GH200 480GB", "GH200"),
        ("NVIDIA GH200 144G HBM3e", "GH200"),
        ("NVIDIA B200", "B200"),
        ("NVIDIA A100-SXM4-80GB", "A100"),
        ("NVIDIA A100 80GB PCIe", "A100"),
        ("NVIDIA L40S", "L40S"),
        ("AMD Instinct MI300X", "MI300X"),
        ("AMD Instinct MI300X VF", "MI300X"),
        ("AMD Instinct MI325X", "MI325X"),
        ("AMD Instinct MI250X/MI250", "MI250X"),
        ("Intel(R) Data Center GPU Max 1550", "Max 1550"),
        # Other parts whose names contain a known one: not theirs.
        ("NVIDIA GB200", None),
        ("NVIDIA A100X", None),
        ("AMD Instinct MI300A", None),
        ("AMD Instinct MI250", None),
        ("Intel(R) Data Center GPU Max 1100", None),
        ("Tesla T4", None),
        ("", None),
        (None, None),
    ],
)
def test_a_device_is_found_by_the_name_its_framework_gives_it(name, key):
    found = lookup(name)
    assert (found.key if found else None) == key


def test_a_package_shown_as_two_devices_gives_each_its_half():
    mi250x, max1550, h100 = lookup("AMD Instinct MI250X"), lookup("Intel(R) Data Center GPU Max 1550"), lookup("H100")
    assert mi250x.flops_per_second("bf16", {}) == pytest.approx(191.5e12)  # one GCD of 383 TFLOP/s
    assert mi250x.flops_per_second("tf32", {}) is None  # no TF32 on CDNA 2
    assert max1550.flops_per_second("tf32", {}) == pytest.approx(209.7e12)  # one stack (Level Zero's FLAT default)
    composite = {"ZE_FLAT_DEVICE_HIERARCHY": "composite"}
    assert max1550.flops_per_second("tf32", composite) == pytest.approx(419.4e12)  # the whole package
    assert h100.flops_per_second("fp32", composite) == pytest.approx(67e12)


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"key": "X", "match": "X", "tflops": {"fp32": 1.0}},
            r"devices\[0\] \(X\): needs key, match, tflops and source",
        ),
        ({"key": "X", "match": "X", "tflops": {"fp64": 1.0}, "source": "u"}, r"\(X\): tflops must map some of"),
        ({"key": "X", "match": "X", "tflops": {"fp32": -1}, "source": "u"}, r"\(X\): tflops must map"),
        ({"key": "X", "match": "(", "tflops": {"fp32": 1}, "source": "u"}, r"\(X\): match '\(' is not a regular"),
        (
            {"key": "X", "match": "X", "tflops": {"fp32": 1}, "source": "u", "devices_per_package": 0},
            r"devices_per_package must be a positive integer",
        ),
        (
            {"key": "X", "match": "X", "tflops": {"fp32": 1}, "source": "u", "whole_package_when": "COMPOSITE"},
            r"whole_package_when must be NAME=VALUE",
        ),
        ({"key": "X", "match": "X", "tflops": {"fp32": 1}, "source": "u", "peak": 2}, r"unknown field\(s\) \['peak'\]"),
    ],
)
def test_a_malformed_entry_is_refused_naming_it(entry, message):
    with pytest.raises(ValueError, match=message):
        parse({"devices": [entry]}, "peaks.yaml")


def test_a_key_given_twice_and_an_empty_table_are_refused():
    entry = {"key": "X", "match": "X", "tflops": {"fp32": 1}, "source": "u"}
    with pytest.raises(ValueError, match=r"devices\[1\] \(X\): key 'X' appears twice"):
        parse({"devices": [entry, entry]})
    with pytest.raises(ValueError, match="expected a non-empty list under 'devices'"):
        parse({"devices": []})


def test_the_documented_table_is_the_packaged_one():
    """docs/training.md states each peak with its datasheet; the package reads peaks.yaml: both the same."""
    text = DOCS.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \| (.+) \| <(https://[^>]+)> \|$", text, flags=re.M)
    documented = {}
    for key, cells, source in rows:
        *figures, split = [c.strip() for c in cells.split("|")]
        documented[key] = ({p: float(f) for p, f in zip(PRECISIONS, figures) if f != "-"}, int(split), source)
    packaged = {p.key: (dict(p.tflops), p.devices_per_package, p.source) for p in table()}
    assert list(documented) == list(packaged)  # the matching order too
    assert documented == packaged
