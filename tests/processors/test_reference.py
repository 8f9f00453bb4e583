"""Processor histograms (nominal and every variation) against an independent reference:
plain uproot arrays, a Python loop over events for the selection and weights, and one
``hist.fill`` per variation.

mT uses the MET corrected like the muons: in data for the scale correction of every muon of the
event, in the momentum-scale variation for the shifted selected muons (a muon going from pT_old
to pT_new moves the MET by -(pT_new - pT_old) along the muon)."""

from __future__ import annotations

import correctionlib
import hist
import numpy as np
import pytest
import uproot

from processors import WLikeProcessor, WMassProcessor, ZDileptonProcessor

PT_MIN, ETA_MAX, DXY, DZ, ISO, VETO_PT = 15.0, 2.4, 0.05, 0.2, 0.15, 10.0


def _bin(edges, x):
    i = int(np.searchsorted(edges, x, side="right")) - 1
    return i if 0 <= i < len(edges) - 1 else -1


def _mt(pt, phi, met, met_phi):
    return np.sqrt(max(2 * pt * met * (1 - np.cos(phi - met_phi)), 0.0))


def _mt_xy(pt, phi, met_x, met_y):
    return _mt(pt, phi, np.hypot(met_x, met_y), np.arctan2(met_y, met_x))


def _moved(met, muons, pts):
    """The MET ``(x, y)`` when ``muons`` get pT ``pts``."""
    x, y = met
    for m, pt in zip(muons, pts, strict=True):
        x -= (pt - m["pt"]) * np.cos(m["phi"])
        y -= (pt - m["pt"]) * np.sin(m["phi"])
    return x, y


class Reference:
    """Per-event loop over plain uproot arrays."""

    def __init__(self, path, corrections_json, truth, is_data=False):
        self.ev = uproot.open(path)["Events"].arrays(library="np")
        self.cset = correctionlib.CorrectionSet.from_file(str(corrections_json))
        self.truth = truth
        self.is_data = is_data

    def muons(self, i):
        e = self.ev
        mus = []
        for j in range(len(e["Muon_pt"][i])):
            raw = pt = float(e["Muon_pt"][i][j])
            eta = float(e["Muon_eta"][i][j])
            if self.is_data:
                pt *= self.cset["muon_scale_correction"].evaluate(eta)
            mus.append(
                dict(
                    pt=pt,
                    raw_pt=raw,
                    eta=eta,
                    phi=float(e["Muon_phi"][i][j]),
                    q=int(e["Muon_charge"][i][j]),
                    iso=float(e["Muon_pfRelIso04_all"][i][j]),
                    tight=bool(e["Muon_tightId"][i][j])
                    and abs(e["Muon_dxy"][i][j]) < DXY
                    and abs(e["Muon_dz"][i][j]) < DZ
                    and pt > PT_MIN
                    and abs(eta) < ETA_MAX,
                    loose=bool(e["Muon_looseId"][i][j]) and pt > VETO_PT and abs(eta) < ETA_MAX,
                )
            )
        return mus

    def met(self, i, mus):
        """The MET ``(x, y)`` corrected for the muon corrections: -(corrected muons + recoil)."""
        met, phi = float(self.ev["MET_pt"][i]), float(self.ev["MET_phi"][i])
        x, y = met * np.cos(phi), met * np.sin(phi)
        recoil_x = -(x + sum(m["raw_pt"] * np.cos(m["phi"]) for m in mus))
        recoil_y = -(y + sum(m["raw_pt"] * np.sin(m["phi"]) for m in mus))
        x = -sum(m["pt"] * np.cos(m["phi"]) for m in mus) - recoil_x
        y = -sum(m["pt"] * np.sin(m["phi"]) for m in mus) - recoil_y
        return x, y

    def select(self, i, n_tight):
        mus = self.muons(i)
        tight = [m for m in mus if m["tight"]]
        veto = [m for m in mus if m["loose"] and not m["tight"]]
        if len(tight) != n_tight or veto or not self.ev["HLT_IsoMu24"][i]:
            return None, mus
        return tight, mus

    def weight(self, i, sel, mus, trig_leg):
        if self.is_data:
            return 1.0, {}
        c, ev = self.cset, self.ev
        w = float(ev["genWeight"][i])
        ntrue = float(ev["Pileup_nTrueInt"][i])
        pu = c["pileup"].evaluate(ntrue, "nominal")
        w *= pu
        sf = {}
        for k, m in enumerate(sel):
            for kind in ("idip", "trigger"):
                if kind == "trigger" and k != trig_leg:
                    continue
                sf[(k, kind)] = c[f"muon_{kind}_sf"].evaluate(m["eta"], m["pt"], "nominal")
                w *= sf[(k, kind)]
        for m in mus:
            w *= 1 - c["muon_prefiring"].evaluate(m["eta"], "nominal")
        var = {
            "pileupUp": w * c["pileup"].evaluate(ntrue, "up") / pu,
            "pileupDown": w * c["pileup"].evaluate(ntrue, "down") / pu,
        }
        eff_edges = self.truth["efficiency"]["eta_edges"]
        for b in range(len(eff_edges) - 1):
            for kind in ("idip", "trigger"):
                for eig in range(3):
                    for d in ("up", "down"):
                        x = w
                        for k, m in enumerate(sel):
                            if (k, kind) in sf and _bin(eff_edges, m["eta"]) == b:
                                x *= c[f"muon_{kind}_sf"].evaluate(
                                    m["eta"], m["pt"], f"eig{eig}_{d}"
                                )
                                x /= sf[(k, kind)]
                        var[f"effStat_eta{b}_{kind}_eig{eig}{d.capitalize()}"] = x
        pre_edges = self.truth["prefiring"]["eta_edges"]
        for b in range(len(pre_edges) - 1):
            for d in ("up", "down"):
                x = w
                for m in mus:
                    if _bin(pre_edges, m["eta"]) == b:
                        p = c["muon_prefiring"].evaluate(m["eta"], "nominal")
                        x *= (1 - c["muon_prefiring"].evaluate(m["eta"], d)) / (1 - p)
                var[f"prefiringStat_eta{b}{d.capitalize()}"] = x
        for name, branch in (("pdf", "LHEPdfWeight"), ("massWeight", "MEParamWeight")):
            for j, r in enumerate(ev[branch][i]):
                label = f"pdf{j}" if name == "pdf" else f"massShift{(j - 10) * 10}MeV"
                var[label] = w * float(r)
        return w, var

    def scale_shifts(self, sel):
        """{label: shifted pTs of the selected muons}"""
        edges = self.truth["momentum_scale"]["eta_edges"]
        out = {}
        for b in range(len(edges) - 1):
            for d, s in (("Up", 1), ("Down", -1)):
                pts = []
                for m in sel:
                    unc = self.cset["muon_scale_uncertainty"].evaluate(m["eta"])
                    pts.append(m["pt"] * (1 + s * unc) if _bin(edges, m["eta"]) == b else m["pt"])
                out[f"muonScale_eta{b}{d}"] = pts
        return out


def _compare(result, reference: dict[str, hist.Hist]):
    for name, ref in reference.items():
        got = result["histograms"][name]
        assert got.axes.name == ref.axes.name, name
        if name != "nominal":
            assert list(got.axes[-1]) == list(ref.axes[-1]), name
        scale = max(np.abs(ref.values()).max(), 1.0)
        np.testing.assert_allclose(
            got.values(), ref.values(), rtol=1e-12, atol=1e-12 * scale, err_msg=name
        )
    np.testing.assert_allclose(
        result["histograms"]["nominal"].variances(),
        reference["nominal"].variances(),
        rtol=1e-12,
        atol=1e-9,
    )


def _reference_fill(proc, rows, variation_axes):
    """rows: list of (values, weight, {label: weight}, {label: values})."""
    axes = proc.axes()
    ref = {"nominal": hist.Hist(*axes, storage=hist.storage.Weight())}
    for name, labels in variation_axes.items():
        ref[name] = hist.Hist(*axes, hist.axis.StrCategory(labels, name=name, overflow=False))
    for vals, w, var, shapes in rows:
        ref["nominal"].fill(*[[v] for v in vals], weight=w)
        for name, labels in variation_axes.items():
            for label in labels:
                if label in shapes:
                    ref[name].fill(*[[v] for v in shapes[label]], [label], weight=w)
                elif label in var:
                    ref[name].fill(*[[v] for v in vals], [label], weight=var[label])
                elif name in ("effStat", "prefiringStat", "muonScale"):
                    ref[name].fill(*[[v] for v in vals], [label], weight=w)
    return ref


def _labels(proc_out, names):
    return {n: list(proc_out["histograms"][n].axes[-1]) for n in names}


VARIATIONS = ("pdf", "massWeight", "pileup", "effStat", "prefiringStat", "muonScale")


@pytest.mark.parametrize("is_data", [False, True])
def test_wmass_matches_reference(is_data, mc_file, data_file, corrections_json, truth, load_events):
    path = data_file if is_data else mc_file
    proc = WMassProcessor(corrections=corrections_json, variations=VARIATIONS)
    out = proc.process(load_events(path, "w"))["w"]
    ref = Reference(path, corrections_json, truth, is_data)
    ev = ref.ev
    rows = []
    for i in range(len(ev["event"])):
        sel, mus = ref.select(i, 1)
        if sel is None:
            continue
        (m,) = sel
        w, var = ref.weight(i, sel, mus, 0)
        met = ref.met(i, mus)

        def values(pt, m=m, met=met):
            mt = _mt_xy(pt, m["phi"], *_moved(met, [m], [pt]))
            return (pt, m["eta"], m["q"], m["iso"] < ISO, mt)

        shapes = {k: values(p[0]) for k, p in ref.scale_shifts(sel).items()}
        rows.append((values(m["pt"]), w, var, shapes))
    names = () if is_data else VARIATIONS
    reference = _reference_fill(proc, rows, _labels(out, names))
    _compare(out, reference)
    assert set(out["histograms"]) == {"nominal", *names}
    assert out["events_read"] == len(ev["event"])
    assert out["events_selected"] > 20
    assert out["events_selected"] == sum(
        1 for vals, *_ in rows if 26 <= vals[0] < 56 and abs(vals[1]) < 2.4
    )
    if is_data:
        assert out["sumw"] == len(ev["event"])
        assert out["lumisections"] == {(1, int(ls)) for ls in np.unique(ev["luminosityBlock"])}
    else:
        assert out["sumw"] == pytest.approx(
            float(ev["genWeight"].astype(np.float64).sum()), rel=1e-12
        )
        assert out["lumisections"] == set()
    assert out["chunks"] == {(str(path), 0, len(ev["event"]))}


def test_z_and_wlike_match_reference(mc_file, corrections_json, truth, load_events):
    names = ("pdf", "effStat", "muonScale")
    for proc in (
        ZDileptonProcessor(corrections=corrections_json, variations=names),
        WLikeProcessor(corrections=corrections_json, variations=names),
    ):
        out = proc.process(load_events(mc_file, "z"))["z"]
        ref = Reference(mc_file, corrections_json, truth)
        ev = ref.ev
        rows = []
        for i in range(len(ev["event"])):
            sel, mus = ref.select(i, 2)
            if sel is None or sel[0]["q"] * sel[1]["q"] >= 0:
                continue
            sel.sort(key=lambda m: -m["pt"])
            if isinstance(proc, ZDileptonProcessor):
                if not all(m["iso"] < ISO for m in sel):
                    continue
                trig = 0

                def values(pts, sel=sel):
                    p = []
                    for pt, m in zip(pts, sel, strict=True):
                        px, py = pt * np.cos(m["phi"]), pt * np.sin(m["phi"])
                        pz = pt * np.sinh(m["eta"])
                        p.append((np.sqrt(px**2 + py**2 + pz**2 + 0.1056583755**2), px, py, pz))
                    e, px, py, pz = (a + b for a, b in zip(*p, strict=True))
                    return (
                        np.sqrt(max(e**2 - px**2 - py**2 - pz**2, 0)),
                        np.hypot(px, py),
                        0.5 * np.log((e + pz) / (e - pz)),
                    )
            else:
                want = 1 if int(ev["event"][i]) % 2 == 1 else -1
                sel = sorted(sel, key=lambda m: m["q"] != want)  # kept muon first
                trig = 0

                met = ref.met(i, mus)

                def values(pts, sel=sel, met=met):
                    k, o = sel
                    mx, my = _moved(met, sel, pts)
                    mx, my = mx + pts[1] * np.cos(o["phi"]), my + pts[1] * np.sin(o["phi"])
                    return (
                        pts[0],
                        k["eta"],
                        k["q"],
                        k["iso"] < ISO,
                        _mt_xy(pts[0], k["phi"], mx, my),
                    )

                mll = _zmass(sel)
                if not (60 < mll < 120) or not sel[1]["iso"] < ISO:
                    continue
            w, var = ref.weight(i, sel, mus, trig)
            shapes = {k: values(p) for k, p in ref.scale_shifts(sel).items()}
            rows.append((values([m["pt"] for m in sel]), w, var, shapes))
        assert len(rows) > 10, type(proc).__name__
        _compare(out, _reference_fill(proc, rows, _labels(out, names)))


def _zmass(sel):
    e = px = py = pz = 0.0
    for m in sel:
        x, y, z = (
            m["pt"] * np.cos(m["phi"]),
            m["pt"] * np.sin(m["phi"]),
            m["pt"] * np.sinh(m["eta"]),
        )
        e += np.sqrt(x * x + y * y + z * z + 0.1056583755**2)
        px, py, pz = px + x, py + y, pz + z
    return np.sqrt(max(e * e - px * px - py * py - pz * pz, 0.0))
