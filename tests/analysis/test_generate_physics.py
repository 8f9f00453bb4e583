"""Generator physics at particle and detector level, without files: the Breit-Wigner mass
weights reproduce a sample generated at the shifted mass, the W charge asymmetry and V-A decay,
tau decays, and the detector draws exactly the truth it writes to truth.json."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from analysis.generate.detector import simulate
from analysis.generate.physics import MASS_WINDOW, breit_wigner_density, pt_eta_phi
from analysis.generate.processes import GAMMA_W, MW_REF, wmunu, wtaunu
from analysis.generate.truth import EFF_ETA_EDGES, EFF_PT_EDGES, PILEUP_EDGES, DetectorTruth

N = 300_000
SHIFT = 0.100  # GeV, the +100 MeV MEParamWeight (index 20)


def _chi2(a, wa2, b, wb2):
    """chi2 / ndf of two histograms with their sums of squared weights (bins with entries)."""
    mask = (wa2 + wb2) > 0
    chi2 = np.sum((a - b)[mask] ** 2 / (wa2 + wb2)[mask])
    ndf = int(mask.sum())
    return chi2, ndf, stats.chi2.sf(chi2, ndf)


@pytest.fixture(scope="module")
def w_samples():
    ref = wmunu(np.random.default_rng(101), N, mw=MW_REF)
    shifted = wmunu(np.random.default_rng(202), N, mw=MW_REF + SHIFT)
    return ref, shifted


def _gen_mass(gen):
    return gen.system_mass


def _gen_muon_pt(gen):
    return pt_eta_phi(gen.mu_p4)[0][:, 0]


@pytest.mark.parametrize(
    ("observable", "bins"),
    [(_gen_mass, np.linspace(74, 87, 53)), (_gen_muon_pt, np.linspace(30, 45, 61))],
    ids=["gen W mass", "gen muon pT"],
)
def test_mass_weight_reproduces_a_sample_generated_100_mev_higher(w_samples, observable, bins):
    ref, shifted = w_samples
    w = ref.mass_weights[:, 20]
    x_ref, x_shift = observable(ref), observable(shifted)
    h_w, _ = np.histogram(x_ref, bins, weights=w)
    h_w2, _ = np.histogram(x_ref, bins, weights=w**2)
    h_s, _ = np.histogram(x_shift, bins)
    chi2, ndf, p = _chi2(h_w, h_w2, h_s, h_s)
    assert p > 1e-3, (chi2, ndf)
    # the same number of events: both Breit-Wigners are normalised over the same window
    assert w.sum() == pytest.approx(N, abs=4 * np.sqrt(np.sum((w - 1) ** 2)))
    # and the means agree, while the unweighted reference is 100 MeV (mass) lower
    mean_w = np.average(x_ref, weights=w)
    assert abs(mean_w - x_shift.mean()) < 4 * np.std(x_shift) / np.sqrt(N) * np.sqrt(2)


def test_the_mass_comparison_has_the_power_to_see_100_mev(w_samples):
    ref, shifted = w_samples
    bins = np.linspace(74, 87, 53)
    h_r, _ = np.histogram(ref.system_mass, bins)
    h_s, _ = np.histogram(shifted.system_mass, bins)
    _, _, p = _chi2(h_r, h_r, h_s, h_s)
    assert p < 1e-4


def test_breit_wigner_density_is_normalised_and_mass_weights_follow_it():
    lo, hi = MASS_WINDOW
    for mass in (MW_REF, MW_REF + SHIFT):
        total, _ = integrate.quad(
            lambda m, mass=mass: 2 * m * breit_wigner_density(m * m, mass, GAMMA_W),
            lo,
            hi,
            points=[mass],
            limit=200,
        )
        assert total == pytest.approx(1.0, rel=1e-8)
    gen = wmunu(np.random.default_rng(3), 1000)
    s = gen.system_mass**2
    expected = breit_wigner_density(s, MW_REF - 0.05, GAMMA_W) / breit_wigner_density(
        s, MW_REF, GAMMA_W
    )
    np.testing.assert_allclose(gen.mass_weights[:, 5], expected, rtol=1e-12)


def test_w_charge_asymmetry_and_v_minus_a_decay():
    gen = wmunu(np.random.default_rng(7), N)
    q = gen.system_charge
    ratio = np.sum(q > 0) / np.sum(q < 0)
    assert ratio == pytest.approx(1.4, abs=0.03)
    # at large |y| the quark follows the boost: (1 - cos)^2 sends mu+ backwards, (1 + cos)^2
    # mu- forwards, relative to the W direction
    _, eta, _ = pt_eta_phi(gen.mu_p4)
    forward = (eta[:, 0] - gen.system_y) * np.sign(gen.system_y)
    big = np.abs(gen.system_y) > 1.5
    plus, minus = forward[big & (q > 0)], forward[big & (q < 0)]
    assert plus.mean() < -0.1 and minus.mean() > 0.1
    # no asymmetry at central rapidity, where both quark directions are as likely
    central = np.abs(gen.system_y) < 0.1
    assert abs(forward[central & (q > 0)].mean()) < 0.1


def test_muons_from_tau_decays_carry_the_michel_fraction_of_the_tau():
    t = wtaunu(np.random.default_rng(2), 100_000)
    tau_pt, mu_pt = t.gen["pt"][:, 1].astype(float), t.gen["pt"][:, 3].astype(float)
    z = np.minimum(mu_pt / tau_pt, 1.0 - 1e-9)  # collinear limit: pT ratio = energy ratio
    # unpolarised tau -> mu nu nu, boosted: f(z) = (5 - 9 z^2 + 4 z^3) / 3, mean 7/20
    assert z.mean() == pytest.approx(0.35, abs=0.01)
    counts, _ = np.histogram(z, np.linspace(0, 1, 11))
    edges = np.linspace(0, 1, 11)
    cdf = lambda x: (5 * x - 3 * x**3 + x**4) / 3  # noqa: E731
    expected = len(z) * np.diff(cdf(edges))
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    w = wmunu(np.random.default_rng(1), 100_000)
    pt_w = pt_eta_phi(w.mu_p4)[0][:, 0]
    assert np.mean(mu_pt > 26) < 0.5 * np.mean(pt_w > 26)


@pytest.fixture(scope="module")
def detector():
    truth = DetectorTruth.from_seed(11)
    gen = wmunu(np.random.default_rng(5), N)
    mc = simulate(gen, truth, np.random.default_rng(9), is_data=False)
    data = simulate(gen, truth, np.random.default_rng(9), is_data=True)
    return truth, gen, mc, data


def test_tight_id_is_drawn_with_the_truth_efficiency(detector):
    truth, _, mc, data = detector
    for source, reco in (("mc", mc), ("data", data)):
        mu = reco.collections["Muon"].fields
        sel = (mu["pt"] > 30) & (mu["pt"] < 50)
        eta, pt, tight = mu["eta"][sel], mu["pt"][sel], mu["tightId"][sel]
        if source == "data":  # the efficiency is defined at the unbiased pT
            pt = pt / (1 + truth.momentum_bias(eta))
        p = truth.efficiency("idip", source, eta, pt)
        for lo, hi in ((0.0, 0.8), (0.8, 1.6), (1.6, 2.4)):
            b = (np.abs(eta) >= lo) & (np.abs(eta) < hi)
            expected, observed = p[b].mean(), tight[b].mean()
            err = np.sqrt(expected * (1 - expected) / b.sum())
            assert abs(observed - expected) < 4 * err, (source, lo, observed, expected)


def test_data_muon_pt_is_the_mc_pt_times_the_true_scale_bias(detector):
    truth, _, mc, data = detector
    m, d = mc.collections["Muon"], data.collections["Muon"]
    # the same random stream: the data detector differs only by the bias
    np.testing.assert_array_equal(m.counts, d.counts)
    ratio = d.fields["pt"].astype(float) / m.fields["pt"].astype(float)
    np.testing.assert_allclose(ratio, 1 + truth.momentum_bias(m.fields["eta"]), rtol=2e-7)
    assert np.max(np.abs(truth.scale_bias)) > 2e-4


def test_pileup_follows_the_truth_profiles(detector):
    truth, _, mc, data = detector
    for source, reco in (("mc", mc), ("data", data)):
        if source == "data":
            n_true = truth.sample_pileup(np.random.default_rng(1), "data", N)
        else:
            n_true = reco.flat["Pileup_nTrueInt"]
        counts, _ = np.histogram(n_true, PILEUP_EDGES)
        expected = N * truth.pileup[source]
        ok = expected > 20
        chi2 = np.sum((counts[ok] - expected[ok]) ** 2 / expected[ok])
        assert stats.chi2.sf(chi2, ok.sum()) > 1e-3, source
    assert (
        abs(mc.flat["Pileup_nTrueInt"].mean() - np.dot(PILEUP_EDGES[:-1] + 0.5, truth.pileup["mc"]))
        < 0.1
    )


def test_data_events_prefire_with_the_truth_probability(detector):
    truth, _, _, data = detector
    mu = data.collections["Muon"]
    one = mu.counts == 1
    first = np.concatenate([[0], np.cumsum(mu.counts)[:-1]])
    eta = np.where(one, mu.fields["eta"][np.minimum(first, len(mu.fields["eta"]) - 1)], 0.0)
    forward = one & (np.abs(eta) > 2.0) & (np.abs(eta) < 2.4)
    lost = 1 - data.keep[forward].mean()
    p = truth.prefiring_probability(np.array([2.2]))[0]
    assert lost == pytest.approx(p, abs=4 * np.sqrt(p / forward.sum()))
    central = one & (np.abs(eta) < 1.0)
    assert data.keep[central].all()


def test_trigger_turns_on_near_24_gev_with_the_truth_efficiency(detector):
    truth, _, mc, _ = detector
    mu = mc.collections["Muon"]
    one = (mu.counts == 1) & True
    first = np.concatenate([[0], np.cumsum(mu.counts)[:-1]])[one]
    pt, eta, tight = (mu.fields[k][first] for k in ("pt", "eta", "tightId"))
    fired = mc.flat["HLT_IsoMu24"][one]
    for lo, hi in ((20, 22), (23, 24), (24, 25), (30, 40)):
        sel = tight & (pt >= lo) & (pt < hi)
        expected = truth.efficiency("trigger", "mc", eta[sel], pt[sel]).mean()
        err = np.sqrt(max(expected * (1 - expected), 1e-4) / sel.sum())
        assert abs(fired[sel].mean() - expected) < 4 * err + 1e-3, (lo, hi)
    low = tight & (pt < 20)
    assert fired[low].mean() < 0.05
    assert not fired[~tight].any()
    assert EFF_ETA_EDGES.size == 49 and EFF_PT_EDGES[0] <= 10 <= 100 <= EFF_PT_EDGES[-1]


def test_isolation_and_recoil_resolution_get_worse_with_pileup(detector):
    _, gen, mc, _ = detector
    mu = mc.collections["Muon"]
    one = mu.counts == 1
    first = np.concatenate([[0], np.cumsum(mu.counts)[:-1]])[one]
    iso = mu.fields["pfRelIso04_all"][first]
    n_pu = mc.flat["Pileup_nPU"][one]
    low, high = n_pu < 20, n_pu > 45
    assert np.median(iso[high]) > 1.5 * np.median(iso[low])
    assert np.mean(iso[high] < 0.15) < np.mean(iso[low] < 0.15)
    # MET - true neutrino pT: the recoil resolution, which grows with pileup
    met_x = mc.flat["MET_pt"] * np.cos(mc.flat["MET_phi"])
    resid = (met_x - gen.nu_px)[one]
    assert 2.0 < np.std(resid[low]) < np.std(resid[high]) < 12.0
