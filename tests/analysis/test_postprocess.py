"""Post-processing on histograms built from a known model: extended ABCD closure, smoothing,
systematic operations, groups."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.postprocess import (
    decorrelate,
    extended_abcd,
    fit_exp_poly,
    mc_scale,
    mirror,
    nonprompt_estimate,
    region,
    simple_abcd,
    smooth_nonprompt,
    symmetrise,
    systematic_group,
)
from analysis.postprocess.nonprompt import WEIGHTS

PT = np.arange(26.5, 56.0, 1.0)  # the W histogram's 30 pT bin centres
N_ETA, N_CHARGE = 6, 2
MT_FRACTION = np.array([0.5, 0.3, 0.2])  # QCD share of each mT region


def qcd_model(slope: float = 0.4, f0: float = 0.15) -> np.ndarray:
    """Expected QCD yields ``[pt, eta, charge, passIso, mt]``: a falling pT spectrum, a fake
    rate (pass/fail isolation) whose log is linear in the mT region, so the extended ABCD
    method is exact and the simple one is not."""
    eta = np.linspace(-2.0, 2.0, N_ETA)
    total = (
        4.0e5
        * np.exp(-0.09 * PT)[:, None, None]
        * (1 + 0.1 * eta**2)[None, :, None]
        * np.array([0.9, 1.1])[None, None, :]
    )
    fake = f0 * np.exp(slope * np.arange(3)) * (1 + 0.01 * (PT[:, None] - 40))  # [pt, mt]
    out = np.empty((*total.shape, 2, 3))
    for j in range(3):
        share = total * MT_FRACTION[j]
        f = fake[:, j][:, None, None]
        out[..., 0, j] = share / (1 + f)
        out[..., 1, j] = share * f / (1 + f)
    return out


def prompt_model() -> np.ndarray:
    """Expected prompt (W) yields: isolated, mostly at high mT, a Jacobian-like pT shape."""
    shape = np.exp(-0.5 * ((PT - 40) / 6) ** 2)[:, None, None] * np.ones((1, N_ETA, N_CHARGE))
    out = np.empty((*shape.shape, 2, 3))
    for j, frac in enumerate((0.02, 0.10, 0.88)):
        out[..., 1, j] = 2.0e3 * shape * frac
        out[..., 0, j] = 2.0e3 * shape * frac * 0.03
    return out


def pseudo_data_and_varied_prompt(seed: int, n_var: int) -> tuple[np.ndarray, ...]:
    """Poisson data around QCD + prompt, the prompt model, and ``n_var`` variations of it that
    scatter each bin by 5%: ``(data, prompt, varied [..., n_var])``."""
    rng = np.random.default_rng(seed)
    prompt = prompt_model()
    data = rng.poisson(qcd_model() + prompt).astype(float)
    varied = prompt[..., None] * (1 + 0.05 * rng.standard_normal((*prompt.shape, n_var)))
    return data, prompt, varied


# -- extended ABCD -----------------------------------------------------------------------------


def test_extended_abcd_is_exact_when_the_fake_rate_is_log_linear_in_mt():
    qcd, prompt = qcd_model(), prompt_model()
    est = nonprompt_estimate(qcd + prompt, prompt)
    true_d = region(qcd, "D")
    np.testing.assert_allclose(est.d, true_d, rtol=1e-12)
    # the constant-fake-rate ABCD misses by the mT slope of the fake rate: exp(0.4) - 1 = 49 %
    simple = simple_abcd(*(est.sidebands[r] for r in ("A", "B", "C")))
    np.testing.assert_allclose(simple.sum() / true_d.sum(), np.exp(-0.4), rtol=0.02)


def test_nonprompt_estimate_closes_on_poisson_pseudo_data_within_statistics():
    rng = np.random.default_rng(7)
    qcd, prompt = qcd_model(), prompt_model()
    data = rng.poisson(qcd + prompt).astype(float)
    est = nonprompt_estimate(data, prompt)
    true_d = region(qcd, "D")
    predicted, sigma = est.d.sum(), np.sqrt(est.d_variance.sum())
    assert abs(predicted - true_d.sum()) < 3 * sigma
    assert sigma < 0.02 * true_d.sum()  # the test has power: a 2 % statistical precision
    # per bin the pulls are standard normal (linearised errors, large yields)
    pulls = (est.d - true_d) / np.sqrt(est.d_variance)
    assert abs(pulls.mean()) < 4 / np.sqrt(pulls.size)
    assert 0.85 < pulls.std() < 1.15


def test_abcd_over_all_variations_at_once_equals_a_loop_over_variations():
    n_var = 9
    data, _, varied = pseudo_data_and_varied_prompt(3, n_var)
    together = nonprompt_estimate(data, varied)
    assert together.d.shape == (*PT.shape, N_ETA, N_CHARGE, n_var)
    for v in range(n_var):
        alone = nonprompt_estimate(data, varied[..., v])
        np.testing.assert_allclose(together.d[..., v], alone.d, rtol=1e-12, atol=0)
        np.testing.assert_allclose(together.d_variance[..., v], alone.d_variance, rtol=1e-12)


def test_negative_sidebands_after_subtraction_give_no_prediction():
    d = extended_abcd(
        ax=np.array([10.0, -1.0]),
        bx=np.array([5.0, 5.0]),
        a=np.array([8.0, 8.0]),
        b=np.array([4.0, 4.0]),
        c=np.array([6.0, 6.0]),
    )
    np.testing.assert_allclose(d, [6.0 * 10 * 16 / (5 * 64), 0.0])


# -- smoothing ---------------------------------------------------------------------------------


def test_smoothing_reproduces_an_exponential_of_a_polynomial():
    truth = np.exp(8 - 0.1 * PT + 0.001 * (PT - 40) ** 2)[:, None] * np.array([1.0, 2.0, 3.0])
    # noise-free input: variances ~0 (no bias correction), weights proportional to y
    fit = fit_exp_poly(truth, 1e-12 * truth, PT, order=3, preserve_yield=False)
    np.testing.assert_allclose(fit.values(), truth, rtol=1e-9)


def test_smoothing_preserves_the_yield_exactly_or_within_the_fit_uncertainty():
    rng = np.random.default_rng(11)
    mean = np.exp(6 - 0.08 * PT)[:, None] * np.ones(200)  # 200 slices of ~12 to ~110 events/bin
    y = rng.poisson(mean).astype(float)
    raw = y.sum(axis=0)
    kept = fit_exp_poly(y, y, PT, order=3, preserve_yield=True)
    np.testing.assert_allclose(kept.values().sum(axis=0), raw, rtol=1e-12)
    free = fit_exp_poly(y, y, PT, order=3, preserve_yield=False)
    smooth = free.values()
    # the fit's uncertainty on the sum, from the covariance of the coefficients
    jac = np.einsum("p...,pk->...k", smooth, free.basis)
    sigma = np.sqrt(np.einsum("...k,...kl,...l->...", jac, free.covariance, jac))
    pull = (smooth.sum(axis=0) - raw) / sigma
    assert np.all(np.abs(pull) < 4)
    # the O(1/n) bias of log-space fits is corrected: -0.3 % on average here (2.4 % without)
    assert abs(np.mean(smooth.sum(axis=0) / raw - 1)) < 0.005
    # and the smoothed shape is closer to the truth than the raw counts
    assert np.abs(kept.values() - mean).sum() < 0.6 * np.abs(y - mean).sum()


def test_smoothed_nonprompt_eigen_variations_span_the_coefficient_covariance():
    rng = np.random.default_rng(5)
    qcd, prompt = qcd_model(), prompt_model()
    data = rng.poisson(qcd + prompt).astype(float)
    est = nonprompt_estimate(data, prompt, prompt_variance=np.zeros(data.shape))
    smooth = smooth_nonprompt(est, PT, order=3)
    assert smooth.nominal.shape == (30, N_ETA, N_CHARGE)
    assert smooth.eigen_up.shape == (30, N_ETA, N_CHARGE, 4)
    # sum_k (log up_k - log nominal)(...)^T = B cov_D B^T (the variance of log D per bin)
    shift = np.log(smooth.eigen_up) - np.log(smooth.nominal)[..., None]
    var_log = (shift**2).sum(axis=-1)
    basis = smooth.fits["C"].basis
    cov_d = sum(WEIGHTS[r] ** 2 * smooth.fits[r].covariance for r in WEIGHTS)
    expected = np.einsum("pk,...kl,pl->p...", basis, cov_d, basis)
    np.testing.assert_allclose(var_log, expected, rtol=1e-9)
    # the smoothed prediction closes on the true QCD in D within its uncertainty
    true_d = region(qcd, "D").sum()
    sigma = np.sqrt(((smooth.nominal[..., None] * shift).sum(axis=0) ** 2).sum())
    assert abs(smooth.nominal.sum() - true_d) < 3 * sigma + 0.01 * true_d


def test_smoothing_all_variations_at_once_equals_a_loop():
    n_var = 5
    data, prompt, varied = pseudo_data_and_varied_prompt(2, n_var)
    varied[..., 0] = prompt  # a variation that changes nothing
    nominal = nonprompt_estimate(data, prompt)
    together = smooth_nonprompt(nominal, PT, varied=nonprompt_estimate(data, varied))
    np.testing.assert_allclose(together.variations[..., 0], together.nominal, rtol=1e-12)
    basis = together.fits["C"].basis
    cov_d = sum(WEIGHTS[r] ** 2 * together.fits[r].covariance for r in WEIGHTS)
    var_log = np.minimum(np.einsum("pk,...kl,pl->p...", basis, cov_d, basis), 1.0)
    for v in range(n_var):
        alone = nonprompt_estimate(data, varied[..., v])
        log_d = sum(
            w
            * fit_exp_poly(
                nominal.sidebands[r], nominal.variances[r], PT, varied=alone.sidebands[r][..., None]
            ).variations.coefficients[..., 0, :]
            for r, w in WEIGHTS.items()
        )
        expected = np.exp(np.einsum("pk,...k->p...", basis, log_d) - var_log / 2)
        np.testing.assert_allclose(together.variations[..., v], expected, rtol=1e-12)


# -- systematic operations ---------------------------------------------------------------------


def test_mirror_reflects_the_up_variation_in_log_space():
    nominal = np.array([[100.0, 40.0], [10.0, 0.0]])
    up = np.array([[110.0, 30.0], [12.5, 0.0]])
    down = mirror(nominal, up)
    np.testing.assert_allclose(down, [[100.0 * 100 / 110, 40.0 * 40 / 30], [8.0, 0.0]])
    np.testing.assert_allclose(np.log(down[0] / nominal[0]), -np.log(up[0] / nominal[0]))
    # broadcast: one nominal, several one-sided variations on the last axis
    many = mirror(nominal[..., None], np.stack([up, 2 * nominal], axis=-1))
    np.testing.assert_allclose(many[..., 1], nominal / 2)


def test_symmetrise_average_and_conservative():
    nominal = np.array([100.0, 100.0, 100.0])
    up = np.array([110.0, 104.0, 100.0])
    down = np.array([94.0, 102.0, 97.0])  # normal, one-sided, only down moves
    avg_up, avg_down = symmetrise(nominal, up, down, how="average")
    np.testing.assert_allclose(avg_up, [108.0, 101.0, 101.5])
    np.testing.assert_allclose(avg_down, [92.0, 99.0, 98.5])
    con_up, con_down = symmetrise(nominal, up, down, how="conservative")
    np.testing.assert_allclose(con_up, [110.0, 104.0, 103.0])
    np.testing.assert_allclose(con_down, [90.0, 96.0, 97.0])
    with pytest.raises(ValueError, match="how"):
        symmetrise(nominal, up, down, how="largest")


def test_decorrelate_gives_one_variation_per_slice():
    nominal = np.arange(1.0, 13.0).reshape(3, 4)  # [pt, eta]
    varied = np.stack([nominal * 1.1, nominal * 0.8], axis=-1)  # 2 variations
    per_eta = decorrelate(nominal, varied, axis=1)
    assert per_eta.shape == (3, 4, 4, 2)
    for k in range(4):
        for v in range(2):
            changed = per_eta[..., k, v] != nominal
            assert changed[:, k].all() and not np.delete(changed, k, axis=1).any()
            np.testing.assert_array_equal(per_eta[:, k, k, v], varied[:, k, v])
    # the per-slice shifts add up to the correlated shift
    np.testing.assert_allclose(
        (per_eta - nominal[..., None, None]).sum(axis=-2), varied - nominal[..., None]
    )
    # slices grouping several bins: eta bins {0, 1} and {2, 3}
    halves = decorrelate(nominal, varied, axis=1, slices=[np.array([0, 1]), np.array([2, 3])])
    np.testing.assert_array_equal(halves[:, :2, 0, 0], varied[:, :2, 0])
    np.testing.assert_array_equal(halves[:, 2:, 0, 0], nominal[:, 2:])


# -- groups and normalisation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("effStat_eta12_trigger_eig1", "Muon eff. stat."),
        ("muonScale_eta3", "Muon momentum scale"),
        ("prefiringStat_eta0", "L1 prefire"),
        ("pdf17", "PDF"),
        ("qcdScaleW_muR_charge0", "W QCD scales muF, muR"),
        ("nonprompt_eta4_charge1_eig2", "Nonprompt background"),
        ("lumi", "Luminosity"),
        ("mW", "W mass"),
        ("norm_Top", "Prompt background"),
        ("pileup", "Pileup"),
    ],
)
def test_nuisances_fall_in_the_groups_of_the_seminar_table(name, group):
    assert systematic_group(name) == group


def test_mc_is_normalised_to_the_data_luminosity():
    # 1e6 generated events of 20508.9 pb seen with 100 pb^-1: each weight-1 event counts 2.05
    assert mc_scale(20508.9, 100.0, 1.0e6) == pytest.approx(2.05089, rel=1e-12)
    with pytest.raises(ValueError, match="sum of generator weights"):
        mc_scale(1.0, 1.0, 0.0)
