"""`hepbench hpo run --backend`: trials train on the engine asked for. A module of its own: the search
starts its own Ray instance (its workers get $KERAS_BACKEND), which must not replace the one the
other search tests share (tests/hpo/conftest.py's ray_local)."""

from __future__ import annotations

import numpy as np
import pytest

from hepbench.core.errors import UsageError
from hepbench.hpo.schedulers import SchedulerSettings
from hepbench.hpo.space import load_space
from hepbench.mlpf.config import load_config

pytestmark = pytest.mark.slow


def test_trials_train_on_the_backend_asked_for(built, tiny_config, tiny_space, tmp_path):
    backend = "torch"  # JAX's trials come from make_engine alike
    pytest.importorskip(backend)
    import ray

    from hepbench.hpo.search import SearchConfig, run_search
    from hepbench.hpo.trials import search_document

    if ray.is_initialized():
        ray.shutdown()
    cfg = SearchConfig(
        data_dir=built,
        resultsdir=tmp_path,
        base=load_config(tiny_config),
        scheduler="fifo",
        num_samples=1,
        space=load_space(tiny_space),
        quiet=True,
        num_cpus=1,
        backend=backend,
        settings=SchedulerSettings(max_t=2, seed=4),
    )
    result = run_search(cfg)
    assert [(t.status, t.epochs, t.backend) for t in result.trials] == [("completed", 2, backend)]
    assert all(np.isfinite(t.val_loss).all() for t in result.trials)
    assert search_document(result, cfg)["backend"] == backend


def test_an_unknown_backend_is_refused_naming_the_option(built, tiny_config, tmp_path):
    from hepbench.hpo.search import SearchConfig

    with pytest.raises(UsageError, match=r"--backend: the backend must be one of tensorflow, jax, torch, not 'mxnet'"):
        SearchConfig(data_dir=built, resultsdir=tmp_path, base=load_config(tiny_config), backend="mxnet")
