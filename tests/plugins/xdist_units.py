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
# Longest first, from the module durations of CI's warm run on 2 cores (7 December 2026, with the
# JAX compilation cache; docs/development.md): a stale entry costs only balance, never a test.
LONG = (
    "tests/container/image/",  # 691 s (1,038 s with its deps stage rebuilt): the build, the SIF, 12 runs
    # 94 s, but 250 s where Inductor compiles for a clone in a new folder: early, so it never ends late
    "tests/mlpf/train/test_parity.py",
    "tests/hpo/test_search.py",  # 134 s: Ray Tune searches
    "tests/mlpf/run/test_run.py",  # 112 s
    "tests/mlpf/run/test_horovod.py",  # 109 s
    "tests/benchmarks/test_gpu_check.py",  # 95 s: the check on two stacks (300 s where it makes them)
    "tests/mlpf/model/test_model.py",  # 94 s
    "tests/test_node_stack.py",  # 84 s: parity and DDP on two stacks
    "tests/mlpf/train/test_torch_engine.py",  # 82 s
    "tests/mlpf/run/test_multihost.py",  # 70 s
    "tests/mlpf/train/test_distributed.py",  # 65 s
    "tests/examples/test_slurm_examples.py",  # 59 s
    "tests/mlpf/run/test_backends.py",  # 52 s
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
