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
# Longest first, from the module durations of CI runs on 2 cores (3 and 7 December 2026; the image
# package's figure with its deps layer rebuilt): a stale entry costs only balance, never a test.
LONG = (
    "tests/container/image/",  # 722-935 s (+75 s, issue 33): the image build, the SIF, 12 container runs
    "tests/mlpf/train/test_parity.py",  # 328 s: four engine processes at once (PyTorch compiled by Inductor)
    "tests/hpo/test_search.py",  # 140-386 s
    "tests/benchmarks/test_gpu_check.py",  # 133 s: the check on two stacks
    "tests/mlpf/run/test_run.py",  # 120-212 s
    "tests/mlpf/run/test_backends.py",  # 118-205 s
    "tests/mlpf/run/test_horovod.py",  # 109-198 s
    "tests/mlpf/train/test_torch_engine.py",  # 97 s
    "tests/test_node_stack.py",  # 94 s: parity and DDP on the GPU machine's stack
    "tests/mlpf/model/test_model.py",  # 83-142 s
    "tests/mlpf/train/test_distributed.py",  # 85-100 s
    "tests/examples/test_slurm_examples.py",  # 76-104 s
    "tests/mlpf/run/test_multihost.py",  # 62-102 s
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
