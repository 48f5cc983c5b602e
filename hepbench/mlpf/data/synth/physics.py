"""Particle-level event generation: a hard process (ttbar or QCD dijet) plus Poisson pile-up.

This is a fast, physically motivated stand-in for Pythia8, not a replacement: top-quark pairs
decay through real two-body kinematics (t → bW, W → qq' or lν), partons fragment into hadrons
with a leading-particle momentum spectrum and limited transverse momentum, and each pile-up
interaction adds a negative-binomial number of soft particles with a Tsallis pT spectrum,
flat in pseudorapidity. Output: flat arrays, one entry per final-state particle.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from hepbench.mlpf.data.format import ParticleClass

# Final-state species: (PDG id, mass / GeV, charged, particle class)
SPECIES = (
    (211, 0.13957, True, ParticleClass.CHARGED_HADRON),
    (321, 0.49368, True, ParticleClass.CHARGED_HADRON),
    (2212, 0.93827, True, ParticleClass.CHARGED_HADRON),
    (22, 0.0, False, ParticleClass.PHOTON),
    (130, 0.49761, False, ParticleClass.NEUTRAL_HADRON),
    (2112, 0.93957, False, ParticleClass.NEUTRAL_HADRON),
    (11, 0.000511, True, ParticleClass.ELECTRON),
    (13, 0.10566, True, ParticleClass.MUON),
    (12, 0.0, False, ParticleClass.NONE),  # neutrinos: invisible
)
PI, KAON, PROTON, PHOTON, K0L, NEUTRON, ELECTRON, MUON, NEUTRINO = range(len(SPECIES))
MASS = np.array([s[1] for s in SPECIES])
IS_CHARGED = np.array([s[2] for s in SPECIES])
CLASS = np.array([int(s[3]) for s in SPECIES])

# Hadron composition (π0 → γγ shows up as photons); jets are a little richer in kaons/baryons.
_HADRONS = np.array([PI, KAON, PROTON, PHOTON, K0L, NEUTRON])
JET_FRACTIONS = np.array([0.56, 0.10, 0.05, 0.22, 0.035, 0.035])
MINBIAS_FRACTIONS = np.array([0.60, 0.08, 0.04, 0.22, 0.03, 0.03])

MEAN_PILEUP = 200
# Particles per minimum-bias interaction over |eta| < MINBIAS_ETA_MAX (negative binomial).
MINBIAS_MEAN_PARTICLES = 125.0
MINBIAS_NB_K = 2.0
MINBIAS_ETA_MAX = 6.0
BEAMSPOT_SIGMA_Z = 0.045  # m

M_TOP, M_W, M_B = 172.5, 80.38, 4.8
M_TAU = 1.777


@dataclass
class Particles:
    species: np.ndarray  # int, index into SPECIES
    charge: np.ndarray  # -1, 0, +1
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    vz: np.ndarray  # production vertex z / m

    @staticmethod
    def concat(parts: list[Particles]) -> Particles:
        return Particles(*(np.concatenate([getattr(p, f) for p in parts]) for f in Particles.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.pt)

    @property
    def energy(self) -> np.ndarray:
        return np.hypot(self.pt * np.cosh(self.eta), MASS[self.species])


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    return (phi + np.pi) % (2 * np.pi) - np.pi


@cache
def _tsallis_table(temperature: float = 0.14, n: float = 6.6, m: float = 0.14):
    """Inverse-CDF table of the Tsallis spectrum dN/dpT ∝ pT (1 + (mT - m)/(nT))^-n."""
    pt = np.concatenate([np.linspace(0.0, 5.0, 2001)[1:], np.geomspace(5.0, 200.0, 400)[1:]])
    mt = np.sqrt(pt**2 + m**2)
    pdf = pt * (1 + (mt - m) / (n * temperature)) ** -n
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(pt))])
    return cdf / cdf[-1], pt


def sample_soft_pt(rng: np.random.Generator, size: int) -> np.ndarray:
    cdf, pt = _tsallis_table()
    return np.interp(rng.random(size), cdf, pt)


def _charges(rng: np.random.Generator, species: np.ndarray) -> np.ndarray:
    return np.where(IS_CHARGED[species], rng.choice([-1, 1], size=len(species)), 0)


def pileup(rng: np.random.Generator, mean: float = MEAN_PILEUP, extra_vertices: np.ndarray | None = None) -> Particles:
    """Soft particles of Poisson(mean) interactions (+ the underlying event at `extra_vertices`)."""
    vertices = rng.normal(0.0, BEAMSPOT_SIGMA_Z, size=rng.poisson(mean))
    if extra_vertices is not None:
        vertices = np.concatenate([extra_vertices, vertices])
    # Gamma–Poisson mixture = negative binomial multiplicity per interaction.
    lam = rng.gamma(MINBIAS_NB_K, MINBIAS_MEAN_PARTICLES / MINBIAS_NB_K, size=len(vertices))
    counts = rng.poisson(lam)
    n = int(counts.sum())
    species = _HADRONS[rng.choice(len(_HADRONS), size=n, p=MINBIAS_FRACTIONS)]
    return Particles(
        species=species,
        charge=_charges(rng, species),
        pt=sample_soft_pt(rng, n),
        eta=rng.uniform(-MINBIAS_ETA_MAX, MINBIAS_ETA_MAX, size=n),
        phi=rng.uniform(-np.pi, np.pi, size=n),
        vz=np.repeat(vertices, counts),
    )


# ---- four-vectors (E, px, py, pz) for the hard process ----------------------------------------


def four_vector(pt: float, y: float, phi: float, m: float) -> np.ndarray:
    mt = np.hypot(pt, m)
    return np.array([mt * np.cosh(y), pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y)])


def two_body_decay(rng: np.random.Generator, parent: np.ndarray, m1: float, m2: float) -> tuple[np.ndarray, np.ndarray]:
    """Isotropic decay in the parent's rest frame, boosted to the lab."""
    big_m = np.sqrt(max(parent[0] ** 2 - parent[1:] @ parent[1:], (m1 + m2) ** 2 + 1e-9))
    p = np.sqrt((big_m**2 - (m1 + m2) ** 2) * (big_m**2 - (m1 - m2) ** 2)) / (2 * big_m)
    cos_t, phi = rng.uniform(-1, 1), rng.uniform(-np.pi, np.pi)
    sin_t = np.sqrt(1 - cos_t**2)
    direction = np.array([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t])
    d1 = np.concatenate([[np.hypot(p, m1)], p * direction])
    d2 = np.concatenate([[np.hypot(p, m2)], -p * direction])
    return _boost(d1, parent / big_m), _boost(d2, parent / big_m)


def _boost(v: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Boost v from the rest frame of a particle with four-velocity u = p/m to the lab."""
    gamma, gb = u[0], u[1:]
    bp = gb @ v[1:]
    energy = gamma * v[0] + bp
    return np.concatenate([[energy], v[1:] + gb * (v[0] + bp / (gamma + 1))])


def _kinematics(v: np.ndarray) -> tuple[float, float, float]:
    pt = float(np.hypot(v[1], v[2]))
    p = float(np.sqrt(v[1:] @ v[1:]))
    eta = float(np.arctanh(np.clip(v[3] / max(p, 1e-12), -0.999999999, 0.999999999)))
    return pt, eta, float(np.arctan2(v[2], v[1]))


# ---- partons to particles ---------------------------------------------------------------------


def fragment(rng: np.random.Generator, parton: np.ndarray, vz: float, heavy: bool = False) -> Particles:
    """Fragment a parton into collinear hadrons with a leading-particle spectrum."""
    pt, eta, phi = _kinematics(parton)
    energy = float(parton[0])
    n = 1 + rng.poisson(3.2 * np.log1p(energy / 2.0))
    species = _HADRONS[rng.choice(len(_HADRONS), size=n, p=JET_FRACTIONS)]
    if heavy and rng.random() < 0.2:  # semileptonic b decay: a soft lepton and a neutrino
        species = np.concatenate([species, [rng.choice([ELECTRON, MUON]), NEUTRINO]])
    z = rng.dirichlet(np.full(len(species), 0.7))
    # The angular spread in (eta, phi) is kT / pT: soft particles spread wide, leading ones stay close.
    dr = np.minimum(rng.exponential(0.45, size=len(species)) / np.maximum(z * pt, 1e-3), 1.0)
    psi = rng.uniform(-np.pi, np.pi, size=len(species))
    return Particles(
        species=species,
        charge=_charges(rng, species),
        pt=z * pt,
        eta=eta + dr * np.cos(psi),
        phi=wrap_phi(phi + dr * np.sin(psi)),
        vz=np.full(len(species), vz),
    )


def _lepton(rng: np.random.Generator, v: np.ndarray, species: int, vz: float) -> Particles:
    pt, eta, phi = _kinematics(v)
    charge = _charges(rng, np.array([species]))
    return Particles(np.array([species]), charge, np.array([pt]), np.array([eta]), np.array([phi]), np.array([vz]))


def _tau(rng: np.random.Generator, v: np.ndarray, vz: float) -> Particles:
    """τ decays: 35 % leptonic (e/μ + neutrinos), else 1 or 3 prongs with photons."""
    pt, eta, phi = _kinematics(v)
    if rng.random() < 0.35:
        species = np.array([rng.choice([ELECTRON, MUON]), NEUTRINO])
    else:
        prongs = 1 if rng.random() < 0.75 else 3
        species = np.array([PI] * prongs + [PHOTON] * rng.integers(0, 3) + [NEUTRINO])
    z = rng.dirichlet(np.ones(len(species)))
    return Particles(
        species=species,
        charge=_charges(rng, species),
        pt=z * pt,
        eta=eta + rng.normal(0, 0.03, len(species)),
        phi=wrap_phi(phi + rng.normal(0, 0.03, len(species))),
        vz=np.full(len(species), vz),
    )


def _w_decay(rng: np.random.Generator, w: np.ndarray, vz: float) -> list[Particles]:
    r = rng.random()
    if r < 6 / 9:  # hadronic
        q1, q2 = two_body_decay(rng, w, 0.0, 0.0)
        return [fragment(rng, q1, vz), fragment(rng, q2, vz)]
    lepton, nu = two_body_decay(rng, w, 0.0, 0.0)
    neutrino = _lepton(rng, nu, NEUTRINO, vz)
    if r < 7 / 9:
        return [_lepton(rng, lepton, ELECTRON, vz), neutrino]
    if r < 8 / 9:
        return [_lepton(rng, lepton, MUON, vz), neutrino]
    return [_tau(rng, lepton, vz), neutrino]


def ttbar(rng: np.random.Generator, vz: float) -> Particles:
    pt1 = rng.gamma(2.0, 55.0)
    phi1 = rng.uniform(-np.pi, np.pi)
    pt2 = max(1.0, pt1 + rng.normal(0, 25.0))  # recoil against initial-state radiation
    phi2 = phi1 + np.pi + rng.normal(0, 0.3)
    y1 = rng.normal(0, 1.0)
    y2 = rng.normal(0.3 * y1, 1.0)
    parts = []
    for pt, y, phi in ((pt1, y1, phi1), (pt2, y2, phi2)):
        b, w = two_body_decay(rng, four_vector(pt, y, phi, M_TOP), M_B, M_W)
        parts.append(fragment(rng, b, vz, heavy=True))
        parts.extend(_w_decay(rng, w, vz))
    return Particles.concat(parts)


def qcd_dijet(rng: np.random.Generator, vz: float, pt_min: float = 20.0, power: float = 4.5) -> Particles:
    """Two back-to-back partons with a falling pT-hat spectrum, sometimes a third (radiated) jet."""
    pt_hat = pt_min * (1 - rng.random()) ** (-1 / (power - 1))  # dN/dpT ∝ pT^-power
    phi = rng.uniform(-np.pi, np.pi)
    y1, y2 = rng.normal(0, 1.6, size=2)
    jets = [four_vector(pt_hat, y1, phi, 0.0), four_vector(pt_hat * rng.uniform(0.8, 1.0), y2, phi + np.pi, 0.0)]
    if rng.random() < 0.3:
        jets.append(four_vector(pt_hat * rng.uniform(0.1, 0.4), rng.normal(0, 2.0), rng.uniform(-np.pi, np.pi), 0.0))
    return Particles.concat([fragment(rng, j, vz, heavy=rng.random() < 0.05) for j in jets])


HARD_PROCESSES = {"ttbar": ttbar, "qcd": qcd_dijet}


def generate_particles(rng: np.random.Generator, process: str, mean_pileup: float = MEAN_PILEUP) -> Particles:
    """All final-state particles of one bunch crossing: hard process, its underlying event, pile-up."""
    vz = rng.normal(0.0, BEAMSPOT_SIGMA_Z)
    hard = HARD_PROCESSES[process](rng, vz)
    return Particles.concat([hard, pileup(rng, mean_pileup, extra_vertices=np.array([vz]))])
