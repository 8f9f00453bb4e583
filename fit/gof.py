"""Goodness of fit: the saturated test of the whole fit and chi2 tests of its projections.

The NLL already has each bin's saturated value subtracted (:mod:`fit.model`), and the saturated
model sits at the global observables, so ``chi2 = 2 NLL_min``. Degrees of freedom: the unmasked
bins minus the unconstrained parameters (POIs and free normalisations), as combinetf counts them.

>>> saturated_gof(nll=5.0, nbins=12, n_unconstrained=2)["ndf"]
10

A projection (e.g. the muon pT spectrum summed over eta and charge) is tested by
:func:`projection_gof`: ``chi2 = r^T V^+ r`` of the residuals ``r = data - prediction`` of the
projected bins, with the covariance of the residuals, linearised in the parameters ``x``
(``J = d prediction / dx`` projected, ``C`` the parameters' covariance):

- pre-fit, the data are independent of the prediction: ``V = S + J C0 J^T`` (``C0``: the
  priors, unit widths of the constrained nuisances);
- post-fit, the prediction was fitted to these data: ``V = S - J C J^T``, the covariance of the
  residuals of a (linear) fit with random global observables.

``S`` is the statistical variance of the projected bins: the sum over the summed bins of
``n_b (1 + n_b / k_b)`` (Poisson at the prediction, with the Barlow-Beeston-lite MC statistics
``k_b`` effective events). ``V^+`` is the pseudo-inverse on the eigenvalues of ``S^-1/2 V
S^-1/2`` above ``rcond`` (default 0.01), and the degrees of freedom are their number. Post-fit
these eigenvalues lie in [0, 1]: a direction that an unconstrained parameter fits exactly (a
free normalisation of the whole projection) has 0 and is no degree of freedom, as in the
saturated count; so is a direction the data fix far better than the priors do (residual
variance below 1 % of the statistical one), where the linearisation with the observed-Hessian
covariance is no longer accurate (it can even come out slightly negative). Leaving out
directions keeps the sum a chi2 of the directions kept.

>>> import numpy as np
>>> g = projection_gof(np.array([110.0, 90.0]), np.array([100.0, 100.0]),
...                    np.zeros((2, 1)), np.zeros((1, 1)), stage="prefit")
>>> round(g["chi2"], 6), g["ndf"]
(2.0, 2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import special

__all__ = ["projection_gof", "projection_gofs", "saturated_gof", "stat_variance"]


def saturated_gof(nll: float, nbins: int, n_unconstrained: int) -> dict[str, float]:
    """``{"chi2", "ndf", "p_value"}`` of the saturated test."""
    chi2 = 2.0 * float(nll)
    ndf = int(nbins - n_unconstrained)
    p = _chi2_sf(chi2, ndf)
    return {"chi2": chi2, "ndf": ndf, "p_value": p}


def _chi2_sf(chi2: float, ndf: int) -> float:
    """``scipy.stats.chi2.sf`` (which is ``scipy.special.chdtrc``) without importing
    ``scipy.stats`` (seconds, for the report)."""
    return float(special.chdtrc(ndf, chi2)) if ndf > 0 else float("nan")


def stat_variance(prediction: np.ndarray, kstat: np.ndarray | None = None) -> np.ndarray:
    """Statistical variance of each bin: ``n (1 + n / k)`` (``k``: effective MC events of the
    bin, ``inf`` without Barlow-Beeston-lite), the inverse of the likelihood's curvature in
    ``n`` at ``n = d``."""
    n = np.asarray(prediction, dtype=float)
    if kstat is None:
        return n.copy()
    k = np.asarray(kstat, dtype=float)
    extra = np.divide(n * n, k, out=np.zeros_like(n), where=np.isfinite(k) & (k > 0))
    return n + extra


def projection_gof(
    data: np.ndarray,
    prediction: np.ndarray,
    jacobian: Any,
    covariance: np.ndarray,
    *,
    stat: np.ndarray | None = None,
    stage: str = "postfit",
    rcond: float = 1e-2,
) -> dict[str, float]:
    """``{"chi2", "ndf", "p_value"}`` of ``data`` against ``prediction`` in projected bins.

    ``jacobian``: ``d prediction / dx`` ``[n, K]`` (dense or scipy.sparse); ``covariance``:
    ``[K, K]`` or its diagonal ``[K]`` (post-fit: the fit's; pre-fit: the priors); ``stat``:
    the statistical variance of the projected bins (default: the prediction).
    ``stage="postfit"`` subtracts the prediction's covariance (the fit used these data),
    ``"prefit"`` adds it (module doc).
    """
    if stage not in ("prefit", "postfit"):
        raise ValueError(f"stage {stage!r}: 'prefit' or 'postfit'")
    d = np.asarray(data, dtype=float).ravel()
    n = np.asarray(prediction, dtype=float).ravel()
    s = n.copy() if stat is None else np.asarray(stat, dtype=float).ravel()
    jac = jacobian.toarray() if hasattr(jacobian, "toarray") else np.asarray(jacobian, float)
    jac = jac.reshape(len(n), -1)
    use = s > 0
    if not use.any():
        return {"chi2": float("nan"), "ndf": 0, "p_value": float("nan")}
    d, n, s, jac = d[use], n[use], s[use], jac[use]
    cov = np.asarray(covariance, dtype=float)
    pred_cov = (jac * cov) @ jac.T if cov.ndim == 1 else jac @ cov @ jac.T
    v = np.diag(s) + (pred_cov if stage == "prefit" else -pred_cov)
    w = 1.0 / np.sqrt(s)
    vw = w[:, None] * v * w[None, :]  # whitened: eigenvalues in (0, 1] post-fit
    lam, u = np.linalg.eigh(0.5 * (vw + vw.T))
    keep = lam > rcond  # in units of the statistical variance (pre-fit: all >= 1)
    z = u[:, keep].T @ ((d - n) * w)
    chi2 = float(np.sum(z * z / lam[keep]))
    ndf = int(keep.sum())
    return {"chi2": chi2, "ndf": ndf, "p_value": _chi2_sf(chi2, ndf)}


def _projector(shape: Sequence[int], keep: int) -> Any:
    """The sparse ``[shape[keep], prod(shape)]`` matrix that sums bins (C order over ``shape``)
    onto axis ``keep``."""
    import scipy.sparse as sp

    nb = int(np.prod(shape))
    rows = np.unravel_index(np.arange(nb), tuple(shape))[keep]
    return sp.csr_array((np.ones(nb), (rows, np.arange(nb))), shape=(int(shape[keep]), nb))


def projection_gofs(
    model: Any,
    result: Any,
    *,
    axes: Sequence[str] | None = None,
    jacobians: Mapping[str, Any] | None = None,
    max_bins: int = 200,
) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """The chi2 of each unmasked channel with data projected on each of its axes, pre- and
    post-fit: ``{channel: {axis: {"prefit": {chi2, ndf, p_value}, "postfit": {...}}}}``.

    ``model``: the :class:`fit.model.Model` of the fit input of ``result`` (a
    :class:`fit.result.FitResult`); ``axes``: which axis names (default: all); ``jacobians``:
    ``{"prefit": M, "postfit": M}``, ``M = model.bin_jacobian(x)`` if already computed. A channel
    with a single axis has the one projection that is itself. Projections of more than
    ``max_bins`` bins are left out (a long single axis: the saturated test covers it).
    """
    fi = model.fit_input
    cons = np.asarray(result.constrained, dtype=bool)
    x0 = np.zeros(model.K) if result.theta0 is None else np.asarray(result.theta0, float)
    points = {
        "prefit": (np.where(cons, x0, 0.0), cons.astype(float)),  # the priors' diagonal
        "postfit": (np.asarray(result.values, float), np.asarray(result.covariance, float)),
    }
    jac = dict(jacobians or {})
    kstat = np.asarray(getattr(model, "kstat", np.full(fi.nbins, np.inf)), dtype=float)
    out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for ch in fi.channels:
        if ch.masked or fi.data is None:
            continue
        names = [str(a.get("name", f"axis{i}")) for i, a in enumerate(ch.axes)]
        shape = ch.shape
        if len(names) != len(shape):
            names = ["bin"]
        data = np.asarray(fi.data, dtype=float)[ch.slice]
        per_axis: dict[str, dict[str, dict[str, float]]] = {}
        for stage, (x, cov) in points.items():
            if stage not in jac:
                jac[stage] = model.bin_jacobian(x).tocsr()
            n = model.yields(x).sum(axis=1)[ch.slice]
            stat = stat_variance(n, kstat[ch.slice])
            m = jac[stage][ch.slice]
            for i, name in enumerate(names):
                if (axes is not None and name not in axes) or shape[i] > max_bins:
                    continue
                proj = _projector(shape, i)
                per_axis.setdefault(name, {})[stage] = projection_gof(
                    proj @ data,
                    proj @ n,
                    (proj @ m).toarray(),
                    cov,
                    stat=proj @ stat,
                    stage=stage,
                )
        out[ch.name] = per_axis
    return out
