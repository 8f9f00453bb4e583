"""The pieces of the calibration on inputs with a known answer (no generated sample)."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.calibrate import batched_newton, smooth_scale_factors
from analysis.calibrate.peakfit import REACH, smearing_kernel, tnp_derivatives, tnp_nll
from analysis.calibrate.tnp import MassGrid


def _gauss_nll(theta, data):
    return 0.5 * ((theta[0] - data["x"]) / data["s"]) ** 2 + 0.5 * (theta[1] - 2 * data["x"]) ** 2


def test_batched_newton_minimum_and_covariance():
    x = np.array([0.5, -1.0, 3.0])
    fit = batched_newton(_gauss_nll, np.zeros((3, 2)), {"x": x, "s": np.array([1.0, 2.0, 0.5])})
    assert fit.converged.all()
    np.testing.assert_allclose(fit.theta, np.stack([x, 2 * x], axis=1), atol=1e-9)
    np.testing.assert_allclose(fit.error(0), [1.0, 2.0, 0.5], rtol=1e-9)
    np.testing.assert_allclose(fit.error(1), 1.0, rtol=1e-9)


def test_batched_newton_fixed_parameters_stay():
    fit = batched_newton(
        _gauss_nll,
        np.array([[0.0, 7.0]]),
        {"x": np.array([1.0]), "s": np.array([1.0])},
        free=np.array([1.0, 0.0]),
    )
    assert fit.theta[0, 1] == 7.0 and fit.cov[0, 1, 1] == 0.0
    assert abs(fit.theta[0, 0] - 1.0) < 1e-6


def test_smearing_kernel_is_the_box_gaussian_integral():
    from scipy.integrate import quad
    from scipy.stats import norm

    grid = MassGrid()
    kernel, matrix = smearing_kernel(grid)
    t = np.random.default_rng(2).random(len(grid.template_edges) - 1)
    got = matrix(t) @ np.asarray(kernel(0.3, 0.8))
    j = 30
    lo = grid.edges[j]

    def bin_prob(a):
        return quad(
            lambda x: norm.cdf((lo + 1 - x - 0.3) / 0.8) - norm.cdf((lo - x - 0.3) / 0.8), a, a + 1
        )[0]

    want = sum(tk * bin_prob(a) for tk, a in zip(t, grid.template_edges[:-1], strict=True))
    assert got[j] == pytest.approx(want, rel=1e-10)


def test_tag_and_probe_fit_recovers_a_known_efficiency():
    """Pass/fail peaks drawn from the model itself: the fitted efficiencies scatter around the
    true one with the fitted errors (pull mean ~0, width ~1) over 200 bins fitted at once."""
    grid = MassGrid()
    centres = 0.5 * (grid.template_edges[1:] + grid.template_edges[:-1])
    template = 1.0 / ((centres - 91.19) ** 2 + 1.25**2)
    template /= template.sum()
    kernel, matrix = smearing_kernel(grid, REACH)
    rng = np.random.default_rng(5)
    n_bins, eff, n_sig = 200, 0.9, 2000.0
    sig = matrix(template) @ np.asarray(kernel(0.0, 1.0))
    sig /= sig.sum()
    mass = 0.5 * (grid.edges[1:] + grid.edges[:-1])
    bkg = np.exp(-0.03 * (mass - 90.0))
    bkg /= bkg.sum()
    n_pass = rng.poisson(n_sig * eff * sig + 50 * bkg, (n_bins, len(sig))).astype(float)
    n_fail = rng.poisson(n_sig * (1 - eff) * sig + 100 * bkg, (n_bins, len(sig))).astype(float)
    theta0 = np.tile([n_sig, 0.8, 5.0, 5.0, 0.03, 0.03, 0.0, 0.5], (n_bins, 1))
    data = {"smear": matrix(np.tile(template, (n_bins, 1))), "pass": n_pass, "fail": n_fail}
    fit = batched_newton(tnp_nll(grid), theta0, data, derivatives=tnp_derivatives(grid))
    assert fit.converged.mean() > 0.97
    pull = (fit.theta[fit.converged, 1] - eff) / fit.error(1)[fit.converged]
    assert abs(pull.mean()) < 0.25
    assert 0.8 < pull.std() < 1.2


def test_smoothing_eigen_variations_are_the_fit_covariance():
    pt_edges = np.array([26, 30, 35, 40, 45, 50, 56.0])
    c = 0.5 * (pt_edges[1:] + pt_edges[:-1])
    truth = 0.98 + 0.001 * (c - 40) - 2e-5 * (c - 40) ** 2
    err = np.full((2, 6), 0.004)
    sf = np.stack([truth, truth]) + np.random.default_rng(1).normal(0, 0.004, (2, 6))
    s = smooth_scale_factors(sf, err, np.ones((2, 6), bool), pt_edges, degree=2)
    u = (c - 0.5 * (c.min() + c.max())) / (0.5 * (c.max() - c.min()))
    a = np.vander(u, 3, increasing=True)
    cov = np.linalg.inv(a.T @ a / 0.004**2)
    np.testing.assert_allclose(s.error[0], np.sqrt(np.diag(a @ cov @ a.T)), rtol=1e-10)
    np.testing.assert_allclose(s.nominal[0], a @ (cov @ (a.T @ sf[0] / 0.004**2)), rtol=1e-12)
    assert s.shifts.shape == (3, 2, 6) and s.ndf.tolist() == [3, 3]


def test_smoothing_keeps_the_turn_on_bins_free():
    pt_edges = np.array([24, 25, 26, 28, 30, 35, 41, 47, 55.0])
    sf = np.array([[0.7, 0.8, 0.93, 0.99, 0.985, 0.985, 0.985, 0.985]])
    s = smooth_scale_factors(
        sf, np.full_like(sf, 0.01), np.ones_like(sf, bool), pt_edges, degree=1, free_below=30
    )
    np.testing.assert_allclose(s.nominal[0, :4], sf[0, :4], atol=1e-12)  # free: as measured
    np.testing.assert_allclose(s.nominal[0, 4:], 0.985, atol=1e-12)
    assert len(s.shifts) == 2 + 4
    np.testing.assert_allclose(s.error[0, :4], 0.01, rtol=1e-10)


def _tnp_problems(n_bins: int, seed: int):
    """``n_bins`` pass/fail peaks (a few hundred probes, a little background) drawn from the
    model, and the data dict of :func:`tnp_nll`."""
    grid = MassGrid()
    centres = 0.5 * (grid.template_edges[1:] + grid.template_edges[:-1])
    template = 1.0 / ((centres - 91.19) ** 2 + 1.25**2)
    template /= template.sum()
    kernel, matrix = smearing_kernel(grid, REACH)
    sig = matrix(template) @ np.asarray(kernel(0.2, 0.8))
    sig /= sig.sum()
    mass = 0.5 * (grid.edges[1:] + grid.edges[:-1])
    bkg = np.exp(-0.03 * (mass - 90.0))
    bkg /= bkg.sum()
    rng = np.random.default_rng(seed)
    n_pass = rng.poisson(400 * 0.92 * sig + 15 * bkg, (n_bins, len(sig))).astype(float)
    n_fail = rng.poisson(400 * 0.08 * sig + 10 * bkg, (n_bins, len(sig))).astype(float)
    data = {"smear": matrix(np.tile(template, (n_bins, 1))), "pass": n_pass, "fail": n_fail}
    theta0 = np.tile([400.0, 0.8, 3.0, 3.0, 0.03, 0.03, 0.0, 0.5], (n_bins, 1))
    return grid, data, theta0


def test_analytic_derivatives_equal_autodiff():
    import jax

    grid, data, theta0 = _tnp_problems(3, 11)
    nll, derivs = tnp_nll(grid), tnp_derivatives(grid)
    for b, theta in enumerate([theta0[0], np.array([380.0, 0.93, 2.0, 1.5, 0.01, 0.06, 0.4, 1.1])]):
        one = {k: v[b] for k, v in data.items()}
        g, h = derivs(theta, one)
        np.testing.assert_allclose(g, jax.grad(nll)(theta, one), rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(h, jax.hessian(nll)(theta, one), rtol=1e-9, atol=1e-7)


def test_batched_fit_equals_one_iminuit_fit_per_bin():
    """The vectorised Newton (chunks, analytic Hessian) and MIGRAD + HESSE on each bin alone
    find the same efficiency within 0.1 sigma and the same error within 5%."""
    import jax
    from iminuit import Minuit

    grid, data, theta0 = _tnp_problems(6, 12)
    nll = tnp_nll(grid)
    fit = batched_newton(nll, theta0, data, derivatives=tnp_derivatives(grid), chunk=4)
    assert fit.converged.all()
    f = jax.jit(nll)

    def fcn(one):
        return lambda t: float(f(np.asarray(t), one))

    for b in range(len(theta0)):
        m = Minuit(fcn({k: v[b] for k, v in data.items()}), theta0[b])
        m.errordef = Minuit.LIKELIHOOD
        m.migrad()
        m.hesse()
        assert m.valid
        assert abs(m.fval - fit.nll[b]) < 1e-3
        assert abs(fit.theta[b, 1] - m.values[1]) < 0.1 * m.errors[1]
        assert fit.error(1)[b] == pytest.approx(m.errors[1], rel=0.05)
