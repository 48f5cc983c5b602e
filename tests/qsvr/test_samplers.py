"""Samplers: simulated annealing seeded, exact refuses big problems, D-Wave fails clearly offline and
never shows the token. No test contacts the network."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from hepbench.core.errors import UsageError
from hepbench.qsvr.model import QSVR
from hepbench.qsvr.qubo import qubo_energy
from hepbench.qsvr.samplers import DWave, Exact, SimulatedAnnealing, make_sampler

FAKE_TOKEN = "DEV-fake0123456789abcdef-not-a-real-token"


def random_qubo(n, seed=0):
    return np.triu(np.random.default_rng(seed).normal(size=(n, n)))


def test_simulated_annealing_is_seeded_and_reports_the_energies():
    Q = random_qubo(30)
    bits, energies = SimulatedAnnealing().sample(Q, num_reads=20, num_sweeps=50, seed=7)
    assert bits.shape == (20, 30) and bits.dtype == np.uint8 and energies.shape == (20,)
    np.testing.assert_allclose(energies, qubo_energy(Q, bits), atol=1e-9)
    again, _ = SimulatedAnnealing().sample(Q, num_reads=20, num_sweeps=50, seed=7)
    np.testing.assert_array_equal(bits, again)
    # any non-negative int is a seed (dwave-samplers itself takes only 0 <= s < 2**31)
    SimulatedAnnealing().sample(Q, num_reads=2, num_sweeps=5, seed=2**40)


def test_exact_returns_the_lowest_states_in_order():
    Q = random_qubo(8, seed=1)
    bits, energies = Exact().sample(Q, num_reads=5)
    assert bits.shape == (5, 8) and np.all(np.diff(energies) >= 0)
    states = np.array(np.meshgrid(*[[0, 1]] * 8)).reshape(8, -1).T
    assert energies[0] == pytest.approx(qubo_energy(Q, states).min())


def test_exact_refuses_big_problems():
    with pytest.raises(UsageError, match=r"'exact'.*21 variables.*at most 20"):
        Exact().sample(random_qubo(21), num_reads=1)


def test_make_sampler():
    assert isinstance(make_sampler("simulated"), SimulatedAnnealing)
    assert isinstance(make_sampler("exact"), Exact)
    assert isinstance(make_sampler("dwave"), DWave)
    custom = Exact()
    assert make_sampler(custom) is custom
    with pytest.raises(UsageError, match="sampler must be one of simulated, exact, dwave"):
        make_sampler("annealer")
    with pytest.raises(UsageError, match="sampler"):
        make_sampler(42)


def test_dwave_without_token(monkeypatch):
    monkeypatch.delenv("DWAVE_API_TOKEN", raising=False)
    with pytest.raises(UsageError, match="DWAVE_API_TOKEN"):
        DWave().sample(random_qubo(4), num_reads=1)


def test_dwave_without_package_never_shows_the_token(monkeypatch):
    monkeypatch.setenv("DWAVE_API_TOKEN", FAKE_TOKEN)
    monkeypatch.setitem(sys.modules, "dwave.system", None)  # import fails, as when not installed
    model = QSVR(sampler="dwave", num_reads=2)
    with pytest.raises(UsageError, match="dwave-system") as info:
        model.fit(np.eye(3), [0.0, 1.0, 2.0])
    assert FAKE_TOKEN not in str(info.value) and FAKE_TOKEN not in repr(info.value)
    assert FAKE_TOKEN not in repr(model) and FAKE_TOKEN not in repr(DWave())
    assert FAKE_TOKEN not in str(model.get_params())


def test_dwave_client_errors_are_scrubbed(monkeypatch):
    """A client error that echoes the token comes out without it (a stand-in dwave.system)."""
    seen = {}

    class FakeDWaveSampler:
        def __init__(self, token, solver=None):
            seen["token"] = token
            raise RuntimeError(f"authentication failed for token {token}")

    fake = types.ModuleType("dwave.system")
    fake.DWaveSampler, fake.EmbeddingComposite = FakeDWaveSampler, lambda child: child
    monkeypatch.setitem(sys.modules, "dwave.system", fake)
    monkeypatch.setenv("DWAVE_API_TOKEN", FAKE_TOKEN)
    with pytest.raises(UsageError, match="authentication failed") as info:
        DWave().sample(random_qubo(4), num_reads=1)
    assert seen["token"] == FAKE_TOKEN  # the token reaches the client, from the environment
    assert FAKE_TOKEN not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_dwave_chain_strength_and_reads(monkeypatch):
    """chain strength 10·ceil(max|Q|); aggregated reads come back one row per read."""
    import dimod

    calls = {}

    class FakeComposite:
        def __init__(self, child):
            pass

        def sample(self, bqm, num_reads, chain_strength, label):
            calls.update(num_reads=num_reads, chain_strength=chain_strength)
            sampleset = dimod.ExactSolver().sample(bqm).truncate(2)
            return dimod.SampleSet.from_samples_bqm(
                (sampleset.record.sample, sampleset.variables), bqm, num_occurrences=[2, 1]
            )

    fake = types.ModuleType("dwave.system")
    fake.DWaveSampler, fake.EmbeddingComposite = (lambda token, solver=None: None), FakeComposite
    monkeypatch.setitem(sys.modules, "dwave.system", fake)
    monkeypatch.setenv("DWAVE_API_TOKEN", FAKE_TOKEN)
    Q = random_qubo(4) * 2.3
    bits, energies = DWave().sample(Q, num_reads=3)
    assert calls == {"num_reads": 3, "chain_strength": 10 * np.ceil(np.abs(Q).max())}
    assert bits.shape == (3, 4) and energies[0] == energies[1]
    np.testing.assert_allclose(energies, qubo_energy(Q, bits), atol=1e-9)
