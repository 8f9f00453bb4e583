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
local minima, so every problem is fitted from three starting points (``STARTS``: two of
``s``, and one with almost no background) and the lowest NLL is kept. The gradient and
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

import functools
from dataclasses import dataclass

import numpy as np

from analysis.calibrate.newton import NewtonResult, batched_newton
from analysis.calibrate.tnp import MassGrid, ProbeHistograms

__all__ = [
    "EfficiencyFit",
    "fit_efficiencies",
    "poisson_weights",
    "smeared_shape",
    "smearing_kernel",
    "tnp_derivatives",
    "tnp_nll",
]

N_PARAMS = 8
PRIORS = {"lambda": (0.03, 0.05), "delta": (0.0, 1.0), "s": (0.0, 1.5)}
M_REF = 90.0
SIGMA_MIN = 0.05  # GeV: the smearing width at s = 0
SMEAR_STARTS = (0.3, 1.2)  # GeV: starting values of ``s``; the lower NLL is kept
#: the starting points of a data problem: (``s`` in GeV, background ``b``; None: from the
#: sidebands); the converged fit with the lowest NLL is kept (see :func:`starting_points`)
STARTS = ((SMEAR_STARTS[0], None), (SMEAR_STARTS[1], None), (SMEAR_STARTS[1], 0.1))
#: problems per compiled Newton call and iterations before regrouping the unfinished ones
#: (:func:`analysis.calibrate.newton.batched_newton`; benchmarks/tnp_speed.py)
NEWTON_CHUNK, NEWTON_FIRST_PASS = 16, 12
REACH = 20  # bins (GeV): the smearing kernel's half width (see :func:`smearing_kernel`)
FLOOR = 1e-3  # flat share of the MC template: no mass bin where the signal is impossible


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


@functools.cache
def smearing_kernel(grid: MassGrid, reach: int | None = None):
    """``(kernel, matrix)``: the template ``t`` (on ``grid.template_edges``) smeared by a
    Gaussian ``(delta, sigma)`` and integrated over the fit bins is
    ``matrix(t) @ kernel(delta, sigma)``; exact for a template flat inside each of its bins
    (``sigma -> 0`` is a plain rebinning). ``matrix(t)`` (numpy, ``[..., fit bins, lattice]``)
    depends on the data only, so the fit differentiates a matrix-vector product.

    ``reach``: keep only shifts of at most ``reach`` bins between a template bin and a fit
    bin (default: all). The Gaussian's tail beyond is dropped: with ``reach`` = 20 bins of
    1 GeV and ``|delta| + 3 sigma`` < 10 GeV the loss is < 1e-9 of the shape, and the matrix
    is 41 instead of 139 columns wide (the fit reads it at every iteration)."""
    import jax.numpy as jnp
    from jax.scipy.special import ndtr

    n_fit = len(grid.edges) - 1
    n_tpl = len(grid.template_edges) - 1
    off = round((grid.lo - grid.tlo) / grid.width)
    # kernel index d = j + off - k (fit bin j, template bin k) runs over first .. first + n_w
    first = off - n_tpl + 1
    n_w = n_fit + n_tpl - 1
    if reach is not None:
        last = min(first + n_w - 1, int(reach))
        first = max(first, -int(reach))
        n_w = last - first + 1
    # one point below the kernel's lattice: the box of width ``grid.width`` ending at a
    # lattice point starts at the previous one
    lattice = jnp.arange(first - 1, first + n_w + 1) * grid.width

    def g(z):  # antiderivative of the normal CDF
        return z * ndtr(z) + jnp.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)

    def kernel(delta, sigma):
        gz = g((lattice - delta) / sigma)
        f = sigma / grid.width * (gz[1:] - gz[:-1])
        return f[1:] - f[:-1]

    def derivatives(delta, sigma):
        """``kernel`` and its derivatives in ``(delta, sigma)``: ``[lattice, 6]`` columns
        ``K, dK/ddelta, dK/dsigma, d2K/ddelta2, d2K/ddelta dsigma, d2K/dsigma2`` (with
        ``F = sigma/w (g(a) - g(b))``: ``F_delta = (Phi(b) - Phi(a))/w``,
        ``F_sigma = (phi(a) - phi(b))/w``, and ``g' = Phi``, ``Phi' = phi``)."""
        z = (lattice - delta) / sigma
        cdf = ndtr(z)
        pdf = jnp.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
        gz = z * cdf + pdf
        a, b = slice(1, None), slice(None, -1)  # a: the box's upper end, b: its lower end
        w = grid.width
        f = jnp.stack(
            [
                sigma / w * (gz[a] - gz[b]),
                (cdf[b] - cdf[a]) / w,
                (pdf[a] - pdf[b]) / w,
                (pdf[a] - pdf[b]) / (w * sigma),
                (z[a] * pdf[a] - z[b] * pdf[b]) / (w * sigma),
                (z[a] ** 2 * pdf[a] - z[b] ** 2 * pdf[b]) / (w * sigma),
            ],
            axis=1,
        )
        return f[1:] - f[:-1]

    kernel.derivatives = derivatives

    j = np.arange(n_fit)[:, None]
    d = np.arange(n_w)[None, :] + first
    k = j + off - d  # template bin feeding fit bin j through kernel index d
    inside = (k >= 0) & (k < n_tpl)

    def matrix(template: np.ndarray) -> np.ndarray:
        template = np.asarray(template, dtype=np.float64)
        return np.where(inside, template[..., np.clip(k, 0, n_tpl - 1)], 0.0)

    return kernel, matrix


def smeared_shape(grid: MassGrid, sigma_min: float, reach: int | None = REACH):
    """``shape(smear, delta, s) -> (sig, d1, d2)``: the template smeared by the Gaussian
    ``(delta, sqrt(sigma_min^2 + s^2))`` in the fit bins, normalised to 1 there (``sig``,
    ``[fit bin]``), and its first (``[fit bin, 2]``) and second (``[fit bin, 2, 2]``)
    derivatives in ``(delta, s)``. ``smear`` is ``matrix(template)`` of
    :func:`smearing_kernel`. The kernel and its derivatives (closed forms,
    ``kernel.derivatives``) go through one matrix product with ``smear``, which is read once;
    the normalisation is differentiated by hand."""
    import jax.numpy as jnp

    kernel, _ = smearing_kernel(grid, reach)

    def derivs(smear, delta, s):
        sigma = jnp.sqrt(sigma_min**2 + s**2)
        ds, dss = s / sigma, sigma_min**2 / sigma**3  # dsigma/ds, d2sigma/ds2
        k = kernel.derivatives(delta, sigma)
        # (delta, sigma) -> (delta, s): K, K_d, K_s, K_dd, K_ds, K_sd, K_ss
        stack = jnp.stack(
            [
                k[:, 0],
                k[:, 1],
                ds * k[:, 2],
                k[:, 3],
                ds * k[:, 4],
                ds * k[:, 4],
                ds**2 * k[:, 5] + dss * k[:, 2],
            ],
            axis=1,
        )
        prod = smear @ stack  # [fit bin, 7]
        r, r1, r2 = prod[:, 0], prod[:, 1:3], prod[:, 3:].reshape(-1, 2, 2)
        tot, tot1, tot2 = r.sum(), r1.sum(0), r2.sum(0)
        sig = r / tot
        sig1 = r1 / tot - r[:, None] * tot1 / tot**2
        outer = tot1[:, None] * tot1[None, :]
        sig2 = (
            r2 / tot
            - (r1[:, :, None] * tot1[None, None, :] + tot1[None, :, None] * r1[:, None, :]) / tot**2
            - r[:, None, None] * (tot2 / tot**2 - 2 * outer / tot**3)
        )
        return sig, sig1, sig2

    return derivs


def poisson_weights(mu, n):
    """``(w, c)`` of a binned Poisson NLL ``sum(mu - n log mu)``: its gradient is
    ``sum(w dmu)`` and its Hessian ``sum(c dmu dmu^T) + sum(w d2mu)``, with ``w = 1 - n/mu``
    and ``c = n / mu^2`` (zero where ``mu <= 0``, as the NLL's terms there)."""
    import jax.numpy as jnp

    pos = mu > 0
    safe = jnp.where(pos, mu, 1.0)
    return jnp.where(pos, 1.0 - n / safe, 0.0), jnp.where(pos, n / safe**2, 0.0)


@functools.cache
def tnp_derivatives(grid: MassGrid):
    """Analytic gradient and Hessian ``(theta, data) -> (g, H)`` of :func:`tnp_nll`.

    The model is linear in the yields and the efficiency; only ``(delta, s)`` enter through the
    smeared template (:func:`smeared_shape`) and the slopes through the exponentials, so the
    Hessian is the Poisson ``J^T diag(n/mu^2) J`` plus the few second derivatives of ``mu``
    written out below: a few convolutions per problem instead of a reverse pass through them.
    """
    import jax.numpy as jnp

    shape = smeared_shape(grid, SIGMA_MIN, REACH)
    edges = grid.edges
    centres = jnp.asarray(0.5 * (edges[1:] + edges[:-1]) - M_REF)
    lam0, lam_w = PRIORS["lambda"]
    w_delta, w_s = PRIORS["delta"][1], PRIORS["s"][1]

    def expo(lam):  # E, dE/dlam, d2E/dlam2 (E normalised in the window)
        e = jnp.exp(-lam * centres)
        e = e / jnp.sum(e)
        m = jnp.sum(centres * e)
        v = jnp.sum(centres**2 * e) - m**2
        return e, e * (m - centres), e * ((m - centres) ** 2 - v)

    def derivatives(theta, data):
        n, eff, b_p, b_f, l_p, l_f, delta, s = theta
        sig, sig1, sig2 = shape(data["smear"], delta, s)
        e_p, e_p1, e_p2 = expo(l_p)
        e_f, e_f1, e_f2 = expo(l_f)
        zero = jnp.zeros_like(sig)
        a_p, a_f = n * eff, n * (1.0 - eff)
        mu_p = a_p * sig + b_p**2 * e_p
        mu_f = a_f * sig + b_f**2 * e_f
        jac_p = jnp.stack(
            [eff * sig, n * sig, 2 * b_p * e_p, zero, b_p**2 * e_p1, zero, *(a_p * sig1.T)], 1
        )
        jac_f = jnp.stack(
            [(1 - eff) * sig, -n * sig, zero, 2 * b_f * e_f, zero, b_f**2 * e_f1, *(a_f * sig1.T)],
            1,
        )
        w_p, c_p = poisson_weights(mu_p, data["pass"])
        w_f, c_f = poisson_weights(mu_f, data["fail"])
        grad = w_p @ jac_p + w_f @ jac_f
        hess = (jac_p.T * c_p) @ jac_p + (jac_f.T * c_f) @ jac_f
        # second derivatives of mu, contracted with w
        ws_p, ws_f = w_p @ sig, w_f @ sig
        w1_p, w1_f = w_p @ sig1, w_f @ sig1  # [2]
        w2 = a_p * jnp.einsum("i,iab->ab", w_p, sig2) + a_f * jnp.einsum("i,iab->ab", w_f, sig2)
        second = jnp.zeros((N_PARAMS, N_PARAMS))
        second = second.at[0, 1].set(ws_p - ws_f)
        second = second.at[0, 6:].set(eff * w1_p + (1 - eff) * w1_f)
        second = second.at[1, 6:].set(n * (w1_p - w1_f))
        second = second.at[2, 4].set(2 * b_p * (w_p @ e_p1))
        second = second.at[3, 5].set(2 * b_f * (w_f @ e_f1))
        second = second + second.T
        second = second.at[2, 2].set(2 * (w_p @ e_p))
        second = second.at[3, 3].set(2 * (w_f @ e_f))
        second = second.at[4, 4].set(b_p**2 * (w_p @ e_p2))
        second = second.at[5, 5].set(b_f**2 * (w_f @ e_f2))
        second = second.at[6:, 6:].set(w2)
        prior_g = jnp.zeros(N_PARAMS)
        prior_g = prior_g.at[4].set((l_p - lam0) / lam_w**2).at[5].set((l_f - lam0) / lam_w**2)
        prior_g = prior_g.at[6].set(delta / w_delta**2).at[7].set(s / w_s**2)
        prior_h = jnp.zeros(N_PARAMS)
        prior_h = prior_h.at[4:6].set(1 / lam_w**2).at[6].set(1 / w_delta**2)
        prior_h = prior_h.at[7].set(1 / w_s**2)
        return grad + prior_g, hess + second + jnp.diag(prior_h)

    return derivatives


@functools.cache
def tnp_nll(grid: MassGrid):
    """The NLL ``nll(theta, data)`` of one bin for the mass binning ``grid`` (cached, so that
    :func:`~analysis.calibrate.newton.batched_newton` compiles it once per grid).

    ``theta = (N, eff, b_pass, b_fail, lambda_pass, lambda_fail, delta, s)`` with background
    yields ``b^2`` (>= 0 without a bound) and smearing width ``sqrt(SIGMA_MIN^2 + s^2)``.
    """
    import jax.numpy as jnp

    kernel, _ = smearing_kernel(grid, REACH)
    edges = grid.edges
    centres = jnp.asarray(0.5 * (edges[1:] + edges[:-1]) - M_REF)
    lam0, lam_w = PRIORS["lambda"]

    def expo(lam):
        e = jnp.exp(-lam * centres)
        return e / jnp.sum(e)

    def poisson(mu, n):
        bad = jnp.any((mu < 0) | ((mu <= 0) & (n > 0)))
        safe = jnp.where(mu > 0, mu, 1.0)
        return jnp.sum(jnp.where(mu > 0, mu - n * jnp.log(safe), 0.0)) + jnp.where(
            bad, jnp.inf, 0.0
        )

    def nll(theta, data):
        n, eff, b_pass, b_fail, l_pass, l_fail, delta, s = theta
        sig = data["smear"] @ kernel(delta, jnp.sqrt(SIGMA_MIN**2 + s**2))
        sig = sig / jnp.sum(sig)
        mu_pass = n * eff * sig + b_pass**2 * expo(l_pass)
        mu_fail = n * (1.0 - eff) * sig + b_fail**2 * expo(l_fail)
        prior = 0.5 * (((l_pass - lam0) / lam_w) ** 2 + ((l_fail - lam0) / lam_w) ** 2)
        prior += 0.5 * (delta / PRIORS["delta"][1]) ** 2 + 0.5 * (s / PRIORS["s"][1]) ** 2
        return poisson(mu_pass, data["pass"]) + poisson(mu_fail, data["fail"]) + prior

    return nll


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
    background with a wide one, finds the lowest in practice (benchmarks/tnp_speed.py)."""
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


def fit_efficiencies(
    hists: list[ProbeHistograms], *, min_fail: float = 3.0, max_iter: int = 60
) -> tuple[dict[str, EfficiencyFit], NewtonResult]:
    """Fit every bin of every :class:`ProbeHistograms` of ``hists``, data and MC, in one call.

    All histograms must share one :class:`MassGrid`. Returns ``{kind: EfficiencyFit}`` and the
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
            theta0.append(_start(counts[:, 1], counts[:, 0], signal, background))
            mask = np.ones(N_PARAMS) if background else np.r_[1.0, 1.0, np.zeros(N_PARAMS - 2)]
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
