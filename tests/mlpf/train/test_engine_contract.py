"""Every backend through its descriptor alone (hepbench.mlpf.engines.backends.Backend): one contract
for every engine (tests/mlpf/train/engine_contract.py, a process per backend), the descriptors agreeing
with the schema and the CLI, and no backend's name compared outside the engines package: a fourth
engine is one descriptor, one engine module and one parameter here."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import pytest

from hepbench.mlpf.engines.backends import BACKENDS, backend
from hepbench.mlpf.engines.base import one_ahead
from hepbench.mlpf.run.cli import run_parser
from hepbench.mlpf.train.numerics import TOLERANCES, relative_difference
from tests.worker_results import run_workers

ROOT = Path(__file__).resolve().parents[3]
# A backend's name compared as a string: `== "torch"`, `!= 'jax'`, `"tensorflow" ==`, `in ("jax", ...)`.
NAMES = "|".join(BACKENDS)
COMPARED = re.compile(rf"""(==|!=|\bin)\s*\(?\s*['"]({NAMES})['"]|['"]({NAMES})['"]\s*(==|!=)""")


@pytest.mark.slow
@pytest.mark.parametrize("name", BACKENDS)
def test_every_engine_keeps_the_contract_through_its_descriptor(name):
    facts = backend(name)
    if any(importlib.util.find_spec(m) is None for m in facts.modules):
        pytest.skip(f"{name} is the {facts.extra} extra")  # make setup installs every backend
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    r, found = run_workers(
        [sys.executable, "-m", "tests.mlpf.train.engine_contract", name],
        cwd=ROOT,
        env={**env, "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = found[name]
    # The engine class takes exactly the kinds its descriptor offers the run.
    assert out["is_engine"] and out["engine_kinds"] == list(facts.strategies)
    assert out["backend"]["name"] == name and out["backend"]["compile"]
    assert out["finite"] and out["losses"][-1] < out["losses"][0]  # three Adam steps on one batch
    # The numerics check (hepbench.mlpf.train.numerics): both sides from the initial weights, the
    # state left as it was; the first train step's loss is the device side's (the step's own forward).
    fp32, fp16 = out["numerics"]["fp32"], out["numerics"]["fp16"]
    assert fp32["state_unchanged"] and fp16["state_unchanged"]
    assert relative_difference(fp32["device"][0], fp32["host"][0]) <= TOLERANCES["fp32"].loss
    assert relative_difference(fp32["device"][1], fp32["host"][1]) <= TOLERANCES["fp32"].grad_norm
    assert fp32["device"][1] > 0 and fp32["device"][2] == fp32["host"][2] == 1.0
    assert out["losses"][0] == pytest.approx(fp32["device"][0], rel=1e-6)
    # fp16, targets far off: the initial loss scale (2^15) overflows the gradient, halved until finite;
    # within fp16's tolerance of the float32 host.
    assert 1.0 < fp16["device"][2] < 2.0**15
    assert relative_difference(fp16["device"][0], fp16["host"][0]) <= TOLERANCES["fp16"].loss
    assert relative_difference(fp16["device"][1], fp16["host"][1]) <= TOLERANCES["fp16"].grad_norm
    assert fp16["device"][:2] != fp16["host"][:2]  # float16 on the device, float32 on the host
    assert out["eval_loss"] > 0 and [d["type"] for d in out["devices"]] == ["cpu"]
    # The next batch is fetched (its copy issued) before the current one is handed out; none lost.
    assert out["fetched_at_first"] == 2 and out["order"] == [17, 18, 19]
    missing = [k for k in ("single", "mirrored", "horovod", "ddp") if k not in facts.strategies]
    assert sorted(out["refusals"]) == sorted(missing)
    for kind, message in out["refusals"].items():
        assert message == (
            f"--strategy {kind} is not available with --backend {name} (it has {', '.join(facts.strategies)})"
        )


def test_one_ahead_fetches_the_next_item_before_handing_out_the_current_one():
    fetched = []

    def source(n):
        for i in range(n):
            fetched.append(i)
            yield i

    it = one_ahead(source(3))
    assert next(it) == 0 and fetched == [0, 1]
    assert next(it) == 1 and fetched == [0, 1, 2]
    assert list(it) == [2]
    assert list(one_ahead(source(0))) == [] and list(one_ahead(source(1))) == [0]


def test_the_schema_and_the_cli_know_the_backends_of_the_descriptors():
    schema = json.loads((ROOT / "results_schema" / "mlpf_summary.schema.json").read_text())
    assert schema["$defs"]["backend_name"]["enum"] == list(BACKENDS)
    (action,) = [a for a in run_parser()._actions if "--backend" in a.option_strings]
    assert tuple(action.choices) == BACKENDS


def test_each_descriptor_names_its_own_facts():
    for name in BACKENDS:
        facts = backend(name)
        assert facts.strategies[0] == "single" and (facts.rank_strategy in facts.strategies + (None,))
        assert facts.engine.startswith("hepbench.mlpf.engines.") and ":" in facts.engine
        assert "n =" in facts.gpu_probe and facts.label and facts.distributions
    assert backend("jax").compiles_with == "jax.jit, always (nothing to set)"
    assert backend("torch").compiles_with == "train.compile=true (torch.compile)"
    with pytest.raises(ValueError, match=r"unknown backend 'mxnet' \(the backends: tensorflow, jax, torch\)"):
        backend("mxnet")


def test_no_backend_name_is_compared_outside_the_engines_package():
    found = []
    for path in sorted((ROOT / "hepbench").rglob("*.py")):
        if (ROOT / "hepbench" / "mlpf" / "engines") in path.parents:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if COMPARED.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert found == [], "\n".join(found)


def test_the_pattern_finds_the_comparisons_it_is_for():
    for line in ('if name == "torch":', "if b != 'jax':", 'x = "tensorflow" == b', 'if b in ("jax", "torch"):'):
        assert COMPARED.search(line), line
    assert not COMPARED.search('"tensorflow" in sys.modules') and not COMPARED.search('BACKENDS = ("jax",)')
