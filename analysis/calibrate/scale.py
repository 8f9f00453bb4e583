"""Muon momentum scale per eta bin from the Z -> mu mu mass peak in data and MC.

Selection: the Z selection of the histmaker (two tight, isolated muons of opposite charge, no
other loose muon, the trigger). The pairs are split into cells ``(eta_1, eta_2)`` of the two
muons' eta bins (unordered, ``i <= j``). In the massless limit the pair mass scales as
``sqrt((1 + s_i)(1 + s_j))`` when the muon momenta are biased by ``1 + s(eta)``, so in
``log m`` the data peak of cell ``(i, j)`` sits ``(x_i + x_j) / 2`` above the MC peak, with
``x = log(1 + s)``.

1. **Peak position per cell**, in data and in MC separately: the ``log m`` histogram
   (``LOG_GRID``, ~78-106 GeV in bins of 0.005, ~0.46 GeV) is fitted with a Breit-Wigner at
   ``(m_Z, Gamma_Z)`` translated by ``delta`` and smeared by a Gaussian of free width (the
   box-Gaussian kernel of :func:`analysis.calibrate.peakfit.smearing_kernel`), parameters
   ``(N, delta, s)``; all cells, data and MC, in one
   :func:`~analysis.calibrate.newton.batched_newton` call (MC on effective entries). The
   model is not the exact line shape, but it is the same in data and MC, so its imperfection
   cancels in ``delta_data - delta_mc``, whose error is the two fit errors in quadrature. (A
   template made of the MC events of each cell was tried first: with ~100 MC pairs per cell
   its spikes made the per-cell errors 2-4x too small.)
2. **Per-eta scale**: weighted linear least squares of ``delta_data - delta_mc =
   (x_i + x_j) / 2`` over the cells, covariance ``(A^T W A)^-1``; ``s = exp(x) - 1``.

>>> edges = np.linspace(-2.4, 2.4, 25)  # the generator's SCALE_ETA_EDGES
>>> meas = measure_scale(data_pairs, mc_pairs, edges)  # doctest: +SKIP
>>> meas.bias, meas.error  # doctest: +SKIP
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from analysis.calibrate.events import Dimuons
from analysis.calibrate.newton import batched_newton
from analysis.calibrate.peakmodel import poisson_weights, smeared_shape, smearing_kernel
from analysis.calibrate.tnp import MassGrid, dimuon_mass
from analysis.constants import GAMMA_Z, MZ_REF

__all__ = ["DEFAULT_SCALE_EDGES", "LOG_GRID", "ScaleMeasurement", "measure_scale", "z_pairs"]

#: the generator's momentum-scale binning (``SCALE_ETA_EDGES``): 24 bins of 0.2 in eta
DEFAULT_SCALE_EDGES = np.linspace(-2.4, 2.4, 25)
_C = float(np.log(MZ_REF))
#: log(m) grid: fit 30 bins either side of log(mZ) in 0.005 (~0.46 GeV), template 50
LOG_GRID = MassGrid(lo=_C - 0.15, hi=_C + 0.15, width=0.005, tlo=_C - 0.25, thi=_C + 0.25)
SIGMA_MIN = 1e-4  # in log(m): the smearing width at s = 0
REACH = 24  # bins of LOG_GRID (0.12 in log m): the kernel's half width, > 5 x the resolution
M_Z = MZ_REF  # GeV, analysis.constants (GAMMA_Z is imported from there)


@dataclass
class ScaleMeasurement:
    """The per-eta relative scale bias ``s`` (data pT = true pT x (1 + s)) and its errors."""

    eta_edges: np.ndarray
    bias: np.ndarray  # [eta]
    cov: np.ndarray  # [eta, eta] covariance of ``bias``
    cells: np.ndarray  # [n_cells, 2] the (i, j) eta bins of the fitted cells
    delta: np.ndarray  # [n_cells] fitted log-mass shifts
    delta_err: np.ndarray
    n_data: np.ndarray  # [n_cells] data pairs in the fit window
    chi2: float  # of the least-squares combination
    ndf: int

    @property
    def error(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    def correct(self, eta: np.ndarray, pt: np.ndarray) -> np.ndarray:
        """The data pT corrected: ``pt / (1 + s(eta))`` (clamped to the edge bins)."""
        i = np.clip(np.searchsorted(self.eta_edges, eta, side="right") - 1, 0, len(self.bias) - 1)
        return pt / (1.0 + self.bias[i])


def z_pairs(d: Dimuons, iso_max: float | None = None) -> np.ndarray:
    """Mask of the pairs passing the Z selection of the histmaker (see the module doc)."""
    from processors.selection import MuonCuts

    iso_max = MuonCuts().iso_max if iso_max is None else iso_max
    return (
        d.tight[:, 0]
        & d.tight[:, 1]
        & (d.iso[:, 0] < iso_max)
        & (d.iso[:, 1] < iso_max)
        & (d.charge[:, 0] * d.charge[:, 1] < 0)
        & ~d.extra_veto
        & d.hlt
    )


def breit_wigner(grid: MassGrid) -> np.ndarray:
    """The Z Breit-Wigner integrated over the template bins of the ``log m`` grid."""
    m = np.exp(grid.template_edges)
    cdf = np.arctan((m - M_Z) / (0.5 * GAMMA_Z)) / np.pi
    return np.diff(cdf)


@functools.cache
def _peak_nll(grid: MassGrid):
    import jax.numpy as jnp

    kernel, matrix = smearing_kernel(grid, REACH)
    # the same Breit-Wigner template for every cell: one constant matrix
    smear = jnp.asarray(matrix(breit_wigner(grid)))

    def nll(theta, data):
        n, delta, s = theta
        shape = smear @ kernel(delta, jnp.sqrt(SIGMA_MIN**2 + s**2))
        mu = n * shape / jnp.sum(shape)
        bad = jnp.any((mu < 0) | ((mu <= 0) & (data["n"] > 0)))
        safe = jnp.where(mu > 0, mu, 1.0)
        terms = jnp.where(mu > 0, mu - data["n"] * jnp.log(safe), 0.0)
        return jnp.sum(terms) + jnp.where(bad, jnp.inf, 0.0)

    return nll


@functools.cache
def _peak_derivatives(grid: MassGrid):
    """Analytic gradient and Hessian of :func:`_peak_nll`: ``mu = N sig(delta, s)``."""
    import jax.numpy as jnp

    _, matrix = smearing_kernel(grid, REACH)
    smear = jnp.asarray(matrix(breit_wigner(grid)))
    shape = smeared_shape(grid, SIGMA_MIN, REACH)

    def derivatives(theta, data):
        n, delta, s = theta
        sig, sig1, sig2 = shape(smear, delta, s)
        jac = jnp.concatenate([sig[:, None], n * sig1], axis=1)  # [bin, 3]
        w, c = poisson_weights(n * sig, data["n"])
        hess = (jac.T * c) @ jac
        second = jnp.zeros((3, 3))
        second = second.at[0, 1:].set(w @ sig1).at[1:, 0].set(w @ sig1)
        second = second.at[1:, 1:].set(n * jnp.einsum("i,iab->ab", w, sig2))
        return w @ jac, hess + second

    return derivatives


def _cells(d: Dimuons, edges: np.ndarray) -> np.ndarray:
    n = len(edges) - 1
    ib = np.clip(np.searchsorted(edges, d.eta, side="right") - 1, 0, n - 1)
    lo, hi = np.minimum(ib[:, 0], ib[:, 1]), np.maximum(ib[:, 0], ib[:, 1])
    return lo * n + hi


def measure_scale(
    data: Dimuons,
    mc: Dimuons,
    eta_edges: np.ndarray = DEFAULT_SCALE_EDGES,
    *,
    min_pairs: float = 10.0,
    grid: MassGrid = LOG_GRID,
) -> ScaleMeasurement:
    """Fit the peak shift of every ``(eta_1, eta_2)`` cell and solve for the per-eta scale."""
    eta_edges = np.asarray(eta_edges, dtype=float)
    n_eta = len(eta_edges) - 1
    n_cells = n_eta * n_eta
    hists = {}
    for name, pairs, edges in (
        ("data", data, grid.edges),
        ("mc", mc, grid.edges),
        ("mc_w2", mc, grid.edges),
    ):
        sel = pairs.subset(z_pairs(pairs))
        logm = np.log(np.maximum(dimuon_mass(sel, sel.pt), 1e-9))
        w = sel.weight**2 if name == "mc_w2" else sel.weight
        h, _, _ = np.histogram2d(
            _cells(sel, eta_edges), logm, bins=(np.arange(n_cells + 1) - 0.5, edges), weights=w
        )
        hists[name] = h
    n_data = hists["data"].sum(-1)
    sw, sw2 = hists["mc"].sum(-1), hists["mc_w2"].sum(-1)
    k_eff = np.divide(sw, sw2, out=np.zeros(n_cells), where=sw2 > 0)
    mc_eff = np.clip(hists["mc"] * k_eff[:, None], 0.0, None)
    n_mc = mc_eff.sum(-1)
    i, j = np.divmod(np.arange(n_cells), n_eta)
    use = (i <= j) & (n_data >= min_pairs) & (n_mc >= min_pairs)
    n_use = int(use.sum())
    counts = np.concatenate([hists["data"][use], mc_eff[use]])
    theta0 = np.stack([counts.sum(-1), np.zeros(2 * n_use), np.full(2 * n_use, 0.01)], axis=1)
    fit = batched_newton(
        _peak_nll(grid), theta0, {"n": counts}, derivatives=_peak_derivatives(grid)
    )
    good = fit.converged & np.isfinite(fit.error(1)) & (fit.error(1) > 0)
    ok = good[:n_use] & good[n_use:]
    delta = fit.theta[:n_use, 1][ok] - fit.theta[n_use:, 1][ok]
    err = np.hypot(fit.error(1)[:n_use][ok], fit.error(1)[n_use:][ok])
    cells = np.stack([i[use][ok], j[use][ok]], axis=1)
    design = np.zeros((len(delta), n_eta))
    np.add.at(design, (np.arange(len(delta)), cells[:, 0]), 0.5)
    np.add.at(design, (np.arange(len(delta)), cells[:, 1]), 0.5)
    wts = 1.0 / err**2
    normal = design.T @ (wts[:, None] * design)
    # an eta bin without any cell keeps x = 0 with a unit (i.e. unconstrained) error
    empty = np.diag(normal) == 0
    normal[empty, empty] = 1.0
    cov_x = np.linalg.inv(normal)
    x = cov_x @ (design.T @ (wts * delta))
    resid = delta - design @ x
    jac = np.diag(np.exp(x))  # s = exp(x) - 1
    return ScaleMeasurement(
        eta_edges=eta_edges,
        bias=np.expm1(x),
        cov=jac @ cov_x @ jac,
        cells=cells,
        delta=delta,
        delta_err=err,
        n_data=n_data[use][ok],
        chi2=float(np.sum(wts * resid**2)),
        ndf=int(len(delta) - (~empty).sum()),
    )
