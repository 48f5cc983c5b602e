"""A fault in the train step of every engine, for tests/mlpf/run/test_numerics_run.py, which puts this
folder first on PYTHONPATH: every Python process of the run (the coordinator and each copy) imports
it as it starts.

When an engine's steps module (hepbench.mlpf.engines.*_steps) is imported, its loss function
`mlpf_losses` (what the train step's forward pass and the numerics check's device side call) is
wrapped to return every loss term times $HEPBENCH_TEST_FAULT (1.01: the loss and its gradient 1 %
off), as a device whose kernels or compiler compute wrongly would. The host reference computes
through the engine module's own loss, which stays correct.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys

STEPS = {f"hepbench.mlpf.engines.{name}_steps" for name in ("tensorflow", "jax", "torch")}
FACTOR = float(os.environ["HEPBENCH_TEST_FAULT"])


def _wrong(losses):
    def wrong(*args, **kwargs):
        return {name: value * FACTOR for name, value in losses(*args, **kwargs).items()}

    return wrong


class _Faulty(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in STEPS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            module.mlpf_losses = _wrong(module.mlpf_losses)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _Faulty())
