"""Samplers of a QUBO: one interface, `sample(Q, *, num_reads, num_sweeps, seed) -> (bits, energies)`.

bits: (R, n) uint8 in the QUBO's variable order; energies: (R,) = xᵀQx of each read.
  simulated  dwave-samplers simulated annealing on the CPU, seeded and reproducible (default)
  exact      dimod.ExactSolver: every state, for tiny problems (tests); returns the lowest num_reads
  dwave      a D-Wave annealer through dwave-system (optional; Leap token from DWAVE_API_TOKEN)
"""

from __future__ import annotations

import math
import os

import numpy as np

from hepbench.qsvr.params import ParameterError, choice
from hepbench.qsvr.qubo import to_bqm

SAMPLERS = ("simulated", "exact", "dwave")
MAX_EXACT_VARIABLES = 20  # 2^20 states are enumerated: about a second and ~100 MB
TOKEN_VARIABLE = "DWAVE_API_TOKEN"


class SamplerUnavailable(ParameterError):
    """The chosen sampler cannot run here (a missing package or credential); exit code 2."""


def _sa_seed(seed):
    """A seed dwave-samplers accepts, derived from any non-negative int, or None.

    Its message says 0 ≤ s < 2³², but 1.8.0 checks 0 ≤ s < 2³¹.
    """
    return None if seed is None else int(np.random.SeedSequence(seed).generate_state(1)[0] >> 1)


def _as_arrays(sampleset, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(bits, energies) with columns in variable order 0..n−1, one row per read."""
    record = sampleset.record
    columns = np.empty(n, dtype=int)
    columns[np.asarray(sampleset.variables, dtype=int)] = np.arange(n)
    bits = np.asarray(record.sample)[:, columns].astype(np.uint8)
    energies = np.asarray(record.energy, dtype=float)
    counts = np.asarray(record.num_occurrences)
    if np.any(counts != 1):  # aggregated reads (hardware): one row per read, as the other samplers
        bits, energies = np.repeat(bits, counts, axis=0), np.repeat(energies, counts)
    return bits, energies


class SimulatedAnnealing:
    """dwave-samplers SimulatedAnnealingSampler (geometric β schedule from the problem)."""

    name = "simulated"

    def sample(self, Q, *, num_reads: int, num_sweeps: int, seed=None):
        from dwave.samplers import SimulatedAnnealingSampler

        sampleset = SimulatedAnnealingSampler().sample(
            to_bqm(Q), num_reads=num_reads, num_sweeps=num_sweeps, seed=_sa_seed(seed)
        )
        return _as_arrays(sampleset, len(Q))

    def __repr__(self) -> str:
        return "SimulatedAnnealing()"


class Exact:
    """dimod.ExactSolver: the true optimum of tiny problems; the lowest `num_reads` states."""

    name = "exact"

    def sample(self, Q, *, num_reads: int, num_sweeps: int = 0, seed=None):
        import dimod

        n = len(Q)
        if n > MAX_EXACT_VARIABLES:
            raise ParameterError(
                f"sampler 'exact' enumerates all 2^n states: {n} variables is too many "
                f"(at most {MAX_EXACT_VARIABLES}, i.e. 2*K*N <= {MAX_EXACT_VARIABLES}); "
                "use sampler='simulated'"
            )
        bits, energies = _as_arrays(dimod.ExactSolver().sample(to_bqm(Q)), n)
        order = np.argsort(energies, kind="stable")[:num_reads]
        return bits[order], energies[order]

    def __repr__(self) -> str:
        return "Exact()"


class DWave:
    """A D-Wave quantum annealer: DWaveSampler + EmbeddingComposite (dwave-system, imported on use).

    The Leap API token is read from the environment variable DWAVE_API_TOKEN when sampling and is
    never stored on the object, logged or put in a message. `num_sweeps` and `seed` do not apply.
    chain_strength None: 10·ceil(max|Q_ij|) (the study's choice).
    """

    name = "dwave"

    def __init__(self, solver=None, chain_strength: float | None = None):
        self.solver = solver
        self.chain_strength = chain_strength

    def __repr__(self) -> str:
        return f"DWave(solver={self.solver!r}, chain_strength={self.chain_strength!r})"

    @staticmethod
    def _token() -> str:
        token = os.environ.get(TOKEN_VARIABLE, "").strip()
        if not token:
            raise SamplerUnavailable(
                f"sampler 'dwave' needs a D-Wave Leap API token in the environment "
                f"variable {TOKEN_VARIABLE} (it is read only from there)"
            )
        return token

    @staticmethod
    def _system():
        try:
            from dwave.system import DWaveSampler, EmbeddingComposite
        except ImportError:
            raise SamplerUnavailable(
                "sampler 'dwave' needs the package dwave-system "
                "(pip install dwave-system); use sampler='simulated' without it"
            ) from None
        return DWaveSampler, EmbeddingComposite

    def sample(self, Q, *, num_reads: int, num_sweeps: int = 0, seed=None):
        token = self._token()
        DWaveSampler, EmbeddingComposite = self._system()
        Q = np.asarray(Q, dtype=float)
        strength = self.chain_strength
        if strength is None:
            strength = 10.0 * math.ceil(float(np.abs(Q).max()))
        try:
            sampler = EmbeddingComposite(DWaveSampler(token=token, solver=self.solver))
            sampleset = sampler.sample(to_bqm(Q), num_reads=num_reads, chain_strength=strength, label="hepbench-qsvr")
            return _as_arrays(sampleset, len(Q))
        except Exception as e:  # the client's messages might echo the token: scrub it, drop the chain
            message = str(e).replace(token, "<DWAVE_API_TOKEN>")
            raise SamplerUnavailable(f"sampler 'dwave' failed: {type(e).__name__}: {message}") from None


def make_sampler(name_or_object="simulated"):
    """A sampler from its name ('simulated', 'exact', 'dwave') or any object with a `sample` method."""
    if isinstance(name_or_object, str):
        name = choice("sampler", name_or_object, SAMPLERS)
        return {"simulated": SimulatedAnnealing, "exact": Exact, "dwave": DWave}[name]()
    if callable(getattr(name_or_object, "sample", None)):
        return name_or_object
    raise ParameterError(
        f"sampler must be one of {', '.join(SAMPLERS)} or an object with a sample() method; got {name_or_object!r}"
    )
