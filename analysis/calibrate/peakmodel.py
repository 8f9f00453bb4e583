"""The tag-and-probe line-shape model: the smearing kernel (a Gaussian convolution as a fixed
matrix times a kernel vector), the smeared MC template with its closed-form derivatives, and
the pass/fail NLL with its analytic gradient and Hessian (:func:`tnp_derivatives`, equal to
autodiff to 1e-13: tests/calibrate/test_pieces.py). The model and the fitting strategy are
described in :mod:`analysis.calibrate.peakfit`, which fits it for all bins at once;
:mod:`analysis.calibrate.scale` reuses the kernel for the momentum-scale peaks.
"""

from __future__ import annotations

import functools

import numpy as np

from analysis.calibrate.tnp import MassGrid

__all__ = [
    "FLOOR",
    "M_REF",
    "N_PARAMS",
    "PRIORS",
    "REACH",
    "SIGMA_MIN",
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
REACH = 20  # bins (GeV): the smearing kernel's half width (see :func:`smearing_kernel`)
FLOOR = 1e-3  # flat share of the MC template: no mass bin where the signal is impossible


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
