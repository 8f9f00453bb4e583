"""``wmass setup-fit`` on hists.h5 files written from a known model: the fit input's content,
the nonprompt closure, pseudo-data, channels combined, named errors, and fits that give back
the injected W mass."""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import hist
import numpy as np
import pytest

from analysis.constants import GAMMA_Z, MW_REF, MZ_REF
from analysis.io import DatasetHistograms, write_histograms
from analysis.postprocess.setup import build_fit_input, channel_setup
from analysis.setup_fit import add_arguments, main, setup_fit
from processors.errors import ConfigError
from processors.variations import MASS_SHIFTS_MEV, QCD_SCALE_LABELS, variation_axis
from processors.wmass import w_axes
from processors.zdilepton import z_axes

PROMPT = ("Wmunu", "Wtaunu", "Zmumu", "Top", "Diboson")
AXES = w_axes()
PT = AXES[0].centers
ETA = AXES[1].centers
MT_SHARE = {"prompt": np.array([0.01, 0.05, 0.94]), "qcd": np.array([0.55, 0.3, 0.15])}


def w_pt_shape(mw: float, scale: float = 1.0) -> np.ndarray:
    """A Jacobian-peak-like muon pT spectrum whose edge moves with m_W / 2."""
    edge = scale * mw / 2
    return np.exp(-0.5 * ((PT - edge) / 3.5) ** 2) + 0.5 / (1 + np.exp((PT - edge) / 1.5))


def prompt_5d(pt_shape: np.ndarray, total: float, iso_pass: float = 0.97) -> np.ndarray:
    """``[pt, eta, charge, passIso, mt]`` expected yields of a prompt process."""
    base = (
        pt_shape[:, None, None]
        * (1 - 0.08 * ETA**2)[None, :, None]
        * np.array([0.42, 0.58])[None, None, :]
    )
    base = base / base.sum()
    iso = np.array([1 - iso_pass, iso_pass])
    return total * base[..., None, None] * iso[:, None] * MT_SHARE["prompt"]


def qcd_5d(total: float) -> np.ndarray:
    """Nonprompt muons: falling pT, a fake rate whose log is linear in the mT region."""
    base = np.exp(-0.1 * PT)[:, None, None] * (1 + 0.05 * ETA**2)[None, :, None] * np.ones(2)
    base = total * base / base.sum()
    fake = 0.12 * np.exp(0.35 * np.arange(3))
    out = np.empty((*base.shape, 2, 3))
    for j in range(3):
        out[..., 0, j] = base * MT_SHARE["qcd"][j] / (1 + fake[j])
        out[..., 1, j] = base * MT_SHARE["qcd"][j] * fake[j] / (1 + fake[j])
    return out


def _tilt(rng: np.random.Generator, size: float, x0: np.ndarray) -> np.ndarray:
    x = (x0 - x0.mean()) / (x0.max() - x0.min())
    return 1 + size * (rng.standard_normal() * x + rng.standard_normal() * x**2)


def _weighted(axes, values: np.ndarray, mc_weight: float) -> hist.Hist:
    h = hist.Hist(*axes, storage=hist.storage.Weight())
    h[...] = np.stack([values, values * mc_weight], axis=-1)
    return h


def _varied(axes, name: str, labels: list[str], stack: np.ndarray) -> hist.Hist:
    h = hist.Hist(*axes, variation_axis(name, labels), storage=hist.storage.Double())
    h[...] = stack
    return h


def _write_with_data(
    path: Path, datasets: list, counts: np.ndarray, *, analysis: str, axes
) -> Path:
    """Write ``datasets`` and a ``data`` dataset of observed ``counts`` (1 pb^-1)."""
    data = DatasetHistograms(
        name="data",
        process="Data",
        is_data=True,
        lumi_pb=1.0,
        histograms={"nominal": _weighted(axes, counts, 1.0)},
    )
    return write_histograms(path, [*datasets, data], analysis=analysis, lumi_pb=1.0)


def mc_histograms(name, process, make, rng, *, axes=AXES, mass: bool = False):
    """A simulated dataset: ``make(m)`` gives its expectation for boson mass ``m`` (GeV, as a
    shift from the reference); PDF, QCD-scale, pileup and per-eta efficiency variations; with
    ``mass``, the mass weights and the reference mass they shift (W: MW_REF, Z: MZ_REF)."""
    nominal = make(0.0)
    x0 = axes[0].centers
    along0 = (slice(None),) + (None,) * (nominal.ndim - 1)
    hs = {"nominal": _weighted(axes, nominal, 0.25)}  # 4x the data statistics
    pdf = [nominal] + [nominal * _tilt(rng, 0.01, x0)[along0] for _ in range(4)]
    hs["pdf"] = _varied(axes, "pdf", [f"pdf{i}" for i in range(5)], np.stack(pdf, axis=-1))
    scales = [nominal * _tilt(rng, 0.02, x0)[along0] for _ in QCD_SCALE_LABELS]
    scales[4] = nominal
    hs["qcdScale"] = _varied(axes, "qcdScale", list(QCD_SCALE_LABELS), np.stack(scales, axis=-1))
    if mass:
        masses = [make(d / 1000) for d in MASS_SHIFTS_MEV]
        labels = [f"massShift{d}MeV" for d in MASS_SHIFTS_MEV]
        hs["massWeight"] = _varied(axes, "massWeight", labels, np.stack(masses, axis=-1))
    along1 = (None, slice(None)) + (None,) * (nominal.ndim - 2)
    tilt = (1 + 0.01 * np.linspace(-1, 1, len(axes[1])))[along1]
    pu = np.stack([nominal * tilt, nominal / tilt], axis=-1)
    hs["pileup"] = _varied(axes, "pileup", ["pileupUp", "pileupDown"], pu)
    eff, labels = [], []
    n1 = len(axes[1])
    for k, b in enumerate(range(0, n1, n1 // 8)):  # 8 regions along axis 1, one eigenvector
        for d, sign in (("Up", 1), ("Down", -1)):
            v = nominal.copy()
            v[:, b : b + n1 // 8] *= 1 + sign * 0.005
            eff.append(v)
            labels.append(f"effStat_eta{k}_idip_eig0{d}")
    hs["effStat"] = _varied(axes, "effStat", labels, np.stack(eff, axis=-1))
    reference = (MW_REF if process.startswith("W") else MZ_REF) if mass else None
    return DatasetHistograms(
        name=name,
        process=process,
        xsec_pb=1.0,
        sumw=1.0,
        lumi_pb=None,
        histograms=hs,
        mass_reference_gev=reference,
    )


def write_w_hists(path: Path, *, mw_data: float = MW_REF, seed: int = 1) -> Path:
    """A W-analysis hists.h5: signal, prompt backgrounds, QCD, and Poisson data at ``mw_data``."""
    rng = np.random.default_rng(seed)
    makers = {
        "wmunu": ("Wmunu", lambda d: prompt_5d(w_pt_shape(MW_REF + d), 4.0e6)),
        "wtaunu": ("Wtaunu", lambda d: prompt_5d(w_pt_shape(MW_REF + d, 0.8), 1.5e5)),
        "zmumu": ("Zmumu", lambda d: prompt_5d(np.exp(-0.5 * ((PT - 42) / 8) ** 2), 3.0e5)),
        "ttbar": ("Top", lambda d: prompt_5d(np.ones_like(PT), 4.0e4)),
        "diboson": ("Diboson", lambda d: prompt_5d(np.ones_like(PT), 1.5e4)),
    }
    datasets = [mc_histograms(n, p, f, rng, mass=p.startswith("W")) for n, (p, f) in makers.items()]
    qcd = qcd_5d(2.0e6)
    datasets.append(
        DatasetHistograms(
            name="qcd",
            process="QCD",
            xsec_pb=1.0,
            sumw=1.0,
            histograms={"nominal": _weighted(AXES, qcd, 0.25)},
        )
    )
    shift = mw_data - MW_REF
    expected = qcd + sum(f(shift if p.startswith("W") else 0.0) for p, f in makers.values())
    counts = rng.poisson(expected).astype(float)
    return _write_with_data(path, datasets, counts, analysis="wmass", axes=AXES)


def write_z_hists(path: Path, *, seed: int = 2) -> Path:
    """A Z-dilepton hists.h5 (m(ll) x pT(ll) x y(ll)): Z -> mu mu, Z -> tau tau, ttbar, data."""
    rng = np.random.default_rng(seed)
    axes = z_axes()
    mll, ptll, yll = (ax.centers for ax in axes)

    def z(d: float) -> np.ndarray:
        bw = 1 / ((mll - MZ_REF - d) ** 2 + GAMMA_Z**2 / 4)
        return (
            2.0e5
            * (bw / bw.sum())[:, None, None]
            * (np.exp(-ptll / 15) / np.exp(-ptll / 15).sum())[None, :, None]
            * (np.ones_like(yll) / len(yll))[None, None, :]
        )

    flat = np.ones((len(mll), len(ptll), len(yll)))
    makers = {
        "zmumu": ("Zmumu", z),
        "ztautau": ("Ztautau", lambda d: 2.0e3 * flat / flat.sum()),
        "ttbar": ("Top", lambda d: 1.0e3 * flat / flat.sum()),
    }
    datasets = [
        mc_histograms(n, p, f, rng, axes=axes, mass=p == "Zmumu") for n, (p, f) in makers.items()
    ]
    counts = rng.poisson(sum(f(0.0) for _, f in makers.values())).astype(float)
    return _write_with_data(path, datasets, counts, analysis="zdilepton", axes=axes)


@pytest.fixture(scope="module")
def w_hists(tmp_path_factory) -> Path:
    return write_w_hists(tmp_path_factory.mktemp("w") / "hists.h5")


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return main(parser.parse_args([str(a) for a in argv]))


def test_setup_fit_writes_the_w_fit_input_with_provenance_and_summary(w_hists, tmp_path, capsys):
    from fit import FitInput

    out = tmp_path / "fitinput.h5"
    assert run_cli(w_hists, "--out", out) == 0
    printed = capsys.readouterr().out
    with h5py.File(out) as f:
        assert f.attrs["kind"] == "fitinput"
        assert "meta" in f and str(w_hists) in f["meta"].attrs["inputs"]
    fi = FitInput.read(out)
    assert fi.nbins == 30 * 48 * 2
    assert set(fi.processes) == {"Wmunu", "Wtaunu", "Zmumu", "Top", "Diboson", "Nonprompt"}
    assert [p.name for p in fi.pois] == ["mW"]
    poi = fi.pois[0]
    assert (poi.offset, poi.scale, poi.unit) == (80379.0, 100.0, "MeV")
    groups = dict(zip(fi.parameters, fi.groups, strict=True))
    # the nonprompt: per charge, 3 (C, order 2) + 3 (fake rate: pT order 1, mT slope)
    # shape eigenvectors, one share of region C in each of 48 eta x 2 charge bins, and the
    # non-closure in normalisation and pT slope
    assert sum(g == "Nonprompt background" for g in fi.groups) == 2 * 6 + 48 * 2 + 2
    assert groups["pdf2"] == "PDF" and groups["lumi"] == "Luminosity"
    assert sum(g == "Muon eff. stat." for g in fi.groups) == 8
    # W QCD scales: muR, muF, muRmuF, each decorrelated per charge
    assert sum(g == "W QCD scales muF, muR" for g in fi.groups) == 3 * 2
    column = fi.logk_up[:, [fi.index("qcdScaleW_muR_q1")]].toarray()
    logk = column.reshape(fi.nbins, fi.nprocs)[:, fi.processes.index("Wmunu")]
    logk = logk.reshape(30, 48, 2)
    assert np.all(logk[:, :, 0] == 0) and np.all(logk[:, :, 1] != 0)
    assert "QCD" not in fi.processes  # QCD simulation is never a fit process
    # the data are the observed counts of the signal region (isolated, mT >= 40)
    from analysis.io import read_histograms

    data = read_histograms(w_hists)["data"].histograms["nominal"].values()[:, :, :, 1, 2]
    np.testing.assert_array_equal(fi.data, data.ravel())
    # the summary is printed and written beside the output
    log = out.with_suffix(".log").read_text()
    assert "Nonprompt background" in log and "288" in log and "Wmunu" in log
    assert log in printed


def test_nonprompt_closes_on_the_true_qcd_in_the_signal_region(w_hists):
    from analysis.io import read_histograms

    setup = channel_setup(read_histograms(w_hists))
    true_qcd = setup.closure["qcd_mc_in_signal_region"]
    predicted = setup.nominal["Nonprompt"].sum()
    # the smoothing's eigen-variations give the statistical uncertainty of the prediction
    shifts = [
        per["Nonprompt"][0].sum() - predicted
        for name, per in setup.shapes.items()
        if name.startswith("nonprompt_")
    ]
    sigma = np.sqrt(np.sum(np.square(shifts)))
    assert sigma < 0.02 * true_qcd
    assert abs(predicted - true_qcd) < 3 * sigma


def test_pseudodata_from_a_variation_label_applies_it_to_every_process(w_hists):
    from analysis.io import read_histograms

    setup = channel_setup(read_histograms(w_hists))
    fi, _ = build_fit_input([setup], pseudodata="massShift50MeV")
    expected = sum(setup.nominal.values())
    for p in ("Wmunu", "Wtaunu"):
        expected = expected - setup.nominal[p] + setup.variations["massShift50MeV"][p]
    np.testing.assert_allclose(fi.data, expected.ravel(), rtol=1e-12)
    asimov, _ = build_fit_input([setup], pseudodata="asimov")
    np.testing.assert_allclose(asimov.data, fi.nominal.sum(axis=1), rtol=1e-12)
    with pytest.raises(ConfigError, match="massShift7MeV"):
        build_fit_input([setup], pseudodata="massShift7MeV")


def test_w_and_z_dilepton_histograms_combine_into_one_fit(w_hists, tmp_path):
    z_hists = write_z_hists(tmp_path / "z.h5")
    fi, summary = setup_fit([w_hists, z_hists], tmp_path / "combined.h5")
    assert [c.name for c in fi.channels] == ["wmass", "zdilepton"]
    assert fi.channel("zdilepton").nbins == 60 * 14 * 24
    assert {p.name for p in fi.pois} == {"mW", "mZ"}
    # common nuisances are one parameter acting in both channels
    assert fi.parameters.count("lumi") == 1 and fi.parameters.count("pileup") == 1
    # the Z normalisation is one free parameter, measured by the Z channel
    assert fi.constraints[fi.index("norm_Z")] == "none"
    k = fi.index("pileup")
    rows = fi.logk_up[:, [k]].tocoo().row // fi.nprocs
    assert rows.min() < fi.channel("zdilepton").first_bin <= rows.max()
    assert "channel zdilepton" in summary
    from fit import fit

    asimov = fit(fi, data="asimov").pois
    assert asimov["mW"]["value"] == pytest.approx(80379.0, abs=1e-6)
    assert asimov["mZ"]["value"] == pytest.approx(91187.6, abs=1e-6)


def test_bad_inputs_are_named(w_hists, tmp_path):
    with pytest.raises(ConfigError, match="--fitvar"):
        setup_fit([w_hists], tmp_path / "x.h5", fitvars=["pt-mll"])
    with pytest.raises(ConfigError, match="analysis"):
        setup_fit([w_hists], tmp_path / "x.h5", analyses=["zprime"])


def test_asimov_fit_gives_the_reference_w_mass_exactly(w_hists):
    from analysis.io import read_histograms
    from fit import fit

    fi, _ = build_fit_input([channel_setup(read_histograms(w_hists))], pseudodata="asimov")
    result = fit(fi, data="asimov")
    assert result.pois["mW"]["value"] == pytest.approx(80379.0, abs=1e-6)
    assert 5 < result.pois["mW"]["error"] < 40  # MeV: 4e6 signal events in 2880 bins


@pytest.mark.slow
def test_fit_of_data_at_another_mass_gives_it_back_within_its_uncertainty(tmp_path):
    from fit import fit

    hists = write_w_hists(tmp_path / "hists.h5", mw_data=80.429, seed=4)
    fi, _ = setup_fit([hists], tmp_path / "fitinput.h5")
    mw = fit(fi).pois["mW"]
    assert mw["error"] < 25  # MeV: the 50 MeV shift is resolved at > 2 sigma
    assert abs(mw["value"] - 80429.0) < 3 * mw["error"]


@pytest.mark.slow
def test_pyhf_workspace_export_is_valid_and_its_asimov_fit_sits_at_the_reference(w_hists, tmp_path):
    import json

    import pyhf

    from fit.pyhf import fit_workspace

    ws_path = tmp_path / "ws.json"
    fi, _ = setup_fit([w_hists], tmp_path / "pt.h5", fitvars=["pt"], pyhf_json=ws_path)
    spec = json.loads(ws_path.read_text())
    ws = pyhf.Workspace(spec)  # validates against pyhf's schema
    assert ws.get_measurement()["config"]["poi"] == "mW"
    assert sum(len(o["data"]) for o in spec["observations"]) == fi.nbins == 30
    result = fit_workspace(spec, data="asimov")
    assert result.pois["mW"]["value"] == pytest.approx(0.0, abs=1e-6)


def write_wlike_hists(path: Path, *, seed: int = 3) -> Path:
    """W-like Z hists.h5: the 5D W histograms filled from Z -> mu mu (one muon as neutrino)."""
    rng = np.random.default_rng(seed)
    makers = {
        "zmumu": ("Zmumu", lambda d: prompt_5d(w_pt_shape(MZ_REF + d), 1.0e6)),
        "ztautau": ("Ztautau", lambda d: prompt_5d(w_pt_shape(MZ_REF + d, 0.8), 1.0e4)),
        "ttbar": ("Top", lambda d: prompt_5d(np.ones_like(PT), 5.0e3)),
    }
    datasets = [mc_histograms(n, p, f, rng, mass=p.startswith("Z")) for n, (p, f) in makers.items()]
    counts = rng.poisson(sum(f(0.0) for _, f in makers.values())).astype(float)
    return _write_with_data(path, datasets, counts, analysis="wlike", axes=AXES)


def test_wlike_fit_measures_the_z_mass_and_its_asimov_fit_is_exact(tmp_path):
    from fit import fit

    hists = write_wlike_hists(tmp_path / "wlike.h5")
    fi, summary = setup_fit([hists], tmp_path / "wlike_fit.h5")
    assert [p.name for p in fi.pois] == ["mZ"]
    assert "Nonprompt" not in fi.processes and fi.nbins == 2880
    assert fi.poi("mZ").offset == pytest.approx(91187.6)
    result = fit(fi, data="asimov")
    assert result.pois["mZ"]["value"] == pytest.approx(91187.6, abs=1e-6)
    assert 5 < result.pois["mZ"]["error"] < 60  # MeV: 1e6 Z events


def test_without_smoothing_the_nonprompt_is_the_bin_by_bin_extended_abcd(w_hists):
    from analysis.io import read_histograms
    from analysis.postprocess import nonprompt_estimate

    hf = read_histograms(w_hists)
    setup = channel_setup(hf, smoothing=False)
    mc = [ds.histograms["nominal"] for ds in hf.datasets.values() if ds.process in PROMPT]
    data = hf["data"].histograms["nominal"].values()
    est = nonprompt_estimate(
        data,
        sum(h.values() for h in mc),
        prompt_variance=sum(h.variances() for h in mc),
    )
    # equal up to the summation order of the prompt processes
    np.testing.assert_allclose(setup.nominal["Nonprompt"], est.d, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(setup.sumw2["Nonprompt"], est.d_variance, rtol=1e-9, atol=1e-9)
    assert not any(name.startswith("nonprompt_") for name in setup.shapes)


def test_a_bin_without_simulation_gets_a_floor_that_no_nuisance_moves(w_hists):
    """Sparse simulation: where no process predicts anything the signal gets a tiny floor so
    the Poisson term is defined; its variations must sit on the same floor (log-kappa 0), or
    every signal nuisance would claim a factor-10 effect there and m_W would look far more
    precise than the data allow."""
    from analysis.io import read_histograms

    hf = read_histograms(w_hists)
    hole = (slice(None), slice(0, 4))  # the first four eta bins: no simulated or data event
    for ds in hf.datasets.values():
        for hname, h in ds.histograms.items():
            view = h.view()
            target = view.value if hasattr(view, "value") else view
            target[hole] = 0.0
            if hasattr(view, "variance"):
                view.variance[hole] = 0.0
            if hname == "massWeight":  # a stray up-template event where the nominal has none
                target[hole + (Ellipsis, -1)] = 3.0
    setup = channel_setup(hf)
    total = sum(setup.nominal.values())
    floored = total <= 1e-3 * total.mean()
    assert floored.sum() == 30 * 4 * 2  # every pT bin of the four eta bins, both charges
    floor = setup.nominal["Wmunu"][floored]
    assert np.all(floor > 0)
    moved = [
        name
        for name, per_proc in setup.shapes.items()
        if "Wmunu" in per_proc
        and any(not np.array_equal(v[floored], floor) for v in per_proc["Wmunu"])
    ]
    assert moved == []
    assert "mW" in setup.pois and "Wmunu" in setup.shapes["mW"]


def test_the_reference_mass_comes_from_the_samples_and_its_absence_is_named(tmp_path):
    from analysis.io import read_histograms

    path = write_w_hists(tmp_path / "hists.h5")
    hf = read_histograms(path)
    for ds in hf.datasets.values():
        if ds.process.startswith("W"):
            ds.mass_reference_gev = 80.4
    setup = channel_setup(hf)
    assert setup.pois["mW"][0] == pytest.approx(80400.0)  # not a constant of the code
    hf.datasets["wtaunu"].mass_reference_gev = None
    with pytest.raises(ConfigError, match="datasets/wtaunu/mass_reference_gev"):
        channel_setup(hf)
