"""The synthetic NanoAOD generator: the physics it must get right, read back from its ROOT files.

W -> mu nu shows a Jacobian peak of the muon pT near m_W/2 and a transverse-mass edge near m_W,
Z -> mu mu peaks at m_Z, QCD muons are non-isolated at low mT, and the files keep the contract
of docs/samples.md (branches, dtypes, weights, bookkeeping, truth, lumi).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import uproot
import yaml

from analysis.generate import generate_samples
from analysis.generate.processes import MW_REF, MZ_REF, PROCESSES
from processors.errors import ConfigError

MU_PT_CUT = 26.0


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    generate_samples(out, events=40_000, seed=3)
    return out


def _spec(sample):
    return yaml.safe_load((sample / "datasets.yaml").read_text())


def _read(sample, dataset, branches):
    spec = _spec(sample)
    files = [str(sample / f) + ":Events" for f in spec["datasets"][dataset]["files"]]
    return uproot.concatenate(files, branches, library="ak")


def _single_muon(arrays, weights=False):
    """Events with exactly one tight muon (|eta| < 2.4, |dxy| < 0.05), pT > 26 GeV, trigger:
    ``(pt, iso, mT)`` of that muon."""
    import awkward as ak

    tight = arrays.Muon_tightId & (abs(arrays.Muon_dxy) < 0.05)
    one = (ak.sum(tight, axis=1) == 1) & (ak.num(arrays.Muon_pt) == 1) & arrays.HLT_IsoMu24
    a = arrays[one]
    pt = ak.to_numpy(a.Muon_pt[:, 0]).astype(float)
    phi = ak.to_numpy(a.Muon_phi[:, 0]).astype(float)
    iso = ak.to_numpy(a.Muon_pfRelIso04_all[:, 0])
    met, met_phi = ak.to_numpy(a.MET_pt).astype(float), ak.to_numpy(a.MET_phi).astype(float)
    mt = np.sqrt(2 * pt * met * (1 - np.cos(phi - met_phi)))
    keep = pt > MU_PT_CUT
    if weights:
        return pt[keep], iso[keep], mt[keep], ak.to_numpy(a.genWeight)[keep].astype(float)
    return pt[keep], iso[keep], mt[keep]


BRANCHES = ["Muon_pt", "Muon_phi", "Muon_tightId", "Muon_dxy", "Muon_pfRelIso04_all"]
EVENT = ["MET_pt", "MET_phi", "HLT_IsoMu24"]


def test_w_muon_pt_has_its_jacobian_peak_near_half_the_w_mass(sample):
    pt, _, _ = _single_muon(_read(sample, "wmunu", BRANCHES + EVENT))
    counts, edges = np.histogram(pt, bins=np.arange(26, 56.1, 1.0))
    peak = edges[np.argmax(counts)] + 0.5
    # the peak sits just below m_W/2 (W pT and the width smear it), then the spectrum collapses
    assert MW_REF / 2 - 3.0 < peak < MW_REF / 2 + 1.0, peak
    above = counts[edges[:-1] >= MW_REF / 2 + 4].max()
    assert above < 0.5 * counts.max()


def test_w_transverse_mass_has_its_edge_near_the_w_mass(sample):
    _, iso, mt = _single_muon(_read(sample, "wmunu", BRANCHES + EVENT))
    counts, edges = np.histogram(mt[iso < 0.15], bins=np.arange(40, 120.1, 2.0))
    centres = 0.5 * (edges[1:] + edges[:-1])
    peak = np.argmax(counts)
    # the Jacobian edge: the distribution rises to just below m_W, then falls; it is halved
    # within the recoil resolution above m_W
    assert MW_REF - 12 < centres[peak] < MW_REF, centres[peak]
    half = centres[peak + np.argmax(counts[peak:] < counts[peak] / 2)]
    assert MW_REF < half < MW_REF + 8, half
    assert np.mean(mt > MW_REF + 15) < 0.05


def test_z_dimuon_mass_peaks_at_the_z_mass(sample):
    import awkward as ak

    a = _read(sample, "zmumu", ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_charge", "Muon_tightId"])
    two = (ak.num(a.Muon_pt) == 2) & (ak.sum(a.Muon_tightId, axis=1) == 2)
    a = a[two & (ak.sum(a.Muon_charge, axis=1) == 0)]
    pt, eta, phi = (ak.to_numpy(x).astype(float) for x in (a.Muon_pt, a.Muon_eta, a.Muon_phi))
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2)
    m = np.sqrt(np.maximum(e.sum(1) ** 2 - px.sum(1) ** 2 - py.sum(1) ** 2 - pz.sum(1) ** 2, 0))
    assert len(m) > 3000
    counts, edges = np.histogram(m, bins=np.arange(80, 102.1, 0.5))
    peak = edges[np.argmax(counts)] + 0.25
    assert abs(peak - MZ_REF) < 1.0, peak
    assert abs(np.median(m[(m > 81) & (m < 101)]) - MZ_REF) < 0.3


def test_qcd_muons_are_non_isolated_at_low_mt_and_w_muons_isolated_at_high_mt(sample):
    _, iso_q, mt_q = _single_muon(_read(sample, "qcd", BRANCHES + EVENT))
    _, iso_w, mt_w = _single_muon(_read(sample, "wmunu", BRANCHES + EVENT))
    assert len(iso_q) > 1000
    assert np.mean(iso_q < 0.15) < 0.25
    assert np.mean(mt_q < 40) > 0.75
    assert np.mean(iso_w < 0.15) > 0.9
    assert np.mean(mt_w > 40) > 0.9
    # isolation and mT only weakly correlated in QCD (the extended ABCD relies on it)
    low, mid = mt_q < 20, (mt_q >= 20) & (mt_q < 40)
    f_low, f_mid = np.mean(iso_q[low] < 0.15), np.mean(iso_q[mid] < 0.15)
    err = np.sqrt(f_low * (1 - f_low) / low.sum() + f_mid * (1 - f_mid) / mid.sum())
    assert abs(f_low - f_mid) < max(4 * err, 0.3 * f_low)


def test_qcd_is_a_few_percent_of_the_signal_region_and_dominates_the_sideband(sample):
    spec = _spec(sample)
    lumi = spec["lumi_pb"]
    yields = {}
    for name in ("wmunu", "qcd"):
        ds = spec["datasets"][name]
        _, iso, mt, w = _single_muon(_read(sample, name, BRANCHES + EVENT + ["genWeight"]), True)
        w = w * ds["xsec_pb"] * lumi / ds["sumw"]
        yields[name] = (w[(iso < 0.15) & (mt > 40)].sum(), w[(iso >= 0.15) & (mt < 20)].sum())
    signal = yields["qcd"][0] / (yields["qcd"][0] + yields["wmunu"][0])
    sideband = yields["qcd"][1] / (yields["qcd"][1] + yields["wmunu"][1])
    assert 0.005 < signal < 0.08, signal
    assert sideband > 0.95, sideband


MC_FLOAT = ["genWeight", "Pileup_nTrueInt", "MET_pt", "MET_phi"]
JAGGED_F4 = ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_pfRelIso04_all", "Muon_dxy"]


def test_files_follow_the_branch_contract(sample):
    mc = uproot.open(sample / "wmunu" / "nano_0.root")["Events"]
    data = uproot.open(sample / "data" / "nano_0.root")["Events"]
    for tree in (mc, data):
        assert tree["run"].typename == "uint32_t"
        assert tree["luminosityBlock"].typename == "uint32_t"
        assert tree["event"].typename == "uint64_t"
        assert tree["nMuon"].typename == "int32_t"
        for b in JAGGED_F4 + ["Muon_dz"]:
            assert tree[b].typename == "float[]", b
        assert tree["Muon_charge"].typename == "int32_t[]"
        for b in ("Muon_tightId", "Muon_mediumId", "Muon_looseId", "Muon_isGlobal"):
            assert tree[b].typename == "bool[]", b
        assert tree["HLT_IsoMu24"].typename == "bool"
        assert tree["PV_npvs"].typename == "int32_t"
    for b in MC_FLOAT:
        assert mc[b].typename == "float", b
    assert mc["Pileup_nPU"].typename == "int32_t"
    for b in ("GenPart_pdgId", "GenPart_status", "GenPart_statusFlags", "GenPart_genPartIdxMother"):
        assert mc[b].typename == "int32_t[]", b
    assert mc["Muon_genPartIdx"].typename == "int32_t[]"
    for counter, n in (("nLHEPdfWeight", 103), ("nLHEScaleWeight", 9), ("nMEParamWeight", 21)):
        assert np.all(mc[counter].array(library="np") == n), counter
    n_muon = np.diff(mc["Muon_pt"].array().layout.offsets.data)
    np.testing.assert_array_equal(mc["nMuon"].array(library="np"), n_muon)
    for b in ("genWeight", "LHEPdfWeight", "MEParamWeight", "GenPart_pt", "Pileup_nTrueInt"):
        assert b not in data, b
    # one basket per 100k-event batch at most
    assert mc["Muon_pt"].num_baskets == 1


def test_weights_nominal_entries_are_one_and_genweight_has_a_few_percent_negative(sample):
    spec = _spec(sample)
    for name in PROCESSES:
        a = _read(sample, name, ["genWeight", "LHEPdfWeight", "LHEScaleWeight", "MEParamWeight"])
        pdf, scale, mass = (
            np.asarray(a[b].to_numpy()) for b in ("LHEPdfWeight", "LHEScaleWeight", "MEParamWeight")
        )
        assert pdf.shape[1] == 103 and scale.shape[1] == 9 and mass.shape[1] == 21
        assert np.all(pdf[:, 0] == 1) and np.all(scale[:, 4] == 1) and np.all(mass[:, 10] == 1)
        gw = a.genWeight.to_numpy()
        assert len(np.unique(np.abs(gw))) == 1  # constant magnitude per process
        assert np.mean(gw < 0) < 0.08
        np.testing.assert_allclose(gw.astype(float).sum(), spec["datasets"][name]["sumw"])
        # shape-changing, few-% effects: spread over events, not a constant
        assert 0.001 < np.std(pdf[:, 1:101]) < 0.05
        assert 0.002 < np.std(scale[:, 0]) < 0.15
        if name.startswith("w"):  # W mass weights: +-100 MeV of Breit-Wigner reweighting
            assert 0.005 < np.std(mass[:, 20]) < 0.2
            assert abs(np.mean(mass[:, 20]) - 1) < 5 * np.std(mass[:, 20]) / np.sqrt(len(mass))
        if name in ("ttbar", "diboson", "qcd"):
            assert np.all(mass == 1)


def test_data_bookkeeping_lumi_and_golden_json(sample):
    from analysis.lumi import integrated_lumi, read_lumi_csv

    spec = _spec(sample)
    data = spec["datasets"]["data"]
    a = _read(sample, "data", ["run", "luminosityBlock", "event"])
    run, ls, event = (a[b].to_numpy() for b in ("run", "luminosityBlock", "event"))
    assert len(np.unique(event)) == len(event)
    golden = json.loads((sample / data["golden_json"]).read_text())
    in_golden = np.zeros(len(run), bool)
    for r, ranges in golden.items():
        for lo, hi in ranges:
            in_golden |= (run == int(r)) & (ls >= lo) & (ls <= hi)
    # a few lumisections are excluded, and their events are still written
    assert 0.002 < np.mean(~in_golden) < 0.05
    table = read_lumi_csv(sample / data["lumi_csv"])
    assert {(int(r), int(x)) for r, x in zip(run, ls, strict=True)} <= set(
        zip(table.run.tolist(), table.ls.tolist(), strict=True)
    )
    read = set(zip(run.tolist(), ls.tolist(), strict=True))
    lumi = integrated_lumi(read, sample / data["lumi_csv"], sample / data["golden_json"])
    assert lumi == pytest.approx(spec["lumi_pb"], rel=1e-6)
    # data yields: Poisson draws at the luminosity of all lumisections
    truth = json.loads((sample / "truth.json").read_text())
    for name, n in truth["events_data_generated"].items():
        mu = spec["datasets"][name]["xsec_pb"] * truth["lumi_all_ls_pb"]
        assert abs(n - mu) < 5 * np.sqrt(mu) + 1, (name, n, mu)
    # default luminosity: four times more signal MC than data W events
    w = spec["datasets"]["wmunu"]
    assert spec["lumi_pb"] * w["xsec_pb"] == pytest.approx(w["nevents"] / 4, rel=1e-6)
    mc = _read(sample, "zmumu", ["run", "event"])
    assert np.all(mc.run.to_numpy() == 1)


def test_truth_corrections_and_provenance_are_written(sample):
    from analysis.datasets import load_datasets
    from corrections import Corrections

    truth = json.loads((sample / "truth.json").read_text())
    assert truth["seed"] == 3 and truth["mw_data_gev"] == MW_REF
    assert truth["mass_weights_mev"] == list(range(-100, 101, 10))
    eff = truth["efficiency"]
    assert len(eff["eta_edges"]) == 49 and eff["pt_edges"][0] <= 10 and eff["pt_edges"][-1] >= 100
    for kind in ("idip", "trigger"):
        for src in ("data", "mc"):
            assert np.shape(eff[kind][src]) == (48, len(eff["pt_edges"]) - 1)
    trig = np.asarray(eff["trigger"]["mc"])
    pt_c = 0.5 * (np.asarray(eff["pt_edges"][1:]) + np.asarray(eff["pt_edges"][:-1]))
    assert np.all(trig[:, pt_c < 20] < 0.05) and np.all(trig[:, pt_c > 30] > 0.85)
    assert set(truth["pileup"]) >= {"edges", "mc", "data", "data_up", "data_down"}
    corr = Corrections.from_file(sample / "corrections.json")
    assert "pileup" in corr
    meta = json.loads((sample / "provenance.json").read_text())
    assert meta["args"]["seed"] == 3 and {"git_hash", "versions", "time"} <= set(meta)
    fileset = load_datasets(sample / "datasets.yaml")
    assert set(fileset) == {*PROCESSES, "data"}
    assert all(f.endswith(".root") for ds in fileset.values() for f in ds.files)


def _flat(x):
    return np.concatenate(list(x)) if x.dtype == object else x


def _all_arrays(path):
    with uproot.open(path) as f:
        return f["Events"].arrays(library="np")


def test_same_seed_gives_identical_arrays_and_another_seed_different_ones(tmp_path):
    """Also with the files written by two worker processes."""
    kwargs = {"events": 3500, "files_per_process": 2, "corrections": False}
    generate_samples(tmp_path / "a", seed=5, **kwargs)
    generate_samples(tmp_path / "b", seed=5, jobs=2, **kwargs)  # parallel: the same arrays
    generate_samples(tmp_path / "c", seed=6, **kwargs)
    for rel in ("wmunu/nano_1.root", "qcd/nano_0.root", "data/nano_1.root"):
        a, b, c = (_all_arrays(tmp_path / d / rel) for d in "abc")
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(_flat(a[key]), _flat(b[key]), err_msg=key)
        assert not np.array_equal(_flat(a["Muon_pt"]), _flat(c["Muon_pt"]))
    assert (tmp_path / "a" / "truth.json").read_text() == (
        tmp_path / "b" / "truth.json"
    ).read_text()


def test_cli_writes_the_sample_and_names_bad_options(tmp_path, capsys):
    from analysis.cli import main

    assert main(["generate", "--out", str(tmp_path / "s"), "--events", "2e3", "--seed", "2"]) == 0
    assert str(tmp_path / "s" / "datasets.yaml") in capsys.readouterr().out
    assert (tmp_path / "s" / "corrections.json").exists()
    assert main(["generate", "--out", str(tmp_path / "t"), "--events", "3000", "--mw", "20"]) == 2
    assert "mw" in capsys.readouterr().err


def test_mw_sets_the_w_mass_of_the_data_only(tmp_path):
    """A 5 GeV heavier W in data moves its Jacobian peak up by ~2.5 GeV; the MC stays put."""
    generate_samples(tmp_path, events=30_000, seed=8, mw=MW_REF + 5.0, corrections=False)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["mw_data_gev"] == MW_REF + 5.0 and truth["mw_ref_gev"] == MW_REF
    selected = {}
    for name in ("data", "wmunu"):
        pt, iso, mt = _single_muon(_read(tmp_path, name, BRANCHES + EVENT))
        selected[name] = pt[(iso < 0.15) & (mt > 60) & (pt < 60)]
    data, mc = selected["data"], selected["wmunu"]
    shift = np.median(data) - np.median(mc)
    err = 1.25 * np.hypot(np.std(data) / np.sqrt(len(data)), np.std(mc) / np.sqrt(len(mc)))
    assert 1.5 < shift < 3.5 and shift > 5 * err, (shift, err)


def test_a_sample_without_data_events_still_has_a_readable_data_file(tmp_path, sample):
    generate_samples(tmp_path, events=7, seed=1, lumi_pb=1e-9, corrections=False)
    empty = uproot.open(tmp_path / "data" / "nano_0.root")["Events"]
    full = uproot.open(sample / "data" / "nano_0.root")["Events"]
    assert empty.num_entries == 0
    assert set(empty.keys()) == set(full.keys())
    assert empty["Muon_pt"].typename == full["Muon_pt"].typename
    with pytest.raises(ConfigError, match="lumi_pb"):
        generate_samples(tmp_path / "x", events=100, lumi_pb=-1.0)
