"""The uncertainty bands of the run's figures: pre- and post-fit uncertainties of projected
yields from the model's Jacobian and a covariance (``sqrt(diag(J C J^T))``), the priors'
widths before the fit, the fit's covariance after it (:class:`Bands`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from analysis.report.errors import ReportError
from analysis.report.plots import band_from_covariance

__all__ = ["Bands", "projector"]


class Bands:
    """Projected pre-/post-fit uncertainties from the model's Jacobian and a covariance."""

    def __init__(self, fit_input: Any, result: Any) -> None:
        from fit.model import Model

        self.fi = fit_input
        self.model = Model(fit_input)
        k = self.model.K
        if k != len(result.parameters):
            raise ReportError(
                f"fit input has {k} parameters, fit result {len(result.parameters)}: not its input"
            )
        x0 = np.zeros(k) if result.theta0 is None else np.asarray(result.theta0, dtype=float)
        cons = np.asarray(result.constrained, dtype=bool)
        self.points = {
            # the priors: unit widths of the constrained parameters (a diagonal, as a vector)
            "prefit": (np.where(cons, x0, 0.0), cons.astype(float)),
            "postfit": (np.asarray(result.values, float), np.asarray(result.covariance, float)),
        }
        self._jac: dict[str, Any] = {}
        self._bands: dict[tuple, np.ndarray] = {}

    def jacobian(self, stage: str) -> Any:
        if stage not in self._jac:
            x, _ = self.points[stage]
            self._jac[stage] = self.model.bin_jacobian(x).tocsr()
        return self._jac[stage]

    def process_errors(self, stage: str, channel: str) -> np.ndarray:
        """Uncertainty of each process's total yield in ``channel``, ``[P]``."""
        x, cov = self.points[stage]
        ch = self.fi.channel(channel)
        P = self.model.P
        e = self.model.yields(x)[ch.slice]  # [nb, P]
        jac = self.model.jacobian(x)[ch.first_bin * P : (ch.first_bin + ch.nbins) * P]
        # d(sum_b n_bp)/dx = sum_b e_bp J[b*P + p]: a [P, nb*P] selection-and-weight matrix
        import scipy.sparse as sp

        rows = np.tile(np.arange(P), ch.nbins)
        w = sp.csr_array((e.ravel(), (rows, np.arange(ch.nbins * P))), shape=(P, ch.nbins * P))
        return band_from_covariance((w @ jac).toarray(), cov)

    def band(self, stage: str, channel: str, shape: Sequence[int], keep: Sequence[int]):
        """Uncertainty of the channel's total yield projected onto axes ``keep``."""
        key = (stage, channel, tuple(shape), tuple(keep))
        if key not in self._bands:
            ch = self.fi.channel(channel)
            # project the sparse Jacobian first: [n_proj, K] dense, never [nbins, K]
            pj = (projector(shape, keep) @ self.jacobian(stage)[ch.slice]).toarray()
            self._bands[key] = band_from_covariance(pj, self.points[stage][1])
        return self._bands[key]


def projector(shape: Sequence[int], keep: Sequence[int]) -> Any:
    """The sparse matrix that sums flat bins (C order over ``shape``) onto the axes ``keep``
    (``[]``: the total), as :func:`~analysis.report.plots.project` does."""
    import scipy.sparse as sp

    shape = tuple(int(n) for n in shape)
    nb = int(np.prod(shape))
    idx = np.unravel_index(np.arange(nb), shape)
    kept = sorted(keep)
    if kept:
        rows = np.ravel_multi_index(tuple(idx[i] for i in kept), tuple(shape[i] for i in kept))
        n = int(np.prod([shape[i] for i in kept]))
    else:
        rows, n = np.zeros(nb, dtype=int), 1
    return sp.csr_array((np.ones(nb), (rows, np.arange(nb))), shape=(n, nb))
