"""Package versions are reported as given (hepbench) or as installed (None: not installed)."""

from __future__ import annotations

import platform
from importlib import metadata

from hepbench.core.hostinfo import distribution_version, package_versions


def test_package_versions_reports_hepbench_as_given_then_python_then_the_names():
    versions = package_versions("9.9.9", ("numpy", "no-such-distribution-hepbench"))
    assert list(versions) == ["hepbench", "python", "numpy", "no-such-distribution-hepbench"]
    assert versions["hepbench"] == "9.9.9" and versions["python"] == platform.python_version()
    assert versions["numpy"] == metadata.version("numpy") and versions["no-such-distribution-hepbench"] is None


def test_distribution_version_takes_the_first_installed_name():
    assert distribution_version("no-such-distribution-hepbench", "numpy") == metadata.version("numpy")
    assert distribution_version("no-such-distribution-hepbench") is None
