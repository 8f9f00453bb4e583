"""Pseudo-data: Asimov data (``-t -1``) and seeded toys (``-t N``).

A toy draws Poisson data from the prediction at the generating point ``x_gen`` and randomises the
global observables: ``x0_k ~ N(x_gen_k, 1)`` for Gaussian-constrained parameters and, with
Barlow-Beeston-lite, ``k_b / beta0_b ~ Gamma(k_b)``: the sampling distribution whose likelihood
is the constraint term of :mod:`fit.model` (``1 / beta0`` has mean 1, variance ``1/k_b``). Same seed, same toys.
The constraints of a pyhf workspace (:mod:`fit.terms`) draw ``x0_k ~ N(x_gen_k, sigma_k)`` and,
for its Poisson-constrained gammas, ``x0_k ~ Poisson(tau_k x_gen_k)``.

>>> import numpy as np
>>> toy = generate_toy(np.array([5.0, 50.0]), np.array([True, True]), np.zeros(1),
...                    np.array([True]), np.full(2, np.inf), np.random.default_rng(1))
>>> sorted(toy)
['beta0', 'data', 'theta0']
"""

from __future__ import annotations

import numpy as np

__all__ = ["asimov_data", "generate_toy", "poisson_data"]


def asimov_data(expected: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The expected counts in the likelihood's bins (0 elsewhere): the Asimov dataset."""
    return np.where(mask, expected, 0.0)


def poisson_data(expected: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson counts around ``expected`` in the likelihood's bins (0 elsewhere)."""
    return np.where(mask, rng.poisson(np.where(mask, expected, 0.0)), 0).astype(np.float64)


def generate_toy(
    expected: np.ndarray,
    mask: np.ndarray,
    x_gen: np.ndarray,
    constrained: np.ndarray,
    kstat: np.ndarray,
    rng: np.random.Generator,
    *,
    sigma: np.ndarray | None = None,
    poisson_tau: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """One toy: ``data`` [B], ``theta0`` [K], ``beta0`` [B].

    ``sigma``: the widths of the Gaussian constraints (default 1); ``poisson_tau``: ``tau_k``
    of the Poisson-constrained parameters (NaN for the others; they are not in ``constrained``).
    """
    data = poisson_data(expected, mask, rng)
    if sigma is None:
        theta0 = np.where(constrained, x_gen + rng.standard_normal(x_gen.size), 0.0)
    else:
        theta0 = np.where(constrained, x_gen + sigma * rng.standard_normal(x_gen.size), 0.0)
    if poisson_tau is not None:
        i = np.flatnonzero(np.isfinite(poisson_tau))
        theta0[i] = rng.poisson(poisson_tau[i] * x_gen[i]).astype(np.float64)
    bb = np.isfinite(kstat)
    k = np.where(bb, kstat, 1.0)
    # the constraint k (beta / beta0 - log(beta / beta0)) depends on beta as beta^k
    # exp(-k beta / beta0): the likelihood of u = 1 / beta0 ~ Gamma(shape k, rate k beta).
    # Drawing beta0 itself from that Gamma (as before) shifted the mW pulls by +0.5.
    beta0 = np.where(bb, 1.0 / rng.gamma(k, 1.0 / k), 1.0)
    return {"data": data, "theta0": theta0, "beta0": beta0}
