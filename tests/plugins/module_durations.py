"""A pytest plugin that ends the session with every test module's total duration, longest first,
beside the CPU time it used, and the share of the machine's CPU time the session kept busy.

The time of a module is the sum of its tests' setup, call and teardown phases, so module-scoped
fixtures count towards their module, and package-scoped ones (the image build of
tests/container/image/) towards the module whose test first uses them. Its CPU time is the
worker's own and that of the child processes it waited for in those phases (os.times()): what a
test's launchers, engines and builders computed. Processes that are not its children are left out
(a container under podman's conmon, Ray's workers), so the figure is a floor. On CI's two cores the
suite's wall time follows its CPU time wherever the machine is busy: the busy share says whether
time is lost to waits (idle CPUs) or to work. Loaded by `make test` (`-p
tests.plugins.module_durations`); CI's log uses it to show where its time goes.
"""

from __future__ import annotations

import os
from collections import defaultdict

import pytest

CPU = "module_durations.cpu_seconds"  # the user property that carries a phase's CPU time from a worker


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of every CPU since boot, from /proc/stat; (0, 0) where it is missing."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = sum(fields[3:5])  # idle and iowait
    return sum(fields) - idle, sum(fields)


class PhaseCpu:
    """In the process that runs the tests: each phase's CPU time, put on its report."""

    def __init__(self) -> None:
        self.start = 0.0

    def _phase(self) -> None:
        self.start = cpu_seconds()

    # Each phase starts its clock; pytest makes the phase's report right after it.
    pytest_runtest_setup = pytest.hookimpl(tryfirst=True)(lambda self, item: self._phase())
    pytest_runtest_call = pytest.hookimpl(tryfirst=True)(lambda self, item: self._phase())
    pytest_runtest_teardown = pytest.hookimpl(tryfirst=True)(lambda self, item, nextitem: self._phase())

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        outcome.get_result().user_properties.append((CPU, cpu_seconds() - self.start))


class ModuleDurations:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.tests: dict[str, set[str]] = defaultdict(set)
        self.machine = machine_jiffies()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        module = report.nodeid.split("::", 1)[0]
        self.seconds[module] += report.duration
        self.cpu[module] += sum(value for name, value in report.user_properties if name == CPU)
        self.tests[module].add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.seconds:
            return
        write = terminalreporter.write_line
        terminalreporter.write_sep("=", "durations per test module (wall, CPU)")
        for module, seconds in sorted(self.seconds.items(), key=lambda item: (-item[1], item[0])):
            write(f"{seconds:9.2f}s {self.cpu[module]:9.2f}s cpu {len(self.tests[module]):5d} tests  {module}")
        write(
            f"{sum(self.seconds.values()):9.2f}s {sum(self.cpu.values()):9.2f}s cpu "
            f"{sum(map(len, self.tests.values())):5d} tests  in all"
        )
        (busy0, total0), (busy1, total1) = self.machine, machine_jiffies()
        if total1 > total0:
            busy = 100 * (busy1 - busy0) / (total1 - total0)
            write(f"machine: {os.cpu_count()} CPUs, busy {busy:.0f} % of the session")


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):  # the controller (or a run without workers) sums up
        config.pluginmanager.register(ModuleDurations(), "module-durations")
    if not config.getoption("numprocesses", None) or hasattr(config, "workerinput"):
        config.pluginmanager.register(PhaseCpu(), "module-durations-cpu")
