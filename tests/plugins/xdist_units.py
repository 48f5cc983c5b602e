"""A pytest-xdist scheduler for `make test`: one work unit per test module, except the packages in
SHARED, whose modules share package-scoped fixtures (the image package: one image build for its
three modules) and so go to one worker together.

xdist's own `--dist loadfile` splits by file, and its `--dist loadgroup` did not group anything
with xdist 3.8 and pytest 9.2 (four tests with one `xdist_group` mark ran on two workers).
Loaded by `make test` with `-p tests.plugins.xdist_units` when it starts workers.
"""
from __future__ import annotations

SHARED = ("tests/container/image/",)


def unit(nodeid: str) -> str:
    """The work unit of a test: its package if that is in SHARED, else its module."""
    module = nodeid.split("::", 1)[0]
    return next((package for package in SHARED if module.startswith(package)), module)


def pytest_xdist_make_scheduler(config, log):
    """Before xdist's own (which is trylast): module units, the SHARED packages as one."""
    if not config.getvalue("numprocesses"):
        return None
    from xdist.scheduler import LoadFileScheduling

    class ModuleScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return unit(nodeid)

    return ModuleScheduling(config, log)
