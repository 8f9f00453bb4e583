"""Mass templates free of simulation noise: the POI's variation projected and smoothed.

The mass variations are event weights of the same simulated events as the nominal, so in a
fine binning (pt x eta x charge: 2880 bins) the per-bin ratio ``up / nominal`` carries the
spread of the weights of the few events in the bin. That noise is a random direction of the
template: a fit reads it as information about the mass (the errors shrink with *less*
simulation) and, since the data do not follow it, the fitted mass is pulled towards the
reference (errors-in-variables dilution; measured in docs/validation.md: at 2M simulated
events 30% of the apparent information of the raw template is noise, at 200k events 80%).

The mass moves the muon pT spectrum (the Jacobian peak) and hardly anything else, so the
relative variation is estimated where the simulation has the statistics: in the projection
on the axes that carry the mass information (pt and charge for the W and W-like analyses,
summed over eta), smoothed along the pT axis by a polynomial fitted by weighted least squares
with weights equal to the nominal yield, then applied bin by bin to the nominal::

    up(pt, eta, q) = nominal(pt, eta, q) * exp(t(pt, q)),   t = WLS fit of log(UP / NOM)

To first order the fitted mass is unbiased whatever the polynomial degree: the fit's linear
estimator weighs each bin by its yield, and a weighted least-squares projection leaves a
residual orthogonal to the fitted template with exactly those weights. The degree only
decides how much of the information is kept (degree 8 keeps ~97% on 30 pT bins with 18
noise degrees of freedom instead of 2880).

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> nominal = rng.poisson(100.0, (30, 4, 2)).astype(float)
>>> up = nominal * np.exp(0.01 * np.linspace(-1, 1, 30))[:, None, None]
>>> rel = relative_variation(nominal, up, sum_axes=(1,), along=0, degree=3)
>>> bool(np.allclose(nominal * rel, up, rtol=1e-6))
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.polynomial import legendre

__all__ = ["MASS_TEMPLATE_DEGREE", "factorised", "relative_variation"]

#: Legendre degree of the pT smoothing of the mass templates (docs/validation.md)
MASS_TEMPLATE_DEGREE = 8


def relative_variation(
    nominal: np.ndarray,
    varied: np.ndarray,
    *,
    sum_axes: Sequence[int],
    along: int | None = 0,
    degree: int | None = MASS_TEMPLATE_DEGREE,
) -> np.ndarray:
    """``exp(t)``, broadcastable to ``nominal``: the relative variation ``t = log(varied /
    nominal)`` measured in the projection of both arrays over ``sum_axes`` and, unless
    ``degree`` is ``None``, smoothed along axis ``along`` by a Legendre polynomial of that
    degree (weighted least squares, weights = the projected nominal; the degree is lowered to
    a third of the populated bins in sparse slices). Where the projection has no yield,
    ``t = 0``.
    """
    nominal = np.asarray(nominal, dtype=float)
    varied = np.asarray(varied, dtype=float)
    if nominal.shape != varied.shape:
        raise ValueError(f"nominal {nominal.shape} and variation {varied.shape} differ in shape")
    sum_axes = tuple(sorted(a % nominal.ndim for a in sum_axes))
    n = nominal.sum(axis=sum_axes, keepdims=True)
    v = varied.sum(axis=sum_axes, keepdims=True)
    good = (n > 0) & (v > 0)
    t = np.zeros(n.shape)
    np.log(v, out=t, where=good)
    t[good] -= np.log(n[good])
    if degree is not None and along is not None:
        along = along % nominal.ndim
        if along in sum_axes:
            raise ValueError(f"axis {along} is summed and cannot be smoothed along")
        t = np.where(good, _smooth_along(t, np.where(good, n, 0.0), along, degree), 0.0)
    return np.exp(t)


def _smooth_along(t: np.ndarray, weight: np.ndarray, axis: int, degree: int) -> np.ndarray:
    """Weighted Legendre fit of ``t`` along ``axis``, independently for every other index."""
    t_moved = np.moveaxis(t, axis, -1)
    w_moved = np.moveaxis(weight, axis, -1)
    k = t_moved.shape[-1]
    x = np.linspace(-1.0, 1.0, k) if k > 1 else np.zeros(1)
    out = np.zeros_like(t_moved)
    flat_t = t_moved.reshape(-1, k)
    flat_w = w_moved.reshape(-1, k)
    flat_out = out.reshape(-1, k)
    for i in range(flat_t.shape[0]):
        used = flat_w[i] > 0
        n_used = int(used.sum())
        if n_used == 0:
            continue
        # at least ~3 populated bins per coefficient, so that a sparse slice cannot oscillate
        deg = min(degree, n_used // 3)
        coef = legendre.legfit(x[used], flat_t[i, used], deg, w=np.sqrt(flat_w[i, used]))
        flat_out[i] = legendre.legval(x, coef)
    return np.moveaxis(out, -1, axis)


def factorised(values: np.ndarray, *, axis: int, per: int | None = None) -> np.ndarray:
    """``values`` rebuilt from its two marginals: the sum over ``axis`` times the share of
    each bin of ``axis`` (``values`` summed over the other axes), separately for every bin of
    axis ``per`` (e.g. charge); both marginals are kept exactly.

    For a signal simulated with a few events per bin of a fine binning: the per-bin noise of
    the simulation biases a Poisson fit of a shape parameter (docs/validation.md), while the
    marginals have the statistics of whole rows.

    >>> x = np.array([[1.0, 3.0], [2.0, 6.0]])  # already a product: unchanged
    >>> factorised(x, axis=1).tolist()
    [[1.0, 3.0], [2.0, 6.0]]
    """
    values = np.asarray(values, dtype=float)
    keep_per = () if per is None else (per % values.ndim,)
    axis = axis % values.ndim
    others = tuple(i for i in range(values.ndim) if i != axis and i not in keep_per)
    row = values.sum(axis=axis, keepdims=True)  # the other axes' distribution
    column = values.sum(axis=others, keepdims=True)  # the distribution along ``axis``
    total = values.sum(axis=(axis, *others), keepdims=True)
    return np.divide(row * column, total, out=np.zeros(values.shape), where=total != 0)
