"""Smoothing of the nonprompt background in pT: the exponential of a polynomial.

Each sideband of the extended ABCD method (:mod:`analysis.postprocess.nonprompt`) is
smoothed in pT, in every eta x charge bin and for every systematic variation, by
``f(pT) = exp(P(pT))`` with ``P`` a polynomial in ``x = pT`` scaled to [-1, 1]. ``P`` is
fitted by weighted linear least squares on ``log(y) - var(y) / (2 y**2)`` (weights
``y**2 / var(y)``, the inverse variance of ``log y``; the shift removes the O(1/n) bias that
log-space fits with weights from the counts have for Poisson-like ``var ~ y``): the normal equations are solved analytically, all slices
in one batched solve. Since ``log D = sum_r w_r log r`` (extended ABCD), the smoothed
signal-region prediction is ``exp(sum_r w_r P_r - s**2 / 2)``, with ``s**2`` the variance of
the exponent from the covariance of its polynomial coefficients ``sum_r w_r**2 cov_r``
(independent sidebands; the ``- s**2 / 2`` makes the mean of the log-normal estimate right). Its eigen-decomposition gives
one variation per eigenvector (the "Nonprompt background" nuisances), exactly linear in
log space.

Yield: a least-squares fit in log space does not conserve the sum; with ``preserve_yield``
(the default) the constant term is shifted so that the smoothed sum over pT equals the raw
(clipped at 0) sum of each slice exactly, the fit then sets only the shape. Without it the
smoothed sum agrees with the raw one within the fit's uncertainty on the sum (and, on
Poisson samples of 5 to 40 events per bin, to 0.3 % on average: tests/analysis).

>>> import numpy as np
>>> pt = np.arange(26.5, 56, 1.0)
>>> y = np.exp(5 - 0.05 * pt)[:, None]                 # [pt, 1 slice], exactly exp(poly)
>>> fit = fit_exp_poly(y, 1e-9 * y, pt, order=2)   # noise-free: tiny variances
>>> bool(np.allclose(fit.values(), y, rtol=1e-10))
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.postprocess.nonprompt import WEIGHTS, NonpromptEstimate

__all__ = [
    "ExpPolyFit",
    "SmoothNonprompt",
    "fit_exp_poly",
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
    ``valid [...]`` (enough populated bins for the fit; invalid slices evaluate to 0), and
    ``basis [n_pt, n_par]``. ``...`` are the input's axes after pT."""

    basis: np.ndarray
    coefficients: np.ndarray
    covariance: np.ndarray
    valid: np.ndarray

    def values(self, coefficients: np.ndarray | None = None) -> np.ndarray:
        """``[n_pt, ...]`` smoothed values for ``coefficients`` (default the fitted ones)."""
        c = self.coefficients if coefficients is None else coefficients
        out = np.exp(np.einsum("pk,...k->p...", self.basis, c))
        valid = self.valid.reshape(self.valid.shape + (1,) * (c.ndim - 1 - self.valid.ndim))
        return np.where(valid, out, 0.0)


def _solve(
    basis: np.ndarray, w: np.ndarray, target: np.ndarray, ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least squares per slice: ``(B^T W B) c = B^T W t``; ``[n_pt, ...]`` inputs."""
    n_par = basis.shape[1]
    m = np.einsum("p...,pk,pl->...kl", w, basis, basis)
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
    iterations: int = 2,
    preserve_yield: bool = True,
) -> ExpPolyFit:
    """Fit ``y [n_pt, ...]`` by ``exp(polynomial of pT)`` in every slice ``...``.

    The fit is iteratively reweighted: weights ``f**2 / v`` of ``log y`` with ``f`` the
    expected values, fitted target ``log y + v / (2 f**2)`` (the first-order bias of
    ``log y``), where ``v = variance - y + f`` is the variance with its Poisson part (the
    counts ``y``, e.g. data counts in a prompt-subtracted sideband) taken at the expectation,
    so that the weights do not follow the fluctuations. ``f`` is ``y`` itself in the first pass and the previous fit after it
    (``iterations`` passes in all); give ``expected`` (``[n_pt, ...]`` broadcastable to ``y``,
    e.g. the nominal fit without the variation axis of ``y``) to fit in one pass with its
    weights — the same weights for every variation. Bins with ``y <= 0`` or ``variance <= 0``
    get no weight; a slice with fewer populated bins than parameters is marked invalid.
    """
    y = np.asarray(y, dtype=float)
    variance = np.asarray(variance, dtype=float)
    if variance.ndim < y.ndim:
        variance = variance.reshape(variance.shape + (1,) * (y.ndim - variance.ndim))
    basis = pt_basis(pt, order)
    safe_y = np.where(y > 0, y, 1.0)
    if expected is None:
        ok = (y > 0) & (variance > 0)
        w = np.zeros(np.broadcast_shapes(y.shape, variance.shape))
        np.divide(y * y, variance, out=w, where=ok)
        c, cov, valid = _solve(basis, w, np.log(safe_y), ok)
        passes = iterations - 1
        expected = ExpPolyFit(basis, c, cov, valid).values()
    else:
        expected = np.asarray(expected, dtype=float)
        if expected.ndim < y.ndim:
            expected = expected.reshape(expected.shape + (1,) * (y.ndim - expected.ndim))
        passes = 1
    for _ in range(passes):
        ok = (y > 0) & (variance > 0) & (expected > 0)
        f = np.where(ok, expected, 1.0)
        # the counts' Poisson part of the variance at its expectation: var - y + f
        var = np.where(ok, np.maximum(variance - y + f, 0.1 * variance), 1.0)
        w = np.where(ok, f * f / var, 0.0)
        target = np.log(safe_y) + np.where(ok, var, 0.0) / (2.0 * f * f)
        c, cov, valid = _solve(basis, w, target, ok)
        expected = ExpPolyFit(basis, c, cov, valid).values()
    fit = ExpPolyFit(basis, c, cov, valid)
    if preserve_yield:
        raw = np.clip(y, 0, None).sum(axis=0)
        smooth = fit.values().sum(axis=0)
        shift = np.zeros(raw.shape)
        good = valid & (raw > 0) & (smooth > 0) & np.isfinite(smooth)
        np.log(raw / np.where(good, smooth, 1.0), out=shift, where=good)
        c = c.copy()
        c[..., 0] += shift
        fit = ExpPolyFit(basis, c, cov, valid & (raw > 0))
    return fit


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
) -> SmoothNonprompt:
    """Smooth every sideband in pT and combine them into the signal-region prediction.

    ``nominal``: the estimate with the nominal prompt subtraction (sidebands ``[pt, eta,
    charge]``); ``varied``: the estimate for all systematic variations at once (sidebands
    ``[pt, eta, charge, n_var]``), fitted with the nominal's weights.
    """
    fits = {
        r: fit_exp_poly(
            nominal.sidebands[r],
            nominal.variances[r],
            pt,
            order=order,
            preserve_yield=preserve_yield,
        )
        for r in WEIGHTS
    }
    valid = np.logical_and.reduce([f.valid for f in fits.values()])
    c_d = sum(WEIGHTS[r] * fits[r].coefficients for r in WEIGHTS)
    cov_d = sum(WEIGHTS[r] ** 2 * fits[r].covariance for r in WEIGHTS)
    basis = fits["C"].basis
    signal = ExpPolyFit(basis, c_d, cov_d, valid)
    # exp of a noisy log estimate is biased up by exp(var/2): the log-normal mean correction
    unbias = np.exp(-0.5 * np.einsum("pk,...kl,pl->p...", basis, cov_d, basis))
    lam, vec = np.linalg.eigh(cov_d)  # [..., k], [..., par, k]
    shifts = vec * np.sqrt(np.clip(lam, 0, None))[..., None, :]  # column k: +1 sigma along k
    eigen_up = signal.values(c_d[..., None, :] + np.swapaxes(shifts, -1, -2)) * unbias[..., None]
    variations = None
    if varied is not None:
        c_v = 0.0
        valid_v = valid[..., None]
        for r, weight in WEIGHTS.items():
            f = fit_exp_poly(
                varied.sidebands[r],
                nominal.variances[r],
                pt,
                order=order,
                expected=fits[r].values(),
                preserve_yield=preserve_yield,
            )
            c_v = c_v + weight * f.coefficients
            valid_v = valid_v & f.valid
        variations = ExpPolyFit(basis, c_v, cov_d[..., None, :, :], valid_v).values()
        variations = variations * unbias[..., None]
    return SmoothNonprompt(signal.values() * unbias, variations, eigen_up, fits)
