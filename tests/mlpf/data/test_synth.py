"""The generator: determinism, the published format, and the physics it promises."""

from __future__ import annotations

import numpy as np
import pytest

import hepbench.mlpf.data.synth as synth
from hepbench.mlpf.data.delphes import read_file
from hepbench.mlpf.data.format import (
    CHARGED_CLASSES,
    NEUTRAL_HADRON_MIN_ENERGY,
    ElementType,
    ParticleClass,
    TowerCol,
    TrackCol,
    XCol,
    YCol,
    parse_name,
)
from hepbench.mlpf.data.synth import generate_event
from hepbench.mlpf.data.synth.physics import wrap_phi


@pytest.fixture(scope="module")
def ttbar_events():
    rng = np.random.default_rng(7)
    return [generate_event(rng, "ttbar") for _ in range(12)]


@pytest.fixture
def small_files(monkeypatch):
    # Files of 2 events keep the file-level logic (naming, splitting, seeding) fast to test.
    monkeypatch.setattr(synth, "EVENTS_PER_FILE", 2)


def _bytes(paths):
    return [p.read_bytes() for p in paths]


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path, small_files):
    a = synth.synthesize("qcd", 3, seed=5, out_dir=tmp_path / "a")
    b = synth.synthesize("qcd", 3, seed=5, out_dir=tmp_path / "b")
    c = synth.synthesize("qcd", 3, seed=6, out_dir=tmp_path / "c")
    assert [p.name for p in a] == [p.name for p in b]
    assert _bytes(a) == _bytes(b)
    assert _bytes(a)[0] != _bytes(c)[0]


def test_parallel_jobs_give_the_same_bytes(tmp_path, small_files):
    calls = []
    serial = synth.synthesize("ttbar", 5, seed=3, out_dir=tmp_path / "serial")
    parallel = synth.synthesize(
        "ttbar", 5, seed=3, out_dir=tmp_path / "parallel", jobs=2, progress=lambda path, n: calls.append((path, n))
    )
    assert _bytes(serial) == _bytes(parallel)
    assert calls == list(zip(parallel, [2, 2, 1]))  # one call per finished file, in order


def test_files_are_named_synthetic_and_hold_valid_events(tmp_path, small_files):
    paths = synth.synthesize("ttbar", 5, seed=1, out_dir=tmp_path)
    assert [len(read_file(p)) for p in paths] == [2, 2, 1]
    names = [parse_name(p.name) for p in paths]
    assert all(n.synthetic and n.process == "ttbar" for n in names)
    assert [p.name for p in paths] == [f"synth_tev14_pythia8_ttbar_s1_{i}.pkl.bz2" for i in range(3)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no temporaries


def test_default_files_hold_100_events(tmp_path):
    paths = synth.synthesize("qcd", 1, seed=0, out_dir=tmp_path)
    assert len(paths) == 1 and synth.EVENTS_PER_FILE == 100


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"process": "wjets"}, "unknown process"),
        ({"events": 0}, "must be positive"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"jobs": 0}, "jobs must be positive"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    args = {"process": "ttbar", "events": 1, "seed": 0, "out_dir": tmp_path} | kwargs
    with pytest.raises(ValueError, match=message):
        synth.synthesize(**args)
    assert list(tmp_path.iterdir()) == []


def test_multiplicity_and_both_element_types(ttbar_events):
    n = np.array([e.num_elements for e in ttbar_events])
    assert 4000 <= n.mean() <= 6000
    for e in ttbar_events:
        types = set(np.unique(e.X[:, XCol.TYPE]))
        assert types == {ElementType.TOWER, ElementType.TRACK}


def test_pileup_makes_most_of_the_event():
    rng = np.random.default_rng(1)
    quiet = [generate_event(rng, "ttbar", mean_pileup=0).num_elements for _ in range(5)]
    assert np.mean(quiet) < 600


def _split(e):
    trk = e.X[:, XCol.TYPE] == ElementType.TRACK
    return trk, ~trk


def test_tracks(ttbar_events):
    for e in ttbar_events:
        trk, _ = _split(e)
        X = e.X[trk]
        assert np.all(np.abs(X[:, XCol.ETA]) < 2.51)
        assert np.all(X[:, XCol.PT] > 0)
        np.testing.assert_allclose(X[:, XCol.ENERGY], X[:, XCol.PT] * np.cosh(X[:, XCol.ETA]), rtol=1e-5)
        assert set(np.unique(X[:, TrackCol.CHARGE])) <= {-1.0, 1.0}
        np.testing.assert_allclose(X[:, XCol.SIN_PHI] ** 2 + X[:, XCol.COS_PHI] ** 2, 1.0, rtol=1e-5)
        # A track's target is the charged particle that made it.
        y = e.ygen[trk]
        assert np.all(np.isin(y[:, YCol.TYPE], [int(c) for c in CHARGED_CLASSES]))
        np.testing.assert_array_equal(y[:, YCol.CHARGE], X[:, TrackCol.CHARGE])
        np.testing.assert_allclose(y[:, YCol.PT], X[:, XCol.PT], rtol=0.2)


def test_tracks_bend_with_charge_in_the_field(ttbar_events):
    X = np.concatenate([e.X[_split(e)[0]] for e in ttbar_events])
    phi = np.arctan2(X[:, XCol.SIN_PHI], X[:, XCol.COS_PHI])
    phi_out = np.arctan2(X[:, TrackCol.SIN_PHI_OUTER], X[:, TrackCol.COS_PHI_OUTER])
    bend = wrap_phi(phi_out - phi) * X[:, TrackCol.CHARGE]
    soft, hard = X[:, XCol.PT] < 1.0, X[:, XCol.PT] > 5.0
    assert np.all(bend <= 1e-3)  # one sign per charge
    assert np.mean(-bend[soft]) > 5 * np.mean(-bend[hard])  # soft tracks bend more


def test_towers(ttbar_events):
    for e in ttbar_events:
        _, twr = _split(e)
        X = e.X[twr]
        assert np.all(np.abs(X[:, XCol.ETA]) < 5.0)
        np.testing.assert_allclose(X[:, XCol.ENERGY], X[:, TowerCol.E_EM] + X[:, TowerCol.E_HAD], rtol=1e-5)
        np.testing.assert_allclose(X[:, XCol.PT], X[:, XCol.ENERGY] / np.cosh(X[:, XCol.ETA]), rtol=1e-4)
        assert np.all(X[:, 8:] == 0)
        # Towers reach beyond the tracker, where only the calorimeter sees particles.
        assert np.any(np.abs(X[:, XCol.ETA]) > 3.0)
        y = e.ygen[twr]
        soft_neutral = (y[:, YCol.TYPE] == ParticleClass.NEUTRAL_HADRON) & (
            y[:, YCol.ENERGY] < NEUTRAL_HADRON_MIN_ENERGY
        )
        assert not soft_neutral.any()
        photons = y[:, YCol.TYPE] == ParticleClass.PHOTON
        assert photons.any() and np.all(y[photons, YCol.CHARGE] == 0)


def test_targets_are_zero_rows_or_particles(ttbar_events):
    for e in ttbar_events:
        for y in (e.ygen, e.ycand):
            none = y[:, YCol.TYPE] == ParticleClass.NONE
            assert np.all(y[none] == 0)
            assert np.all(y[~none, YCol.ENERGY] > 0)
            np.testing.assert_allclose(y[~none, YCol.SIN_PHI] ** 2 + y[~none, YCol.COS_PHI] ** 2, 1.0, rtol=1e-4)
            charged = np.isin(y[:, YCol.TYPE], [int(c) for c in CHARGED_CLASSES])
            assert set(np.unique(np.abs(y[charged, YCol.CHARGE]))) <= {1.0}
            assert np.all(y[~charged, YCol.CHARGE] == 0)


def test_class_mix_is_physical(ttbar_events):
    cls = np.concatenate([e.ygen[:, YCol.TYPE] for e in ttbar_events]).astype(int)
    frac = np.bincount(cls, minlength=6) / len(cls)
    assert frac[ParticleClass.CHARGED_HADRON] > frac[ParticleClass.PHOTON] > frac[ParticleClass.NEUTRAL_HADRON] > 0
    # Leptons come from the hard process only (W decays, semileptonic b): rare but present.
    leptons = sum((e.X[:, TrackCol.IS_GEN_ELECTRON] + e.X[:, TrackCol.IS_GEN_MUON]).sum() for e in ttbar_events)
    assert 0 < leptons < 20 * len(ttbar_events)


def test_qcd_differs_from_ttbar():
    rng = np.random.default_rng(3)
    e = generate_event(rng, "qcd")
    assert 3000 < e.num_elements < 7000
