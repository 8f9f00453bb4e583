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
- :func:`yield_table`: pre- and post-fit yields per channel and process with their bands
  (prefit: the constraints' widths; postfit: ``M V M^T`` of the fit's covariance).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp
from scipy.linalg import lapack

from .errors import FitDidNotConverge

__all__ = ["covariance", "global_impacts", "group_impacts", "impacts", "yield_table"]


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
    aux_scale: np.ndarray | None = None,
) -> dict[str, float]:
    """Global impacts on parameter ``i`` (fit-parameter units): data_stat, groups, mc_stat, total.

    ``bin_jacobian``: ``M = dn/dx`` ``[B, K]``; ``responses`` from
    :meth:`fit.model.BinTerms.responses`. ``total`` is the quadrature sum of all sources.
    ``aux_scale``: per parameter, ``-d(grad_k)/d(x0_k)`` times the standard deviation of its
    global observable ``x0_k`` (default 1: unit Gaussians; a pyhf workspace's ``1/sigma`` and
    ``sqrt(tau/x)``, :meth:`fit.terms.TermsModel.aux_response_scale`). A group named
    ``mc_stat`` (a workspace's gammas) is added in quadrature to the Barlow-Beeston-lite term.
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
        vk = vi[idx] if aux_scale is None else vi[idx] * aux_scale[idx]
        val = float(np.sqrt(np.sum(vk**2)))
        out[str(g)] = val
        total2 += val**2
    mc = float(np.sqrt(np.sum((s * responses["d_L1_d_beta0"]) ** 2 * responses["var_beta0"])))
    out["mc_stat"] = float(np.hypot(out["mc_stat"], mc)) if "mc_stat" in out else mc
    out["total"] = float(np.sqrt(total2 + mc**2))
    return out


def yield_table(
    model: Any, fi: Any, x: np.ndarray, cov: np.ndarray | None
) -> dict[str, dict[str, Any]]:
    """Pre- and post-fit yields per channel and process, with the total per-bin uncertainties."""
    x_init = getattr(model, "x_init", None)
    x0 = np.zeros(model.K) if x_init is None else x_init
    pre = model.yields(x0)
    post = model.yields(x) if cov is not None else pre
    M0 = sp.csr_array(model.bin_jacobian(x0))
    cons = getattr(model, "prior_var", None)
    if cons is None:
        cons = model.constrained.astype(np.float64)
    pre_err = np.sqrt(np.asarray(M0.multiply(M0) @ cons).ravel())
    post_err = None
    if cov is not None:
        M = sp.csr_array(model.bin_jacobian(x))
        MV = M @ cov
        post_err = np.sqrt(np.maximum(np.asarray(M.multiply(MV).sum(axis=1)).ravel(), 0.0))
    W0 = model.yield_jacobian(x0)
    W = model.yield_jacobian(x) if cov is not None else W0
    B, P = model.B, model.P
    out = {}
    for ch in fi.channels:
        sl = ch.slice
        # sum over the channel's bins, per process: [P, B * P]
        rows = np.tile(np.arange(P), ch.nbins)
        cols = np.arange(ch.first_bin * P, (ch.first_bin + ch.nbins) * P)
        G = sp.csr_array((np.ones(cols.size), (rows, cols)), shape=(P, B * P))
        R0 = (G @ W0).toarray()
        proc_pre_err = np.sqrt(np.maximum((R0 * R0) @ cons, 0.0))
        proc_post_err = None
        if cov is not None:
            R = (G @ W).toarray()
            proc_post_err = np.sqrt(np.maximum(np.einsum("ik,ik->i", R @ cov, R), 0.0))
        d = {
            "processes": list(fi.processes),
            "axes": list(ch.axes),
            "masked": ch.masked,
            "prefit": pre[sl],
            "postfit": post[sl],
            "prefit_err": pre_err[sl],
            "postfit_err": post_err[sl] if post_err is not None else None,
            "proc_prefit": pre[sl].sum(axis=0),
            "proc_postfit": post[sl].sum(axis=0),
            "proc_prefit_err": proc_pre_err,
            "proc_postfit_err": proc_post_err,
        }
        if not ch.masked:
            d["data"] = model.data[sl]
        out[ch.name] = d
    return out
