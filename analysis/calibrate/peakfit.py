"""Tag-and-probe efficiencies as fit parameters: pass and fail mass peaks fitted together, all
(eta, pT) bins of all efficiencies, data and MC, in one batched Newton call.

Model per bin (binned Poisson likelihood of the pass and fail histograms in
``MassGrid.lo``-``hi``)::

    mu_pass(m) = N eff       S(m; delta, s) + B_pass E(m; lambda_pass)
    mu_fail(m) = N (1 - eff) S(m; delta, s) + B_fail E(m; lambda_fail)

- ``S``: the MC Z -> mu mu mass shape of the same probe bin (pass and fail probes together, on
  the template grid, plus a flat 0.1% so that no bin is empty), convolved with a Gaussian of mean ``delta`` and width
  ``sqrt(twidth^2 + s^2)`` (the data/MC resolution difference), normalised in the window;
- ``E``: a falling exponential ``exp(-lambda (m - 90 GeV))``, normalised in the window;
- parameters ``theta = (N, eff, B_pass, B_fail, lambda_pass, lambda_fail, delta, s)``; weak
  Gaussian constraints keep the nuisances defined where a category has no background or
  little signal: ``lambda ~ 0.03 +- 0.05 /GeV``, ``delta ~ 0 +- 1 GeV``, ``s ~ 0 +- 1.5 GeV``.

The efficiency and its error are the fitted ``eff`` and the square root of its diagonal
element of the inverse Hessian. With a few tens of probes the smearing ``(delta, s)`` can have
local minima, so every problem is fitted from four starting points (``STARTS``: two of
``s``, each with the sidebands' background and with almost none) and the lowest NLL is kept. The gradient and
Hessian are analytic (:func:`tnp_derivatives`), the smearing kernel is cut at ``REACH`` bins,
and :func:`~analysis.calibrate.newton.batched_newton` runs the problems in chunks of
``NEWTON_CHUNK`` (docs/calibration.md, *Speed*). In MC (a pure Z -> mu mu sample) the same
model is fitted
with the background yields and the smearing fixed to zero, on effective entries (weights
scaled by ``sum w / sum w^2`` of the bin): the fit then returns the weighted pass fraction
with its binomial error. A bin is ``valid`` when its fit converged with a finite error and
it had at least ``min_fail`` failing and passing (effective) probes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.calibrate.newton import NewtonResult, batched_newton
from analysis.calibrate.peakmodel import (
    FLOOR,
    M_REF,
    N_PARAMS,
    PRIORS,
    REACH,
    SIGMA_MIN,
    poisson_weights,
    smeared_shape,
    smearing_kernel,
    tnp_derivatives,
    tnp_nll,
)
from analysis.calibrate.tnp import ProbeHistograms

__all__ = [
    "FIXABLE",
    "FLOOR",
    "M_REF",
    "N_PARAMS",
    "PRIORS",
    "REACH",
    "SIGMA_MIN",
    "EfficiencyFit",
    "fit_efficiencies",
    "poisson_weights",
    "smeared_shape",
    "smearing_kernel",
    "starting_points",
    "tnp_derivatives",
    "tnp_nll",
]

SMEAR_STARTS = (0.3, 1.2)  # GeV: starting values of ``s``; the lower NLL is kept
#: the starting points of a data problem: (``s`` in GeV, background ``b``; None: from the
#: sidebands); the converged fit with the lowest NLL is kept (see :func:`starting_points`)
STARTS = (
    (SMEAR_STARTS[0], None),
    (SMEAR_STARTS[1], None),
    (SMEAR_STARTS[1], 0.1),
    (SMEAR_STARTS[0], 0.1),
)
#: problems per compiled Newton call and iterations before regrouping the unfinished ones
#: (:func:`analysis.calibrate.newton.batched_newton`; benchmarks/tnp_speed.py)
NEWTON_CHUNK, NEWTON_FIRST_PASS = 16, 12


@dataclass
class EfficiencyFit:
    """Efficiencies ``[eta, pt]`` of one kind in data and MC, with errors and validity."""

    kind: str
    eta_edges: np.ndarray
    pt_edges: np.ndarray
    eff_data: np.ndarray
    err_data: np.ndarray
    valid_data: np.ndarray
    eff_mc: np.ndarray
    err_mc: np.ndarray
    valid_mc: np.ndarray
    probes_data: np.ndarray  # probes in the mass window
    theta_data: np.ndarray  # [eta, pt, 8] the fitted parameters (see the module doc)
    theta_mc: np.ndarray

    @property
    def sf(self) -> np.ndarray:
        return np.divide(
            self.eff_data,
            self.eff_mc,
            out=np.full_like(self.eff_data, np.nan),
            where=self.eff_mc > 0,
        )

    @property
    def sf_err(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.hypot(self.err_data / self.eff_data, self.err_mc / self.eff_mc)
        return np.abs(self.sf) * rel

    @property
    def valid(self) -> np.ndarray:
        return self.valid_data & self.valid_mc & np.isfinite(self.sf_err) & (self.sf_err > 0)


def _start(
    n_pass: np.ndarray, n_fail: np.ndarray, signal: np.ndarray, background: bool
) -> np.ndarray:
    """Starting values: signal and a flat background from the peak and the sidebands, given
    the signal shape ``signal`` (``[problem, mass bin]``, normalised in the window)."""
    n_mass = n_pass.shape[-1]
    side = np.r_[np.arange(n_mass // 6), np.arange(n_mass - n_mass // 6, n_mass)]
    f_sig = signal[:, side].sum(-1)  # signal share of the sidebands
    f_bkg = len(side) / n_mass  # flat-background share of the sidebands
    theta = np.zeros((len(n_pass), N_PARAMS))
    bkg = {}
    for name, counts in (("pass", n_pass), ("fail", n_fail)):
        total, in_side = counts.sum(-1), counts[:, side].sum(-1)
        # in_side = f_sig S + f_bkg B, total = S + B
        b = (in_side - f_sig * total) / np.maximum(f_bkg - f_sig, 1e-3) if background else 0.0
        bkg[name] = np.clip(b, 0.0, 0.5 * total)
    sig_p = np.maximum(n_pass.sum(-1) - bkg["pass"], 0.5)
    sig_f = np.maximum(n_fail.sum(-1) - bkg["fail"], 0.5)
    theta[:, 0] = sig_p + sig_f
    theta[:, 1] = np.clip(sig_p / (sig_p + sig_f), 0.02, 0.995)
    if background:
        theta[:, 2] = np.sqrt(bkg["pass"] + 0.5)
        theta[:, 3] = np.sqrt(bkg["fail"] + 0.5)
        theta[:, 7] = 0.3
    theta[:, 4:6] = PRIORS["lambda"][0]
    return theta


def starting_points(theta0: np.ndarray, free: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(rows, theta), ...]``: the problems ``rows`` started from ``theta``, one entry per
    start of :data:`STARTS` (the problems with a fixed smearing, the MC, only in the first).

    With a few hundred probes and no or little background the likelihood has several minima:
    the background yields ``b^2`` can stop at ``b = 0`` (the gradient in ``b`` vanishes there)
    while a lower minimum has some background and a wider smearing, or the reverse. Starting
    from the sideband estimate of ``b`` with a narrow and a wide smearing, and from almost no
    background with a wide and a narrow one, finds the lowest in practice
    (benchmarks/tnp_speed.py; tests/calibrate/test_tnp_minima.py)."""
    out = []
    fitted = np.flatnonzero(free[:, 7] > 0)
    for k, (s_start, b_start) in enumerate(STARTS):
        rows = np.arange(len(theta0)) if k == 0 else fitted
        theta = theta0[rows].copy()
        theta[:, 7] = np.where(free[rows, 7] > 0, s_start, theta[:, 7])
        if b_start is not None:
            theta[:, 2:4] = np.where(free[rows, 2:4] > 0, b_start, theta[:, 2:4])
        out.append((rows, theta))
    return out


def _best(a: NewtonResult, b: NewtonResult) -> NewtonResult:
    """Per problem the converged result with the lower NLL."""
    take_b = b.converged & (~a.converged | (b.nll < a.nll))
    pick = {}
    for name in ("theta", "cov", "nll", "edm", "iterations", "converged"):
        x, y = getattr(a, name), getattr(b, name)
        pick[name] = np.where(take_b.reshape(-1, *([1] * (x.ndim - 1))), y, x)
    return NewtonResult(**pick)


#: parameters of the data model that ``fit_efficiencies(fixed=...)`` can fix, by name
FIXABLE = {"lambda": (4, 5), "delta": (6,), "s": (7,)}


def fit_efficiencies(
    hists: list[ProbeHistograms],
    *,
    min_fail: float = 3.0,
    max_iter: int = 60,
    fixed: dict[str, float] | None = None,
) -> tuple[dict[str, EfficiencyFit], NewtonResult]:
    """Fit every bin of every :class:`ProbeHistograms` of ``hists``, data and MC, in one call.

    All histograms must share one :class:`MassGrid`. ``fixed``: data-model parameters held at
    a value (names of :data:`FIXABLE`; the T&P systematics' alternative shapes, e.g.
    ``{"lambda": 0.0}`` a flat background, ``{"delta": 0.0, "s": 0.0}`` the unsmeared MC). Returns ``{kind: EfficiencyFit}`` and the
    raw :class:`NewtonResult` of the problems with enough probes (ordered kind by kind, data then
    MC, bins row-major).
    """
    grid = hists[0].grid
    if any(h.grid != grid for h in hists):
        raise ValueError("all ProbeHistograms must share one MassGrid")
    _, matrix = smearing_kernel(grid, REACH)
    tpl, npass, nfail, free, theta0 = [], [], [], [], []
    for h in hists:
        n_bins = int(np.prod(h.shape))
        template = np.clip(h.template.sum(axis=2), 0.0, None).reshape(n_bins, -1)
        empty = template.sum(-1) <= 0
        template[empty] = 1.0
        template = template / template.sum(-1, keepdims=True)
        template = (1.0 - FLOOR) * template + FLOOR / template.shape[-1]
        data = h.data.reshape(n_bins, 2, -1)
        mc = h.mc.reshape(n_bins, 2, -1)
        w2 = h.mc_sumw2.reshape(n_bins, 2, -1)
        k_eff = np.divide(
            mc.sum((1, 2)), w2.sum((1, 2)), out=np.zeros(n_bins), where=w2.sum((1, 2)) > 0
        )
        mc_eff = np.clip(mc * k_eff[:, None, None], 0.0, None)
        off = round((grid.lo - grid.tlo) / grid.width)
        signal = template[:, off : off + data.shape[-1]]
        signal = signal / np.maximum(signal.sum(-1, keepdims=True), 1e-300)
        for counts, background in ((data, True), (mc_eff, False)):
            tpl.append(template)
            npass.append(counts[:, 1])
            nfail.append(counts[:, 0])
            start = _start(counts[:, 1], counts[:, 0], signal, background)
            mask = np.ones(N_PARAMS) if background else np.r_[1.0, 1.0, np.zeros(N_PARAMS - 2)]
            if background:
                for name, value in (fixed or {}).items():
                    for i in FIXABLE[name]:
                        start[:, i], mask[i] = value, 0.0
            theta0.append(start)
            free.append(np.broadcast_to(mask, (n_bins, N_PARAMS)))
    theta0 = np.concatenate(theta0)
    npass, nfail = np.concatenate(npass), np.concatenate(nfail)
    passes, fails = npass.sum(-1), nfail.sum(-1)
    enough = (passes >= min_fail) & (fails >= min_fail)
    data = {
        "smear": matrix(np.concatenate(tpl)[enough]),
        "pass": npass[enough],
        "fail": nfail[enough],
    }
    free = np.concatenate(free)[enough]
    # one batch: every problem from every start of ``starting_points``
    points = starting_points(theta0[enough], free)
    rows = [r for r, _ in points]
    rows_all = np.concatenate(rows)
    theta_all = np.concatenate([t for _, t in points])
    every = batched_newton(
        tnp_nll(grid),
        theta_all,
        {k: v[rows_all] for k, v in data.items()},
        free[rows_all],
        max_iter=max_iter,
        derivatives=tnp_derivatives(grid),
        chunk=NEWTON_CHUNK,
        first_pass=NEWTON_FIRST_PASS,
    )
    fit, first = None, 0
    for r in rows:
        part = NewtonResult(
            *(
                getattr(every, f)[first : first + len(r)]
                for f in ("theta", "cov", "nll", "edm", "iterations", "converged")
            )
        )
        first += len(r)
        if fit is None:
            fit = part
        else:  # the other start of the problems ``r``: keep the converged lower NLL
            sub = NewtonResult(
                *(
                    getattr(fit, f)[r]
                    for f in ("theta", "cov", "nll", "edm", "iterations", "converged")
                )
            )
            best = _best(sub, part)
            for f in ("theta", "cov", "nll", "edm", "iterations", "converged"):
                getattr(fit, f)[r] = getattr(best, f)
    theta = np.full_like(theta0, np.nan)
    theta[enough] = fit.theta
    eff, err = theta[:, 1], np.full(len(theta0), np.nan)
    err[enough] = fit.error(1)
    ok = np.zeros(len(theta0), bool)
    ok[enough] = fit.converged & np.isfinite(err[enough]) & (err[enough] > 0)
    out, start = {}, 0
    for h in hists:
        n = int(np.prod(h.shape))
        sl_d, sl_m = slice(start, start + n), slice(start + n, start + 2 * n)
        start += 2 * n
        shape = h.shape
        out[h.kind] = EfficiencyFit(
            kind=h.kind,
            eta_edges=np.asarray(h.binning.eta_edges, float),
            pt_edges=np.asarray(h.binning.pt_edges, float),
            eff_data=eff[sl_d].reshape(shape),
            err_data=err[sl_d].reshape(shape),
            valid_data=ok[sl_d].reshape(shape),
            eff_mc=eff[sl_m].reshape(shape),
            err_mc=err[sl_m].reshape(shape),
            valid_mc=ok[sl_m].reshape(shape),
            probes_data=(passes[sl_d] + fails[sl_d]).reshape(shape),
            theta_data=theta[sl_d].reshape(*shape, N_PARAMS),
            theta_mc=theta[sl_m].reshape(*shape, N_PARAMS),
        )
    return out, fit
