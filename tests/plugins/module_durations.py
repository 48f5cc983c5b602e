"""A pytest plugin that ends the session with every test module's total duration, longest first.

The time of a module is the sum of its tests' setup, call and teardown phases, so module-scoped
fixtures count towards their module, and package-scoped ones (the image build of
tests/container/image/) towards the module whose test first uses them. Loaded by `make test`
(`-p tests.plugins.module_durations`); CI's log uses it to show where its time goes.
"""

from __future__ import annotations

from collections import defaultdict

import pytest


class ModuleDurations:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.tests: dict[str, set[str]] = defaultdict(set)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        module = report.nodeid.split("::", 1)[0]
        self.seconds[module] += report.duration
        self.tests[module].add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.seconds:
            return
        terminalreporter.write_sep("=", "durations per test module")
        for module, seconds in sorted(self.seconds.items(), key=lambda item: (-item[1], item[0])):
            terminalreporter.write_line(f"{seconds:9.2f}s {len(self.tests[module]):5d} tests  {module}")
        terminalreporter.write_line(
            f"{sum(self.seconds.values()):9.2f}s {sum(map(len, self.tests.values())):5d} tests  in all"
        )


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(ModuleDurations(), "module-durations")
