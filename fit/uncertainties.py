"""Covariance, traditional impacts and global impacts from the Hessian at the minimum.

- :func:`covariance`: ``V = H^-1`` (Cholesky; a Hessian that is not positive definite raises
  :class:`fit.errors.FitDidNotConverge`).
- :func:`impacts`: the traditional impact of parameter ``k`` on POI ``i``,
  ``V[i, k] / sqrt(V[k, k])``; :func:`group_impacts`: ``sqrt(V[i,G] V[G,G]^-1 V[G,i])``, the
  reduction of the POI variance when the group ``G`` is fixed.
- :func:`global_impacts`: the linear response of the POI to each independent random input of
  the likelihood, ``dx/dy = -H^-1 d(grad)/dy``, times the input's standard deviation, summed in
  quadrature per source: the data counts (variance ``n_b``, "data_stat"), the global
  observables ``x0_k`` of the Gaussian constraints (variance 1, summed per group) and the
  Barlow-Beeston-lite auxiliary observations ``beta0_b`` (variance ``1/k_b``, "mc_stat").
  **Identity**: the sum of squares over all sources is ``V H_exp V`` where ``H_exp`` is the
  expected (Fisher) information; on Asimov data ``H_exp = H``, so the sources add up in
  quadrature to the total error ``sqrt(V[i, i])`` exactly (to rounding). On observed data
  they add up to the error of the expected-information covariance, close to the total.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg as la
from scipy.linalg import lapack

from .errors import FitDidNotConverge

__all__ = ["covariance", "global_impacts", "group_impacts", "impacts"]


def covariance(hess: np.ndarray, factor: tuple[np.ndarray, bool] | None = None) -> np.ndarray:
    """``H^-1`` by Cholesky (LAPACK potrf/potri); ``factor``: an upper Cholesky factor of ``H``
    already computed (``scipy.linalg.cho_factor(H, lower=False)``, e.g. by the minimiser)."""
    if factor is not None and not factor[1]:
        c, info = factor[0], 0
    else:
        c, info = lapack.dpotrf(np.asarray(hess, dtype=np.float64), lower=0, clean=0)
    if info != 0:
        raise FitDidNotConverge(
            f"Hessian not positive definite at the minimum (leading minor {info})"
        )
    inv, info = lapack.dpotri(c, lower=0)
    if info != 0:
        raise FitDidNotConverge(f"Hessian is singular (potri info {info})")
    upper = np.triu(inv)
    return upper + np.triu(inv, 1).T


def impacts(cov: np.ndarray, i: int) -> np.ndarray:
    """Traditional impacts on parameter ``i`` of every parameter: ``V[i, k] / sqrt(V[k, k])``."""
    sd = np.sqrt(np.diag(cov))
    return cov[i] / np.where(sd > 0, sd, np.inf)


def group_impacts(
    cov: np.ndarray, i: int, groups: Sequence[str], members: np.ndarray
) -> dict[str, float]:
    """``sqrt(V[i,G] V[G,G]^-1 V[G,i])`` for each group ``G`` of the parameters in ``members``."""
    groups = np.asarray(groups)
    out = {}
    for g in dict.fromkeys(groups[members]):
        idx = np.flatnonzero((groups == g) & members)
        vig = cov[i, idx]
        sol = la.solve(cov[np.ix_(idx, idx)], vig, assume_a="pos")
        out[str(g)] = float(np.sqrt(max(vig @ sol, 0.0)))
    return out


def global_impacts(
    cov: np.ndarray,
    i: int,
    *,
    bin_jacobian,
    responses: dict[str, np.ndarray],
    groups: Sequence[str],
    constrained: np.ndarray,
) -> dict[str, float]:
    """Global impacts on parameter ``i`` (fit-parameter units): data_stat, groups, mc_stat, total.

    ``bin_jacobian``: ``M = dn/dx`` ``[B, K]``; ``responses`` from
    :meth:`fit.model.BinTerms.responses`. ``total`` is the quadrature sum of all sources.
    """
    vi = cov[i]
    s = np.asarray(bin_jacobian @ vi).ravel()  # (M V_i)_b: response of x_i per unit dL1_b
    out = {
        "data_stat": float(
            np.sqrt(np.sum((s * responses["d_L1_d_data"]) ** 2 * responses["var_data"]))
        )
    }
    groups = np.asarray(groups)
    total2 = out["data_stat"] ** 2
    for g in dict.fromkeys(groups[constrained]):
        idx = np.flatnonzero((groups == g) & constrained)
        val = float(np.sqrt(np.sum(vi[idx] ** 2)))
        out[str(g)] = val
        total2 += val**2
    mc = float(np.sqrt(np.sum((s * responses["d_L1_d_beta0"]) ** 2 * responses["var_beta0"])))
    out["mc_stat"] = mc
    out["total"] = float(np.sqrt(total2 + mc**2))
    return out
