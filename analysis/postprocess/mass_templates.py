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

__all__ = [
    "MASS_TEMPLATE_DEGREE",
    "SIGNAL_CORRELATION_DEGREE",
    "SIGNAL_TEMPLATES",
    "correlated",
    "factorised",
    "relative_variation",
]

#: Legendre degree of the pT smoothing of the mass templates (docs/validation.md)
MASS_TEMPLATE_DEGREE = 8
#: Legendre degree in pT of the signal's pT-eta correlation per eta x charge slice
SIGNAL_CORRELATION_DEGREE = 4
#: how the nominal of a process with a mass POI is built (``setup-fit --signal-template``)
SIGNAL_TEMPLATES = ("correlated", "factorised", "raw")


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


def correlated(
    values: np.ndarray,
    *,
    axis: int,
    along: int,
    per: int | None = None,
    degree: int = SIGNAL_CORRELATION_DEGREE,
    prior: float = 1.0,
    iterations: int = 10,
) -> np.ndarray:
    """The :func:`factorised` template with the correlation between ``along`` and ``axis``
    put back smoothly: in every slice of ``axis`` (and of ``per``), ``values`` is fitted as
    the factorised template times ``exp(P(x))``, ``P`` a Legendre polynomial of ``degree``
    along ``along`` (a Poisson regression with the factorised template as offset, so the
    template is positive and every slice keeps its sum; the non-constant coefficients have a
    Gaussian prior of width ``prior``, which only matters for nearly empty slices); the
    product is then rescaled, alternately along the two marginals, until both equal those of
    ``values`` again (iterative proportional fitting).

    For a W signal in pt x eta x charge: the pT spectrum is not the same in every eta bin
    (resolution, acceptance and efficiencies depend on eta), which the factorised template
    gives up and the fit then absorbs with nuisances that move the mass (docs/validation.md);
    the per-bin noise of the simulation, which pulls the mass low where the simulation is
    thin, enters only through ``degree + 1`` coefficients per slice, and the template has no
    empty bin where the factorised one has none.

    >>> rng = np.random.default_rng(2)
    >>> pt = np.linspace(-1, 1, 30)[:, None]
    >>> eta = np.linspace(-1, 1, 8)[None, :]
    >>> truth = 1000.0 * np.exp(-(pt**2) / (0.5 + 0.2 * eta**2))  # pT shape depends on eta
    >>> sample = rng.poisson(truth).astype(float)
    >>> def chi2(template):
    ...     return float(((template - truth) ** 2 / truth).sum())
    >>> chi2(correlated(sample, axis=1, along=0)) < chi2(factorised(sample, axis=1)) / 4
    True
    >>> bool(np.allclose(correlated(sample, axis=1, along=0).sum(axis=1), sample.sum(axis=1)))
    True
    """
    values = np.asarray(values, dtype=float)
    axis, along = axis % values.ndim, along % values.ndim
    if axis == along:
        raise ValueError(f"axis {axis} cannot also be the axis {along} that is smoothed along")
    keep_per = () if per is None else (per % values.ndim,)
    base = factorised(values, axis=axis, per=per)
    out = base * _poisson_log_ratio(values, base, along, degree, prior)
    # the two marginals that factorised() keeps exactly, kept again
    others_of = {
        ax: tuple(i for i in range(values.ndim) if i != ax and i not in keep_per)
        for ax in (axis, along)
    }
    for _ in range(iterations):
        for summed in (others_of[axis], others_of[along]):  # axis x per, then along x per
            target = values.sum(axis=summed, keepdims=True)
            now = out.sum(axis=summed, keepdims=True)
            out *= np.divide(target, now, out=np.ones(now.shape), where=now > 0)
    return out


def _poisson_log_ratio(
    counts: np.ndarray, offset: np.ndarray, axis: int, degree: int, prior: float
) -> np.ndarray:
    """``exp(P(x))`` along ``axis`` for every other index: the Poisson regression ``counts ~
    offset * exp(P(x))`` with ``P`` a Legendre polynomial in ``x`` in [-1, 1] (Newton steps,
    all slices at once; the degree is lowered to a third of a slice's non-empty bins; a
    Gaussian prior of width ``prior`` on the non-constant coefficients). Slices without
    counts get 1."""
    y_moved = np.moveaxis(np.clip(counts, 0.0, None), axis, -1)
    shape = y_moved.shape
    k = shape[-1]
    y = y_moved.reshape(-1, k)
    b = np.moveaxis(offset, axis, -1).reshape(-1, k)
    basis = legendre.legvander(np.linspace(-1.0, 1.0, k) if k > 1 else np.zeros(1), degree)
    n_coef = basis.shape[1]
    precision = np.zeros((y.shape[0], n_coef))
    precision[:, 1:] = 1.0 / prior**2
    usable = np.minimum(degree, ((y > 0) & (b > 0)).sum(axis=1) // 3)
    precision[np.arange(n_coef)[None, :] > usable[:, None]] = 1e12  # coefficients left out
    fitted = (y.sum(axis=1) > 0) & (b.sum(axis=1) > 0)
    coef = np.zeros((y.shape[0], n_coef))
    coef[fitted, 0] = np.log(y[fitted].sum(axis=1) / b[fitted].sum(axis=1))
    for _ in range(50):
        mu = b * np.exp(coef @ basis.T)
        grad = (y - mu) @ basis - precision * coef
        hess = np.einsum("sk,kp,kq->spq", mu, basis, basis)
        hess[:, np.arange(n_coef), np.arange(n_coef)] += precision
        hess[~fitted] = np.eye(n_coef)
        grad[~fitted] = 0.0
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        # at most a factor e per bin and step, so that a sparse slice cannot overshoot
        largest = np.abs(step @ basis.T).max(axis=1, keepdims=True)
        coef += step / np.maximum(largest, 1.0)
        if largest.max() < 1e-10:
            break
    ratio = np.where(fitted[:, None], np.exp(coef @ basis.T), 1.0)
    return np.moveaxis(ratio.reshape(shape), -1, axis)
