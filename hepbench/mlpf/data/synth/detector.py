"""A CMS-like fast detector: particles → tracks and calorimeter towers, with gen and PF targets.

Tracks: charged particles within |eta| < 2.5, with pT-dependent efficiency and resolution; their
outer position is where the helix in the 3.8 T field meets the calorimeter. Towers: every
particle that reaches the calorimeter deposits into an eta-phi grid out to |eta| = 5 with an
electromagnetic and a hadronic part, smeared with calorimeter resolution and cut at thresholds.
Targets follow the reference rules: a track's target is the particle that made it; a tower's
target sums the particles in it that left no track, takes its class from the most energetic one
and drops neutral hadrons below 9 GeV. ycand imitates rule-based particle flow.
"""

from __future__ import annotations

import numpy as np

from hepbench.mlpf.data.delphes import Event
from hepbench.mlpf.data.format import (
    NEUTRAL_HADRON_MIN_ENERGY,
    NUM_X_FEATURES,
    NUM_Y_FEATURES,
    ElementType,
    ParticleClass,
    TowerCol,
    TrackCol,
    XCol,
    YCol,
)
from hepbench.mlpf.data.synth import physics as ph

B_FIELD = 3.8  # T
CALO_RADIUS = 1.29  # m, barrel calorimeter front face
CALO_Z = 3.15  # m, endcap front face
FORWARD_Z = 11.15  # m, forward calorimeter
TRACKER_ETA = 2.5
CALO_ETA = 5.0
ENDCAP_ETA = 3.0


def _tower_edges() -> np.ndarray:
    barrel = np.arange(0, 21) * 0.087  # 0 … 1.74
    endcap = np.array([1.83, 1.93, 2.043, 2.172, 2.322, 2.5, 2.65, 2.868, 3.0])
    forward = np.linspace(3.0, CALO_ETA, 12)[1:]
    positive = np.concatenate([barrel, endcap, forward])
    return np.concatenate([-positive[:0:-1], positive])


TOWER_ETA_EDGES = _tower_edges()
TOWER_ETA_CENTERS = 0.5 * (TOWER_ETA_EDGES[1:] + TOWER_ETA_EDGES[:-1])
# 5° cells up to |eta| = 1.74, 10° beyond, as in CMS.
TOWER_PHI_BINS = np.where(np.abs(TOWER_ETA_CENTERS) < 1.74, 72, 36)
_CELL_OFFSET = np.concatenate([[0], np.cumsum(TOWER_PHI_BINS)])
NUM_CELLS = int(_CELL_OFFSET[-1])
CELL_ETA = np.repeat(TOWER_ETA_CENTERS, TOWER_PHI_BINS)
CELL_PHI = np.concatenate([-np.pi + (np.arange(n) + 0.5) * 2 * np.pi / n for n in TOWER_PHI_BINS])
CELL_FORWARD = np.abs(CELL_ETA) > ENDCAP_ETA

# Calorimeter resolution sigma/E = sqrt(a^2/E + b^2) and thresholds (GeV), per part and region.
EM_RES = {False: (0.07, 0.007), True: (2.8, 0.11)}
HAD_RES = {False: (1.0, 0.05), True: (2.7, 0.13)}
EM_THRESHOLD = 0.5
HAD_THRESHOLD = 1.0
PF_NEUTRAL_THRESHOLD = 1.0


def _calo_hit(pt, eta, vz):
    """Transverse radius and z where a straight line from (0, vz) meets the calorimeter."""
    sinh = np.sinh(eta)
    z_face = np.where(np.abs(eta) > ENDCAP_ETA, FORWARD_Z, CALO_Z) * np.sign(sinh)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_end = np.where(sinh != 0, (z_face - vz) / sinh, np.inf)
    radius = np.minimum(CALO_RADIUS, np.abs(r_end))
    return radius, vz + radius * sinh


def _smear(rng, energy, a, b):
    """Log-normal smearing: positive energies with relative width sqrt(a^2/E + b^2)."""
    rel2 = a**2 / np.maximum(energy, 1e-9) + b**2
    s2 = np.log1p(rel2)
    return energy * np.exp(rng.normal(size=energy.shape) * np.sqrt(s2) - 0.5 * s2)


def _track_efficiency(pt, eta, species):
    barrel = np.abs(eta) < 1.5
    eff = np.where(pt < 0.5, 0.0, np.where(pt < 1.0, np.where(barrel, 0.70, 0.60), np.where(barrel, 0.95, 0.85)))
    leptons = (species == ph.ELECTRON) | (species == ph.MUON)
    return np.where(leptons & (pt >= 0.5), np.maximum(eff, 0.97), eff)


def _cell_index(eta, phi):
    eta_bin = np.clip(np.searchsorted(TOWER_ETA_EDGES, eta) - 1, 0, len(TOWER_ETA_CENTERS) - 1)
    nphi = TOWER_PHI_BINS[eta_bin]
    phi_bin = np.floor((phi + np.pi) / (2 * np.pi) * nphi).astype(np.int64) % nphi
    return _CELL_OFFSET[eta_bin] + phi_bin


def _y_rows(cls, charge, pt, eta, phi, energy):
    y = np.zeros((len(cls), NUM_Y_FEATURES), np.float64)
    y[:, YCol.TYPE] = cls
    y[:, YCol.CHARGE] = charge
    y[:, YCol.PT] = pt
    y[:, YCol.ETA] = eta
    y[:, YCol.SIN_PHI] = np.sin(phi)
    y[:, YCol.COS_PHI] = np.cos(phi)
    y[:, YCol.ENERGY] = energy
    return y


def simulate(rng: np.random.Generator, p: ph.Particles) -> Event:
    """Detector response and targets of one bunch crossing."""
    energy = p.energy
    charged = p.charge != 0
    visible = p.species != ph.NEUTRINO

    # Propagation: a charged particle bends by asin(R / 2r) with r = pT / (0.3 B); it reaches the
    # calorimeter only if its helix diameter exceeds the radius it must cross.
    radius, z_hit = _calo_hit(p.pt, p.eta, p.vz)
    curvature_radius = p.pt / (0.3 * B_FIELD)
    ratio = radius / (2 * np.maximum(curvature_radius, 1e-9))
    reaches = visible & (~charged | (ratio < 1.0))
    phi_out = ph.wrap_phi(p.phi - p.charge * np.arcsin(np.minimum(ratio, 1.0)))
    eta_out = np.arcsinh(z_hit / radius)

    # --- tracks
    has_track = (
        charged & (np.abs(p.eta) < TRACKER_ETA) & (rng.random(len(p)) < _track_efficiency(p.pt, p.eta, p.species))
    )
    t = np.flatnonzero(has_track)
    t_pt, t_eta = p.pt[t], p.eta[t]
    rel = np.where(np.abs(t_eta) < 1.5, 0.006 + 2e-4 * t_pt, 0.012 + 4e-4 * t_pt)
    reco_pt = t_pt * np.maximum(1 + rel * rng.normal(size=len(t)), 0.05)
    reco_eta = t_eta + rng.normal(0, 0.001, len(t))
    reco_phi = ph.wrap_phi(p.phi[t] + rng.normal(0, 0.001, len(t)))
    X_trk = np.zeros((len(t), NUM_X_FEATURES))
    X_trk[:, XCol.TYPE] = ElementType.TRACK
    X_trk[:, XCol.PT] = reco_pt
    X_trk[:, XCol.ETA] = reco_eta
    X_trk[:, XCol.SIN_PHI] = np.sin(reco_phi)
    X_trk[:, XCol.COS_PHI] = np.cos(reco_phi)
    X_trk[:, XCol.ENERGY] = reco_pt * np.cosh(reco_eta)
    X_trk[:, TrackCol.ETA_OUTER] = eta_out[t]
    X_trk[:, TrackCol.SIN_PHI_OUTER] = np.sin(phi_out[t])
    X_trk[:, TrackCol.COS_PHI_OUTER] = np.cos(phi_out[t])
    X_trk[:, TrackCol.CHARGE] = p.charge[t]
    X_trk[:, TrackCol.IS_GEN_MUON] = p.species[t] == ph.MUON
    X_trk[:, TrackCol.IS_GEN_ELECTRON] = p.species[t] == ph.ELECTRON
    ygen_trk = _y_rows(ph.CLASS[p.species[t]], p.charge[t], t_pt, t_eta, p.phi[t], energy[t])

    # --- calorimeter: electromagnetic fraction per particle, then sums per cell
    d = np.flatnonzero(reaches & (np.abs(eta_out) < CALO_ETA))
    sp = p.species[d]
    em_frac = np.where((sp == ph.PHOTON) | (sp == ph.ELECTRON), 1.0, rng.beta(1.5, 3.5, len(d)))
    deposit = np.where(sp == ph.MUON, np.minimum(energy[d], 1.5), energy[d])  # muons: a MIP
    em_frac = np.where(sp == ph.MUON, 0.0, em_frac)
    cell = _cell_index(eta_out[d], phi_out[d])
    e_em = np.bincount(cell, deposit * em_frac, NUM_CELLS)
    e_had = np.bincount(cell, deposit * (1 - em_frac), NUM_CELLS)
    hit = np.flatnonzero((e_em > 0) | (e_had > 0))
    fwd = CELL_FORWARD[hit]
    em = np.zeros(len(hit))
    had = np.zeros(len(hit))
    for region in (False, True):
        sel = fwd == region
        em[sel] = _smear(rng, e_em[hit][sel], *EM_RES[region])
        had[sel] = _smear(rng, e_had[hit][sel], *HAD_RES[region])
    em = np.where(em > EM_THRESHOLD, em, 0.0)
    had = np.where(had > HAD_THRESHOLD, had, 0.0)
    keep = (em + had) > 0
    towers, em, had = hit[keep], em[keep], had[keep]
    tower_e = em + had
    eta_c, phi_c = CELL_ETA[towers], CELL_PHI[towers]
    X_twr = np.zeros((len(towers), NUM_X_FEATURES))
    X_twr[:, XCol.TYPE] = ElementType.TOWER
    X_twr[:, XCol.PT] = tower_e / np.cosh(eta_c)
    X_twr[:, XCol.ETA] = eta_c
    X_twr[:, XCol.SIN_PHI] = np.sin(phi_c)
    X_twr[:, XCol.COS_PHI] = np.cos(phi_c)
    X_twr[:, XCol.ENERGY] = tower_e
    X_twr[:, TowerCol.E_EM] = em
    X_twr[:, TowerCol.E_HAD] = had

    # Row of each cell among the towers (-1: no tower there).
    row_of_cell = np.full(NUM_CELLS, -1)
    row_of_cell[towers] = np.arange(len(towers))

    ygen_twr = _tower_targets(p, energy, d, cell, has_track[d], row_of_cell, len(towers))
    track_cell = np.where(reaches[t], _cell_index(eta_out[t], phi_out[t]), -1)  # -1: loops before the calorimeter
    ycand_twr = _tower_candidates(X_twr, row_of_cell, track_cell, X_trk[:, XCol.ENERGY])
    ycand_trk = _track_candidates(rng, p.species[t], p.charge[t], reco_pt, reco_eta, reco_phi)

    X = np.concatenate([X_twr, X_trk]).astype(np.float32)
    ygen = np.concatenate([ygen_twr, ygen_trk]).astype(np.float32)
    ycand = np.concatenate([ycand_twr, ycand_trk]).astype(np.float32)
    return Event(X, ygen, ycand)


def _tower_targets(p, energy, d, cell, tracked, row_of_cell, num_towers):
    """Sum the untracked particles of each tower; class of the most energetic; drop soft neutral hadrons."""
    y = np.zeros((num_towers, NUM_Y_FEATURES))
    sel = ~tracked & (row_of_cell[cell] >= 0)
    idx, rows = d[sel], row_of_cell[cell[sel]]
    if len(idx) == 0:
        return y
    e = energy[idx]
    px = np.bincount(rows, p.pt[idx] * np.cos(p.phi[idx]), num_towers)
    py = np.bincount(rows, p.pt[idx] * np.sin(p.phi[idx]), num_towers)
    pz = np.bincount(rows, p.pt[idx] * np.sinh(p.eta[idx]), num_towers)
    e_sum = np.bincount(rows, e, num_towers)
    order = np.lexsort((e, rows))  # by row, most energetic last
    last = np.flatnonzero(np.r_[rows[order][1:] != rows[order][:-1], True])
    lead = idx[order[last]]
    lead_rows = rows[order[last]]
    cls = np.zeros(num_towers, np.int64)
    charge = np.zeros(num_towers)
    cls[lead_rows] = ph.CLASS[p.species[lead]]
    charge[lead_rows] = p.charge[lead]
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pt), where=pt > 0))
    phi = np.arctan2(py, px)
    y = _y_rows(cls, charge, pt, eta, phi, e_sum)
    drop = (cls == ParticleClass.NONE) | ((cls == ParticleClass.NEUTRAL_HADRON) & (e_sum < NEUTRAL_HADRON_MIN_ENERGY))
    y[drop] = 0.0
    return y


def _tower_candidates(X_twr, row_of_cell, track_cell, track_p):
    """Rule-based PF: the tower energy not explained by the tracks pointing at it is a neutral."""
    rows = np.where(track_cell >= 0, row_of_cell[np.maximum(track_cell, 0)], -1)
    ok = rows >= 0
    expected = np.bincount(rows[ok], track_p[ok], len(X_twr))
    residual = X_twr[:, XCol.ENERGY] - expected
    eta, phi = X_twr[:, XCol.ETA], np.arctan2(X_twr[:, XCol.SIN_PHI], X_twr[:, XCol.COS_PHI])
    photon = X_twr[:, TowerCol.E_EM] > X_twr[:, TowerCol.E_HAD]
    cls = np.where(photon, ParticleClass.PHOTON, ParticleClass.NEUTRAL_HADRON)
    y = _y_rows(cls, 0.0, residual / np.cosh(eta), eta, phi, residual)
    y[residual <= PF_NEUTRAL_THRESHOLD] = 0.0
    return y


def _track_candidates(rng, species, charge, pt, eta, phi):
    """Every track is a charged candidate; identified leptons become electrons or muons."""
    cls = np.full(len(species), int(ParticleClass.CHARGED_HADRON))
    cls[(species == ph.ELECTRON) & (rng.random(len(species)) < 0.9)] = ParticleClass.ELECTRON
    cls[(species == ph.MUON) & (rng.random(len(species)) < 0.95)] = ParticleClass.MUON
    mass = np.select(
        [cls == ParticleClass.ELECTRON, cls == ParticleClass.MUON],
        [ph.MASS[ph.ELECTRON], ph.MASS[ph.MUON]],
        ph.MASS[ph.PI],
    )
    energy = np.hypot(pt * np.cosh(eta), mass)
    return _y_rows(cls, charge, pt, eta, phi, energy)
