"""Saturated goodness of fit.

The NLL already has each bin's saturated value subtracted (:mod:`fit.model`), and the saturated
model sits at the global observables, so ``chi2 = 2 NLL_min``. Degrees of freedom: the unmasked
bins minus the unconstrained parameters (POIs and free normalisations), as combinetf counts them.

>>> saturated_gof(nll=5.0, nbins=12, n_unconstrained=2)["ndf"]
10
"""

from __future__ import annotations

from scipy import stats

__all__ = ["saturated_gof"]


def saturated_gof(nll: float, nbins: int, n_unconstrained: int) -> dict[str, float]:
    """``{"chi2", "ndf", "p_value"}`` of the saturated test."""
    chi2 = 2.0 * float(nll)
    ndf = int(nbins - n_unconstrained)
    p = float(stats.chi2.sf(chi2, ndf)) if ndf > 0 else float("nan")
    return {"chi2": chi2, "ndf": ndf, "p_value": p}
