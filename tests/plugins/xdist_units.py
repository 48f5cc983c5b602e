"""A pytest-xdist scheduler for `make test`: one work unit per test module, except the packages in
SHARED, whose modules share package-scoped fixtures (the image package: one image build for its
three modules) and so go to one worker together. The units that take minutes (LONG) are handed out
first, longest first, so that none of them starts late and runs alone at the end while the other
worker idles; the rest follow in xdist's order (most tests first).

xdist's own `--dist loadfile` splits by file, and its `--dist loadgroup` did not group anything
with xdist 3.8 and pytest 9.2 (four tests with one `xdist_group` mark ran on two workers).
Loaded by `make test` with `-p tests.plugins.xdist_units` when it starts workers.
"""
from __future__ import annotations

from collections import OrderedDict

SHARED = ("tests/container/image/",)
# Longest first, from the module durations of the CI runs of 3 December 2026 (2 cores; the image
# package's figure warm, the others from a run with cold image caches): a stale entry costs only
# balance, never a test.
LONG = (
    "tests/container/image/",                 # 722 s warm: the image build, the SIF, 11 container runs
    "tests/hpo/test_search.py",               # 239-386 s
    "tests/mlpf/train/test_parity.py",        # 262 s: three engines at once
    "tests/mlpf/run/test_run.py",             # 212 s
    "tests/mlpf/run/test_backends.py",        # 205 s
    "tests/mlpf/run/test_horovod.py",         # 198 s
    "tests/mlpf/model/test_model.py",         # 142 s
    "tests/mlpf/train/test_torch_engine.py",  # 116 s: torch.compile
    "tests/examples/test_slurm_examples.py",  # 104 s
    "tests/mlpf/run/test_multihost.py",       # 102 s
    "tests/mlpf/train/test_distributed.py",   # 100 s
)


def unit(nodeid: str) -> str:
    """The work unit of a test: its package if that is in SHARED, else its module."""
    module = nodeid.split("::", 1)[0]
    return next((package for package in SHARED if module.startswith(package)), module)


def first_long(units: list[str]) -> list[str]:
    """The units in the order they are handed out: LONG's, in LONG's order, then the rest as given."""
    rank = {name: i for i, name in enumerate(LONG)}
    return sorted(units, key=lambda u: rank.get(u, len(LONG)))


def pytest_xdist_make_scheduler(config, log):
    """Before xdist's own (which is trylast): module units, the SHARED packages as one, LONG first."""
    if not config.getvalue("numprocesses"):
        return None
    from xdist.scheduler import LoadFileScheduling

    class ModuleScheduling(LoadFileScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return unit(nodeid)

        def _assign_work_unit(self, node) -> None:
            # The queue is complete on the first assignment (schedule() fills it, then assigns).
            if not self.ordered:
                self.workqueue = OrderedDict((u, self.workqueue[u]) for u in first_long(list(self.workqueue)))
                self.ordered = True
            super()._assign_work_unit(node)

    return ModuleScheduling(config, log)
