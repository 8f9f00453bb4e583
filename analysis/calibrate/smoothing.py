"""Scale factors smoothed in pT per eta bin, with eigen-variations from the smoothing covariance.

The model of the payload format (:mod:`corrections.efficiency`): in each eta bin the SF is a
polynomial of degree ``degree`` in the scaled pT ``u = (pt - centre) / half_width`` (centre and
half width of the smoothed bins' centres); a weighted least-squares fit to the measured SFs
(weights ``1 / err^2``, invalid bins left out) gives the parameters and their covariance
``C = (A^T W A)^-1 = V diag(lambda) V^T``; eigen-variation ``k`` shifts the nominal by
``A @ (sqrt(lambda_k) V[:, k])``.

One extension: the bins below ``free_below`` (the trigger turn-on, which no low-degree
polynomial follows) are not smoothed; each has its own parameter (its measured SF) in the
same fit, so the parameter covariance, and the eigen-variations, cover them too. With
``free_below = 0`` this is exactly the documented model with ``degree + 1`` variations.

>>> sf = np.array([[0.98, 0.99, 1.0, 1.01]])
>>> s = smooth_scale_factors(sf, np.full_like(sf, 0.01), sf > 0, [20, 30, 40, 50, 60], degree=1)
>>> s.nominal.round(3).tolist(), s.shifts.shape
([[0.98, 0.99, 1.0, 1.01]], (2, 1, 4))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SmoothedScaleFactors", "smooth_scale_factors"]

FALLBACK_ERROR = 0.5  # SF error of an eta bin without a single valid measurement


@dataclass
class SmoothedScaleFactors:
    """Nominal ``[eta, pt]`` and eigen-shifts ``[k, eta, pt]`` of one scale factor."""

    pt_edges: np.ndarray
    nominal: np.ndarray
    shifts: np.ndarray
    degree: int
    free_below: float
    chi2: np.ndarray  # [eta] of the fit to the measured SFs
    ndf: np.ndarray  # [eta]

    @property
    def error(self) -> np.ndarray:
        """Total uncertainty per bin: the eigen-shifts in quadrature."""
        return np.sqrt(np.sum(self.shifts**2, axis=0))


def _design(pt_edges: np.ndarray, degree: int, free_below: float) -> np.ndarray:
    centres = 0.5 * (pt_edges[1:] + pt_edges[:-1])
    free = pt_edges[:-1] < free_below
    smooth = ~free
    if smooth.sum() == 0:
        raise ValueError("no pT bin above free_below to smooth")
    c = centres[smooth]
    lo, hi = c.min(), c.max()
    u = (centres - 0.5 * (lo + hi)) / max(0.5 * (hi - lo), 1e-12)
    poly = np.vander(u, degree + 1, increasing=True) * smooth[:, None]
    onehot = np.eye(len(centres))[:, free]
    return np.concatenate([poly, onehot], axis=1)


def smooth_scale_factors(
    sf: np.ndarray,
    err: np.ndarray,
    valid: np.ndarray,
    pt_edges: np.ndarray | list[float],
    *,
    degree: int = 2,
    free_below: float = 0.0,
) -> SmoothedScaleFactors:
    """Smooth the measured ``sf[eta, pt]`` (errors ``err``; only ``valid`` bins used)."""
    pt_edges = np.asarray(pt_edges, dtype=float)
    sf, err, valid = np.asarray(sf, float), np.asarray(err, float), np.asarray(valid, bool)
    design = _design(pt_edges, degree, free_below)
    n_eta, n_pt = sf.shape
    n_par = design.shape[1]
    nominal = np.ones((n_eta, n_pt))
    shifts = np.zeros((n_par, n_eta, n_pt))
    chi2, ndf = np.zeros(n_eta), np.zeros(n_eta, int)
    for i in range(n_eta):
        use = valid[i] & np.isfinite(sf[i]) & np.isfinite(err[i]) & (err[i] > 0)
        a = design[use]
        cols = np.flatnonzero(np.any(a != 0, axis=0))
        # keep the columns the valid bins determine: a polynomial no higher than they allow,
        # free bins only where measured (an unmeasured free bin takes the fallback below)
        poly = [c for c in cols if c <= degree][: max(int(use[design[:, 0] != 0].sum()), 0)]
        cols = np.array(poly + [c for c in cols if c > degree], dtype=int)
        if len(cols) == 0:
            shifts[0, i] = FALLBACK_ERROR
            continue
        a = a[:, cols]
        w = 1.0 / err[i, use] ** 2
        cov = np.linalg.inv(a.T @ (w[:, None] * a))
        par = cov @ (a.T @ (w * sf[i, use]))
        full = design[:, cols]
        nominal[i] = full @ par
        resid = sf[i, use] - a @ par
        chi2[i], ndf[i] = float(np.sum(w * resid**2)), int(use.sum() - len(cols))
        lam, vec = np.linalg.eigh(cov)
        for k in range(len(cols)):
            shifts[k, i] = full @ (np.sqrt(max(lam[k], 0.0)) * vec[:, k])
        # free bins without a measurement: SF 1 with the fallback error
        free_cols = np.flatnonzero(design[:, degree + 1 :].any(axis=0)) + degree + 1
        for c in free_cols:
            if c not in cols:
                b = int(np.flatnonzero(design[:, c])[0])
                nominal[i, b] = 1.0
                shifts[n_par - 1, i, b] = FALLBACK_ERROR
    return SmoothedScaleFactors(pt_edges, nominal, shifts, degree, float(free_below), chi2, ndf)
