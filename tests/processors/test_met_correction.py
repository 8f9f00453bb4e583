"""mT with the MET corrected like the muons.

A muon whose pT goes from pT_old to pT_new moves the MET by -(pT_new - pT_old) along the muon:
in data for the momentum-scale correction of every muon of the event, in MC for the selected
muons shifted by the momentum-scale variation. The scale payloads here are large (a few %) so
that a raw-MET mT puts events in other mT regions than the corrected one.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import correctionlib
import correctionlib.schemav2 as cs
import hist
import numpy as np
import pytest
import uproot

from corrections import Corrections
from corrections.momentum_scale import scale_corrections
from processors import WLikeProcessor, WMassProcessor
from processors.base import Selected
from processors.wmass import w_axes
from tests.processors.synthetic import write_events

EDGES = np.linspace(-2.4, 2.4, 7)  # 6 momentum-scale regions, eta = 0.3 is in region 3
BIAS = (0.04, -0.03, 0.02, -0.025, 0.03, -0.04)  # data scale bias: factors 1 / (1 + bias)


def scale_payload(bias=BIAS, uncertainty=(0.01,) * 6) -> Corrections:
    """A correctionlib payload with only the momentum-scale correction and uncertainty."""
    table = {"eta_edges": EDGES.tolist(), "data_bias": list(bias), "uncertainty": list(uncertainty)}
    cset = cs.CorrectionSet(schema_version=2, corrections=scale_corrections(table))
    return Corrections(cset.model_dump_json(exclude_unset=True))


def _transverse_mass(pt, phi, met_x, met_y):
    met, met_phi = np.hypot(met_x, met_y), np.arctan2(met_y, met_x)
    return np.sqrt(np.maximum(2 * pt * met * (1 - np.cos(phi - met_phi)), 0.0))


class Recording:
    """Mixin keeping the nominal observables of the last chunk and the ``Selected`` they came
    from."""

    def observables(self, sel, pt):
        obs = super().observables(sel, pt)
        if pt is sel.pt:
            self.seen = (sel, obs)
        return obs


class RecordingW(Recording, WMassProcessor):
    pass


class RecordingWLike(Recording, WLikeProcessor):
    pass


def independent_data(path: Path, payload: Corrections) -> dict[str, ak.Array | np.ndarray]:
    """Corrected muons and MET of a data file, from uproot arrays and correctionlib directly:
    recoil = -(MET_raw + sum of raw muons), MET = -(sum of corrected muons) - recoil."""
    ev = uproot.open(path)["Events"].arrays(library="ak")
    cset = correctionlib.CorrectionSet.from_string(payload.text)
    eta = ak.values_astype(ev.Muon_eta, np.float64)
    phi = ak.values_astype(ev.Muon_phi, np.float64)
    raw = ak.values_astype(ev.Muon_pt, np.float64)
    factor = cset["muon_scale_correction"].evaluate(ak.to_numpy(ak.flatten(eta)))
    pt = ak.unflatten(ak.to_numpy(ak.flatten(raw)) * factor, ak.num(raw))
    met = ak.to_numpy(ev.MET_pt).astype(np.float64)
    met_phi = ak.to_numpy(ev.MET_phi).astype(np.float64)
    recoil_x = -(met * np.cos(met_phi) + ak.to_numpy(ak.sum(raw * np.cos(phi), axis=1)))
    recoil_y = -(met * np.sin(met_phi) + ak.to_numpy(ak.sum(raw * np.sin(phi), axis=1)))
    met_x = -ak.to_numpy(ak.sum(pt * np.cos(phi), axis=1)) - recoil_x
    met_y = -ak.to_numpy(ak.sum(pt * np.sin(phi), axis=1)) - recoil_y
    return {
        "ev": ev,
        "pt": pt,
        "eta": eta,
        "phi": phi,
        "met_x": met_x,
        "met_y": met_y,
        "raw_met_x": met * np.cos(met_phi),
        "raw_met_y": met * np.sin(met_phi),
    }


def w_selection(d: dict) -> dict[str, np.ndarray]:
    """The W selection on the corrected muons: exactly one tight muon, no other loose muon,
    the trigger; the selected muon's kinematics."""
    ev, pt, eta = d["ev"], d["pt"], d["eta"]
    tight = (
        ev.Muon_tightId
        & (abs(ev.Muon_dxy) < 0.05)
        & (abs(ev.Muon_dz) < 0.2)
        & (pt > 15.0)
        & (abs(eta) < 2.4)
    )
    veto = ev.Muon_looseId & (pt > 10.0) & (abs(eta) < 2.4) & ~tight
    passes = (ak.sum(tight, axis=1) == 1) & (ak.sum(veto, axis=1) == 0) & ev.HLT_IsoMu24
    events = np.flatnonzero(ak.to_numpy(passes))

    def first(a):
        return ak.to_numpy(ak.firsts(a[tight][events]))

    return {
        "events": events,
        "pt": first(pt),
        "eta": first(eta),
        "phi": first(d["phi"]),
        "charge": first(ev.Muon_charge),
        "iso": first(ev.Muon_pfRelIso04_all),
    }


def test_data_mt_uses_corrected_met(data_file, load_events):
    payload = scale_payload()
    proc = RecordingW(corrections=payload, variations=False)
    out = proc.process(load_events(data_file, "data", is_data=True))["data"]
    d = independent_data(data_file, payload)
    s = w_selection(d)
    e = s["events"]
    mt = _transverse_mass(s["pt"], s["phi"], d["met_x"][e], d["met_y"][e])

    # per event: the processor's nominal observables
    sel, obs = proc.seen
    np.testing.assert_array_equal(sel.events, e)
    np.testing.assert_allclose(obs[0], s["pt"], rtol=1e-12)
    np.testing.assert_allclose(obs[4], mt, rtol=1e-9, atol=1e-9)

    # the histogram against one filled independently
    def fill(mt_values):
        h = hist.Hist(*w_axes(), storage=hist.storage.Weight())
        h.fill(s["pt"], s["eta"], s["charge"], s["iso"] < 0.15, mt_values)
        return h

    reference = fill(mt)
    got = out["histograms"]["nominal"]
    assert got.axes == reference.axes
    np.testing.assert_array_equal(got.values(), reference.values())
    np.testing.assert_array_equal(got.variances(), reference.variances())
    assert out["events_selected"] == reference.sum().value > 50

    # the test has teeth: mT with the raw MET fills other mT regions
    raw_mt = _transverse_mass(s["pt"], s["phi"], d["raw_met_x"][e], d["raw_met_y"][e])
    moved = np.sum(
        np.searchsorted([20, 40], mt, side="right") != np.searchsorted([20, 40], raw_mt, "right")
    )
    assert moved >= 3
    assert not np.array_equal(fill(raw_mt).values(), reference.values())


def test_data_wlike_mt_uses_corrected_met(tmp_path, make_sample, load_events):
    path = make_sample(tmp_path / "data.root", 3000, seed=12, is_data=True)
    payload = scale_payload()
    proc = RecordingWLike(corrections=payload, variations=False)
    proc.process(load_events(path, "data", is_data=True))
    d = independent_data(path, payload)
    sel, obs = proc.seen
    assert len(sel) > 5
    e = sel.events
    kept, nu = sel.muon_index[:, 0], sel.muon_index[:, 1]

    def muon(field, index):
        return np.array([d[field][i][j] for i, j in zip(e, index, strict=True)])

    # MET + the "neutrino" muon, both corrected
    fake_x = d["met_x"][e] + muon("pt", nu) * np.cos(muon("phi", nu))
    fake_y = d["met_y"][e] + muon("pt", nu) * np.sin(muon("phi", nu))
    mt = _transverse_mass(muon("pt", kept), muon("phi", kept), fake_x, fake_y)
    np.testing.assert_allclose(obs[0], muon("pt", kept), rtol=1e-12)
    np.testing.assert_allclose(obs[4], mt, rtol=1e-9, atol=1e-9)


def write_w_events(path: Path, muons: list[dict], met: list[tuple[float, float]]) -> Path:
    """An MC file of one muon per event (tight, isolated, prompt-like) and the given MET."""
    n = len(muons)
    fields = {
        "pt": [m["pt"] for m in muons],
        "eta": [m["eta"] for m in muons],
        "phi": [m["phi"] for m in muons],
        "mass": [0.1057] * n,
        "pfRelIso04_all": [0.01] * n,
        "dxy": [0.001] * n,
        "dz": [0.01] * n,
        "charge": [1] * n,
        "tightId": [True] * n,
        "looseId": [True] * n,
    }
    dtypes = {"charge": np.int32, "tightId": bool, "looseId": bool}
    muon = ak.zip(
        {
            k: ak.unflatten(np.asarray(v, dtype=dtypes.get(k, np.float32)), np.ones(n, int))
            for k, v in fields.items()
        }
    )
    branches = {
        "run": np.ones(n, np.uint32),
        "luminosityBlock": np.ones(n, np.uint32),
        "event": np.arange(1, n + 1, dtype=np.uint64),
        "Muon": muon,
        "MET_pt": np.array([m[0] for m in met], np.float32),
        "MET_phi": np.array([m[1] for m in met], np.float32),
        "HLT_IsoMu24": np.ones(n, bool),
        "genWeight": np.ones(n, np.float32),
    }
    return write_events(path, branches)


def test_muon_scale_variation_moves_met(tmp_path, load_events):
    # back to back, mT = 2 sqrt(pT MET): 40 GeV muons, MET 9.9 / 10.3 GeV -> mT 39.8 / 40.6.
    # +1% on the muon: pT 40.4 and MET 10.3 -> mT 40.8 (with the MET left alone: 39.998);
    # -1%: pT 39.6 and MET 9.9 -> mT 39.6 (MET left alone: 40.4).
    muons = [
        {"pt": 40.0, "eta": 0.3, "phi": 0.0},
        {"pt": 40.0, "eta": 0.3, "phi": 0.0},
        {"pt": 40.0, "eta": -1.0, "phi": 0.0},  # another scale region: does not move with eta3
    ]
    met = [(9.9, np.pi), (10.3, np.pi), (9.9, np.pi)]
    path = write_w_events(tmp_path / "w.root", muons, met)
    proc = WMassProcessor(corrections=scale_payload(), variations=["muonScale"])
    out = proc.process(load_events(path, "w", is_data=False))["w"]
    h = out["histograms"]

    def regions(hh):
        return hh.project("mt").values().tolist()

    assert regions(h["nominal"]) == [0, 2, 1]  # mT bins [0, 20), [20, 40), >= 40
    shape = h["muonScale"]
    assert regions(shape[..., "muonScale_eta3Up"]) == [0, 1, 2]  # event 1 crosses 40 GeV
    assert regions(shape[..., "muonScale_eta3Down"]) == [0, 3, 0]  # event 2 crosses 40 GeV
    assert regions(shape[..., "muonScale_eta1Up"]) == [0, 1, 2]  # event 3 crosses 40 GeV
    assert regions(shape[..., "muonScale_eta1Down"]) == [0, 2, 1]
    assert regions(shape[..., "muonScale_eta0Up"]) == regions(h["nominal"])


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_observables_move_met_with_the_muons(sign):
    """The shifted observables of hand-made selections against explicit formulas."""
    rng = np.random.default_rng(5)
    n = 50
    pt = rng.uniform(20, 60, (n, 2))
    phi = rng.uniform(-np.pi, np.pi, (n, 2))
    met_x, met_y = rng.normal(0, 20, n), rng.normal(0, 20, n)

    def selected(k):
        return Selected(
            np.arange(n),
            pt[:, :k],
            np.zeros((n, k)),
            phi[:, :k],
            np.ones((n, k), int),
            np.zeros((n, k)),
            np.ones((n, k), bool),
            np.zeros((n, k), int),
            {"met_x": met_x, "met_y": met_y},
        )

    delta = sign * 0.02 * pt  # shifted minus nominal pT

    # W: the MET moves against the muon
    w = WMassProcessor(variations=False)
    sel = selected(1)
    mt = w.observables(sel, pt[:, :1] + delta[:, :1])[4]
    expect = _transverse_mass(
        pt[:, 0] + delta[:, 0],
        phi[:, 0],
        met_x - delta[:, 0] * np.cos(phi[:, 0]),
        met_y - delta[:, 0] * np.sin(phi[:, 0]),
    )
    np.testing.assert_allclose(mt, expect, rtol=1e-10)
    np.testing.assert_allclose(
        w.observables(sel, sel.pt)[4], _transverse_mass(pt[:, 0], phi[:, 0], met_x, met_y)
    )

    # W-like: MET + neutrino muon is -(kept muon + recoil): the neutrino muon's scale cancels,
    # the kept muon's moves it
    wlike = WLikeProcessor(variations=False)
    sel = selected(2)
    fake_x = met_x + pt[:, 1] * np.cos(phi[:, 1])
    fake_y = met_y + pt[:, 1] * np.sin(phi[:, 1])
    nominal = wlike.observables(sel, sel.pt)[4]
    np.testing.assert_allclose(nominal, _transverse_mass(pt[:, 0], phi[:, 0], fake_x, fake_y))
    nu_shift = pt + np.stack([np.zeros(n), delta[:, 1]], axis=1)
    np.testing.assert_allclose(wlike.observables(sel, nu_shift)[4], nominal, rtol=1e-10)
    kept_shift = pt + np.stack([delta[:, 0], np.zeros(n)], axis=1)
    expect = _transverse_mass(
        pt[:, 0] + delta[:, 0],
        phi[:, 0],
        fake_x - delta[:, 0] * np.cos(phi[:, 0]),
        fake_y - delta[:, 0] * np.sin(phi[:, 0]),
    )
    np.testing.assert_allclose(wlike.observables(sel, kept_shift)[4], expect, rtol=1e-10)
