"""Smoothing of the nonprompt background in pT: the exponential of a polynomial.

Each sideband of the extended ABCD method (:mod:`analysis.postprocess.nonprompt`) is
smoothed in pT, in every eta x charge bin and for every systematic variation, by
``f(pT) = exp(P(pT))`` with ``P`` a polynomial in ``x = pT`` scaled to [-1, 1]. ``P`` is
fitted by iteratively reweighted least squares in log space (the Poisson-like GLM with a
log link: every pass is an analytic weighted least-squares solve, all slices in one batched
solve, with the weights of the previous pass; empty bins take part). Since
``log D = sum_r w_r log r`` (extended ABCD), the smoothed signal-region prediction is
``exp(sum_r w_r P_r - s**2 / 2)``, with ``s**2`` the variance of the exponent from the
covariance of its coefficients ``sum_r w_r**2 cov_r`` (independent sidebands; the
``- s**2 / 2`` makes the mean of the log-normal estimate right). Its eigen-decomposition
gives one variation per eigenvector (the "Nonprompt background" nuisances), exactly linear
in log space. The systematic variations of the prompt subtraction are propagated linearly
with the nominal's weights, all at once.

Yield: with ``preserve_yield`` (the default) the constant term is shifted so that the
smoothed sum over pT equals the raw sum of each slice exactly, the fit then sets only the
shape. Without it the smoothed sum is the Poisson maximum-likelihood one: equal to the raw
sum for Poisson counts (to the convergence of the iterations, 1e-6 relative in the tests),
within the fit's uncertainty otherwise.

>>> import numpy as np
>>> pt = np.arange(26.5, 56, 1.0)
>>> y = np.exp(5 - 0.05 * pt)[:, None]                 # [pt, 1 slice], exactly exp(poly)
>>> fit = fit_exp_poly(y, 1e-9 * y, pt, order=2)       # noise-free: tiny variances
>>> bool(np.allclose(fit.values(), y, rtol=1e-10))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.postprocess.nonprompt import WEIGHTS, NonpromptEstimate

__all__ = [
    "ExpPolyFit",
    "FakeRateFit",
    "FakeRateNonprompt",
    "SmoothNonprompt",
    "fake_rate_nonprompt",
    "fit_exp_poly",
    "fit_fake_rate",
    "pt_basis",
    "smooth_nonprompt",
]


def pt_basis(pt: np.ndarray, order: int) -> np.ndarray:
    """``[n_pt, order + 1]`` powers ``x**k`` of ``pt`` scaled to [-1, 1]."""
    pt = np.asarray(pt, dtype=float)
    lo, hi = pt.min(), pt.max()
    x = 2.0 * (pt - lo) / (hi - lo) - 1.0 if hi > lo else np.zeros_like(pt)
    return np.vander(x, order + 1, increasing=True)


@dataclass
class ExpPolyFit:
    """Fitted ``exp(basis @ c)``: ``coefficients [..., n_par]``, ``covariance [..., n_par,
    n_par]`` (from the weights: exact for the inverse-variance weights of the nominal),
    ``valid [...]`` (enough populated bins for the fit; invalid slices evaluate to 0),
    ``basis [n_pt, n_par]``, and ``variations``: the fits of the variations (coefficients
    ``[..., n_var, n_par]``) when some were given. ``...`` are the input's axes after pT."""

    basis: np.ndarray
    coefficients: np.ndarray
    covariance: np.ndarray
    valid: np.ndarray
    variations: ExpPolyFit | None = None

    def values(self, coefficients: np.ndarray | None = None) -> np.ndarray:
        """``[n_pt, ...]`` smoothed values for ``coefficients`` (default the fitted ones)."""
        c = self.coefficients if coefficients is None else coefficients
        out = np.exp(np.minimum(np.einsum("pk,...k->p...", self.basis, c), 700.0))
        valid = self.valid.reshape(self.valid.shape + (1,) * (c.ndim - 1 - self.valid.ndim))
        return np.where(valid, out, 0.0)


def _solve(
    basis: np.ndarray, w: np.ndarray, target: np.ndarray, ok: np.ndarray, prior_width: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least squares per slice: ``(B^T W B + Lambda) c = B^T W t``, ``Lambda`` a
    Gaussian prior of width ``prior_width`` around 0 on the non-constant coefficients."""
    n_par = basis.shape[1]
    m = np.einsum("p...,pk,pl->...kl", w, basis, basis)
    m = m + np.diag([0.0] + [prior_width**-2] * (n_par - 1))
    rhs = np.einsum("p...,pk,p...->...k", w, basis, target)
    valid = (ok.sum(axis=0) >= n_par) & np.isfinite(m).all(axis=(-1, -2))
    m = np.where(valid[..., None, None], m, np.eye(n_par))
    cov = np.linalg.inv(m)
    return np.einsum("...kl,...l->...k", cov, rhs), cov, valid


def fit_exp_poly(
    y: np.ndarray,
    variance: np.ndarray,
    pt: np.ndarray,
    *,
    order: int = 3,
    expected: np.ndarray | None = None,
    iterations: int = 8,
    preserve_yield: bool = True,
    prior_width: float = 3.0,
    varied: np.ndarray | None = None,
) -> ExpPolyFit:
    """Fit ``y [n_pt, ...]`` by ``f = exp(polynomial of pT)`` in every slice ``...``.

    Iteratively reweighted least squares in log space: each pass solves analytically for
    the coefficients of the working response ``log f + (y - f) / f`` with weights
    ``f**2 / v``, where ``f`` is the previous pass and ``v = variance - y + f`` the variance
    with its Poisson part (the counts ``y``, e.g. data counts in a prompt-subtracted
    sideband) taken at the expectation. Empty and negative bins take part like any other
    (no bias from dropping them); with ``variance = y`` this is the Poisson
    maximum-likelihood fit. The first ``f`` is a log-space fit of the positive bins;
    ``expected`` (broadcastable to ``y``) gives it instead and fits in one pass. A slice with
    fewer populated bins than parameters, or a non-positive sum, is invalid (evaluates to 0).

    ``prior_width``: a Gaussian prior N(0, width) on the non-constant coefficients (x in
    [-1, 1]: a width of 3 allows e.g. a factor e**3 over half the pT range) keeps sparsely
    populated slices from extrapolating wildly; it is negligible where the data constrain
    the shape. ``preserve_yield``: shift the constant term so that the smoothed sum is the
    raw sum exactly.

    ``varied [n_pt, ..., n_var]``: systematic variations of ``y``, fitted at once with the
    nominal's final weights, linearised around it: the coefficients move by
    ``(B^T W B)^-1 B^T W (y_v - y) / f`` (a variation equal to ``y`` gives the nominal fit
    back exactly). Their yields are preserved like the nominal's.
    """
    y = np.asarray(y, dtype=float)
    variance = np.asarray(variance, dtype=float)
    if variance.ndim < y.ndim:
        variance = variance.reshape(variance.shape + (1,) * (y.ndim - variance.ndim))
    variance = np.broadcast_to(variance, y.shape)
    basis = pt_basis(pt, order)
    n_par = basis.shape[1]
    populated = ((y > 0).sum(axis=0) >= n_par) & (y.sum(axis=0) > 0)
    if expected is None:
        pos = y > 0
        start = _solve(basis, np.where(pos, y, 0.0), np.log(np.where(pos, y, 1.0)), pos, 3.0)
        f = ExpPolyFit(basis, start[0], start[1], start[2] & populated).values()
        passes = iterations
    else:
        expected = np.asarray(expected, dtype=float)
        expected = expected.reshape(expected.shape + (1,) * (y.ndim - expected.ndim))
        f = np.broadcast_to(expected, y.shape)
        passes = 1
    for _ in range(max(passes, 1)):
        ok = f > 0
        f_safe = np.where(ok, f, 1.0)
        v = variance - y + f_safe
        v = np.where(v > 0, v, f_safe)
        w = np.where(ok, f_safe * f_safe / v, 0.0)
        z = np.log(f_safe) + (y - f_safe) / f_safe
        c, cov, valid = _solve(basis, w, z, ok, prior_width)
        valid = valid & populated
        f = ExpPolyFit(basis, c, cov, valid).values()
    fit = ExpPolyFit(basis, c, cov, valid)
    if preserve_yield:
        fit = _preserve(fit, y)
    if varied is not None:
        varied = np.asarray(varied, dtype=float)
        rel = np.where(ok[..., None], (varied - y[..., None]) / f_safe[..., None], 0.0)
        rhs = np.einsum("p...,pk,p...v->...vk", w, basis, rel)
        c_v = c[..., None, :] + np.einsum("...kl,...vl->...vk", cov, rhs)
        var_fit = ExpPolyFit(basis, c_v, cov[..., None, :, :], valid[..., None])
        if preserve_yield:
            var_fit = _preserve(var_fit, varied)
        fit.variations = var_fit
    return fit


def _preserve(fit: ExpPolyFit, y: np.ndarray) -> ExpPolyFit:
    """``fit`` with its constant term shifted so that its sum over pT is that of ``y``."""
    raw = y.sum(axis=0)
    smooth = fit.values().sum(axis=0)
    shift = np.zeros(raw.shape)
    good = fit.valid & (raw > 0) & (smooth > 0) & np.isfinite(smooth)
    np.log(raw / np.where(good, smooth, 1.0), out=shift, where=good)
    c = fit.coefficients.copy()
    c[..., 0] += shift
    return ExpPolyFit(fit.basis, c, fit.covariance, fit.valid & (raw > 0))


@dataclass
class SmoothNonprompt:
    """The smoothed nonprompt prediction in the signal region.

    ``nominal [pt, eta, charge]``; ``variations [pt, eta, charge, n_var]`` (the systematic
    variations of the prompt subtraction, ``None`` if none were given); ``eigen_up [pt, eta,
    charge, n_par]``: the prediction with the signal-region polynomial moved by +1 sigma
    along each eigenvector of its covariance, per eta x charge bin (the down variation is
    the mirror in log space); ``fits``: the per-sideband fits of the nominal.
    """

    nominal: np.ndarray
    variations: np.ndarray | None
    eigen_up: np.ndarray
    fits: dict[str, ExpPolyFit]


def smooth_nonprompt(
    nominal: NonpromptEstimate,
    pt: np.ndarray,
    *,
    varied: NonpromptEstimate | None = None,
    order: int = 3,
    preserve_yield: bool = True,
    prior_width: float = 3.0,
) -> SmoothNonprompt:
    """Smooth every sideband in pT and combine them into the signal-region prediction.

    ``nominal``: the estimate with the nominal prompt subtraction (sidebands ``[pt, eta,
    charge]``); ``varied``: the estimate for all systematic variations at once (sidebands
    ``[pt, eta, charge, n_var]``), fitted with the nominal's weights.
    """
    kw = {"order": order, "preserve_yield": preserve_yield, "prior_width": prior_width}
    fits = {
        r: fit_exp_poly(
            nominal.sidebands[r],
            nominal.variances[r],
            pt,
            varied=None if varied is None else varied.sidebands[r],
            **kw,
        )
        for r in WEIGHTS
    }
    valid = np.logical_and.reduce([f.valid for f in fits.values()])
    c_d = sum(WEIGHTS[r] * fits[r].coefficients for r in WEIGHTS)
    cov_d = sum(WEIGHTS[r] ** 2 * fits[r].covariance for r in WEIGHTS)
    basis = fits["C"].basis
    signal = ExpPolyFit(basis, c_d, cov_d, valid)
    # exp of a noisy log estimate is biased up by exp(var/2): the log-normal mean correction
    # (capped at a variance of 1: beyond it the prior, not the data, sets the spread)
    var_log = np.einsum("pk,...kl,pl->p...", basis, cov_d, basis)
    unbias = np.exp(-0.5 * np.minimum(var_log, 1.0))
    lam, vec = np.linalg.eigh(cov_d)  # [..., k], [..., par, k]
    shifts = vec * np.sqrt(np.clip(lam, 0, None))[..., None, :]  # column k: +1 sigma along k
    eigen_up = signal.values(c_d[..., None, :] + np.swapaxes(shifts, -1, -2)) * unbias[..., None]
    variations = None
    if varied is not None:
        c_v = sum(WEIGHTS[r] * fits[r].variations.coefficients for r in WEIGHTS)
        valid_v = np.logical_and.reduce([fits[r].variations.valid for r in WEIGHTS])
        variations = ExpPolyFit(basis, c_v, cov_d[..., None, :, :], valid_v).values()
        variations = variations * unbias[..., None]
    return SmoothNonprompt(signal.values() * unbias, variations, eigen_up, fits)


@dataclass
class FakeRateFit:
    """``log f(pT) = basis @ c`` per slice (``[..., n_par]``; e.g. per charge), the fake rate
    ``pass / fail`` of a sideband pair measured in the eta-summed pT projection, with the
    covariance of ``c`` and, when variations were given, ``variations [..., n_var, n_par]``."""

    basis: np.ndarray
    coefficients: np.ndarray
    covariance: np.ndarray
    variations: np.ndarray | None = None


def fit_fake_rate(
    passing: np.ndarray,
    failing: np.ndarray,
    pass_variance: np.ndarray,
    fail_variance: np.ndarray,
    pt: np.ndarray,
    *,
    order: int = 1,
    iterations: int = 12,
    varied_pass: np.ndarray | None = None,
    varied_fail: np.ndarray | None = None,
    basis: np.ndarray | None = None,
) -> FakeRateFit:
    """The fake rate ``f = exp(P(pT))`` with ``passing ~ f * failing`` in every slice ``...``
    of ``[n_pt, ...]`` arrays (nonprompt yields after the prompt subtraction, which may be
    negative: no bin is dropped or clipped).

    Gauss-Newton on ``chi2 = sum (pass - f fail)**2 / (var_pass + f**2 var_fail)``, the
    variances taken at the previous pass, with the Poisson part of ``var_pass`` at its
    expectation ``f fail`` (so that an empty bin still counts). Variations ``[n_pt, ..., n_var]`` of both yields move the
    coefficients linearly with the nominal's Jacobian and weights. ``basis [n_rows, n_par]``
    replaces the polynomial in ``pt`` (e.g. to fit several sideband pairs stacked along the
    first axis with shared coefficients).
    """
    p = np.asarray(passing, dtype=float)
    q = np.asarray(failing, dtype=float)
    vp = np.asarray(pass_variance, dtype=float)
    vq = np.asarray(fail_variance, dtype=float)
    basis = pt_basis(pt, order) if basis is None else np.asarray(basis, dtype=float)
    n_par = basis.shape[1]
    tot_p, tot_q = p.sum(axis=0), q.sum(axis=0)
    f0 = np.where((tot_p > 0) & (tot_q > 0), tot_p / np.where(tot_q > 0, tot_q, 1.0), 0.1)
    c = np.zeros((*p.shape[1:], n_par))
    c[..., 0] = np.log(f0)

    basis_b = basis.reshape(basis.shape[0], *([1] * (p.ndim - 1)), n_par)

    def linearised(c: np.ndarray) -> tuple[np.ndarray, ...]:
        """The rate, the weights, the Jacobian of ``f fail`` and the normal matrix at ``c``;
        the Poisson part of the passing variance is taken at its expectation (f * fail), as
        in fit_exp_poly: an empty bin has variance, not none."""
        f = np.exp(np.einsum("pk,...k->p...", basis, c))
        v_pass = np.maximum(vp - p + f * q, np.maximum(f * q, 0.0)) + f * f * vq
        w = 1.0 / np.clip(v_pass, 1e-9, None)
        jac = (f * q)[..., None] * basis_b
        m = np.einsum("p...,p...k,p...l->...kl", w, jac, jac) + 1e-9 * np.eye(n_par)
        return f, w, jac, m

    for _ in range(iterations):
        f, w, jac, m = linearised(c)
        rhs = np.einsum("p...,p...k,p...->...k", w, jac, p - f * q)
        step = np.linalg.solve(m, rhs[..., None])
        c = c + step[..., 0]
        if np.max(np.abs(step)) < 1e-10:
            break
    f, w, jac, m = linearised(c)
    cov = np.linalg.inv(m)
    variations = None
    if varied_pass is not None and varied_fail is not None:
        dr = (varied_pass - p[..., None]) - f[..., None] * (varied_fail - q[..., None])
        rhs = np.einsum("p...,p...k,p...v->...vk", w, jac, dr)
        variations = c[..., None, :] + np.einsum("...kl,...vl->...vk", cov, rhs)
    return FakeRateFit(basis, c, cov, variations)


@dataclass
class FakeRateNonprompt:
    """The nonprompt prediction of :func:`fake_rate_nonprompt` in the signal region.

    ``nominal [pt, eta, charge]``; ``variations [pt, eta, charge, n_var]``; ``eigen_up
    [pt, eta, charge, n_shape]``: the pT shape (region C's smoothing and the extrapolated fake
    rate) moved by +1 sigma along each eigenvector of their per-charge covariance, common to
    every eta; ``slice_up [pt, eta, charge]``: every eta x charge slice's share of region C
    moved up by its statistical error (decorrelated per slice by the caller); ``rate [pt,
    charge]``: the extrapolated fake rate; ``fits``: the projected fits.
    """

    nominal: np.ndarray
    variations: np.ndarray | None
    eigen_up: np.ndarray
    slice_up: np.ndarray
    rate: np.ndarray
    fits: dict[str, Any]


def fake_rate_nonprompt(
    nominal: NonpromptEstimate,
    pt: np.ndarray,
    *,
    varied: NonpromptEstimate | None = None,
    order: int = 2,
    rate_order: int = 1,
    prior_width: float = 3.0,
    eta_axis: int = 1,
) -> FakeRateNonprompt:
    """Extended ABCD with smoothed fake rates: ``D(pt, eta, q) = C(pt, q) f_D(pt, q)
    share_C(eta, q)``.

    Everything whose statistics a single bin cannot carry is measured per charge in the
    eta-summed pT projection: the fake rates ``f_Bx = Bx / Ax`` (mT < 20 GeV) and ``f_B =
    B / A`` (20-40 GeV) in one fit (:func:`fit_fake_rate`), ``log f = P(pT) + s r`` with
    ``P`` a polynomial of order ``rate_order`` and ``r`` = 0, 1 for the two mT regions,
    extrapolated to the signal region at ``r = 2`` (the extended ABCD's log-linear mT
    dependence, ``f_D = f_B**2 / f_Bx``, with the pT shape shared), and region C (non-isolated,
    mT > 40 GeV) smoothed in pT by :func:`fit_exp_poly` (order ``order``). The eta
    distribution is region C's, slice by slice (``share_C``: its fraction of the charge's C
    yield). This assumes that the nonprompt pT shape does not depend on eta, which the
    closure on the QCD simulation checks (docs/validation.md); squaring per-bin ratios of
    a few events, as the per-bin method does, biases the estimate upwards instead.
    """
    sb, var = nominal.sidebands, nominal.variances

    def proj(x: np.ndarray) -> np.ndarray:
        return x.sum(axis=eta_axis)

    vsb = varied.sidebands if varied is not None else None
    # one fit of both low-mT sideband pairs: log f = P(pT) + slope * r, r = 0 (Bx/Ax), 1 (B/A)
    pt_part = pt_basis(pt, rate_order)
    n_pt = len(pt)
    joint = np.block(
        [[pt_part, np.zeros((n_pt, 1))], [pt_part, np.ones((n_pt, 1))]]
    )  # [2 n_pt, n_f]

    def stack(a: str, b: str, src: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([proj(src[a]), proj(src[b])], axis=0)

    rate = fit_fake_rate(
        stack("Bx", "B", sb),
        stack("Ax", "A", sb),
        stack("Bx", "B", var),
        stack("Ax", "A", var),
        pt,
        basis=joint,
        varied_pass=None if vsb is None else stack("Bx", "B", vsb),
        varied_fail=None if vsb is None else stack("Ax", "A", vsb),
    )
    # the signal region is r = 2
    basis_f = np.concatenate([pt_part, np.full((n_pt, 1), 2.0)], axis=1)
    fit_c = fit_exp_poly(
        proj(sb["C"]),
        proj(var["C"]),
        pt,
        order=order,
        prior_width=prior_width,
        varied=None if vsb is None else proj(vsb["C"]),
    )
    basis_c = fit_c.basis
    n_f, n_c = basis_f.shape[1], basis_c.shape[1]
    # the pT shape: log D_q(pt) = [basis_c | basis_f] @ [c_C ; c_rate], per charge
    basis = np.concatenate([basis_c, basis_f], axis=1)
    coef = np.concatenate([fit_c.coefficients, rate.coefficients], axis=-1)
    n_q = coef.shape[0]
    cov = np.zeros((n_q, n_c + n_f, n_c + n_f))
    cov[:, :n_c, :n_c] = fit_c.covariance
    cov[:, n_c:, n_c:] = rate.covariance
    valid = fit_c.valid

    def shape(c: np.ndarray) -> np.ndarray:  # [q, ..., k] -> [pt, q, ...]
        return np.where(
            valid.reshape(valid.shape + (1,) * (c.ndim - 2)),
            np.exp(np.minimum(np.einsum("pk,...k->p...", basis, c), 700.0)),
            0.0,
        )

    # region C's share per eta bin (the yield of a slice over the charge's yield)
    c_eta = np.clip(sb["C"].sum(axis=0), 0, None)  # [eta, q]
    c_tot = c_eta.sum(axis=0)
    share = np.divide(c_eta, c_tot, out=np.zeros_like(c_eta), where=c_tot > 0)
    share_err = np.divide(
        np.sqrt(np.clip(var["C"].sum(axis=0), 0, None)),
        c_tot,
        out=np.zeros_like(c_eta),
        where=c_tot > 0,
    )
    nominal_d = shape(coef)[:, None, :] * share[None]
    lam, vec = np.linalg.eigh(cov)  # [q, k], [q, k, k]
    eigen_up = np.empty((*nominal_d.shape, n_q * (n_c + n_f)))
    for qi in range(n_q):
        for k in range(n_c + n_f):
            shifted = coef.copy()
            shifted[qi] += vec[qi, :, k] * np.sqrt(max(lam[qi, k], 0.0))
            eigen_up[..., qi * (n_c + n_f) + k] = shape(shifted)[:, None, :] * share[None]
    slice_up = shape(coef)[:, None, :] * (share + share_err)[None]
    variations = None
    if varied is not None:
        coef_v = np.concatenate(
            [fit_c.variations.coefficients, rate.variations],
            axis=-1,
        )  # [q, var, k]
        c_eta_v = np.clip(vsb["C"].sum(axis=0), 0, None)  # [eta, q, var]
        tot_v = c_eta_v.sum(axis=0)
        share_v = np.divide(c_eta_v, tot_v, out=np.zeros_like(c_eta_v), where=tot_v > 0)
        variations = shape(coef_v)[:, None] * share_v[None]
    return FakeRateNonprompt(
        nominal_d,
        variations,
        eigen_up,
        slice_up,
        np.exp(np.einsum("pk,...k->p...", basis_f, coef[..., n_c:])),
        {"C": fit_c, "rate": rate},
    )
