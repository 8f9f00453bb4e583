"""Pseudo-data: Asimov data (``-t -1``) and seeded toys (``-t N``).

A toy draws Poisson data from the prediction at the generating point ``x_gen`` and randomises the
global observables: ``x0_k ~ N(x_gen_k, 1)`` for Gaussian-constrained parameters and, with
Barlow-Beeston-lite, ``k_b / beta0_b ~ Gamma(k_b)``: the sampling distribution whose likelihood
is the constraint term of :mod:`fit.model` (``1 / beta0`` has mean 1, variance ``1/k_b``). Same seed, same toys.

>>> import numpy as np
>>> toy = generate_toy(np.array([5.0, 50.0]), np.array([True, True]), np.zeros(1),
...                    np.array([True]), np.full(2, np.inf), np.random.default_rng(1))
>>> sorted(toy)
['beta0', 'data', 'theta0']
"""

from __future__ import annotations

import numpy as np

__all__ = ["asimov_data", "generate_toy"]


def asimov_data(expected: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The expected counts in the likelihood's bins (0 elsewhere): the Asimov dataset."""
    return np.where(mask, expected, 0.0)


def generate_toy(
    expected: np.ndarray,
    mask: np.ndarray,
    x_gen: np.ndarray,
    constrained: np.ndarray,
    kstat: np.ndarray,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """One toy: ``data`` [B], ``theta0`` [K], ``beta0`` [B]."""
    data = np.where(mask, rng.poisson(np.where(mask, expected, 0.0)), 0).astype(np.float64)
    theta0 = np.where(constrained, x_gen + rng.standard_normal(x_gen.size), 0.0)
    bb = np.isfinite(kstat)
    k = np.where(bb, kstat, 1.0)
    # the constraint k (beta / beta0 - log(beta / beta0)) depends on beta as beta^k
    # exp(-k beta / beta0): the likelihood of u = 1 / beta0 ~ Gamma(shape k, rate k beta).
    # Drawing beta0 itself from that Gamma (as before) shifted the mW pulls by +0.5.
    beta0 = np.where(bb, 1.0 / rng.gamma(k, 1.0 / k), 1.0)
    return {"data": data, "theta0": theta0, "beta0": beta0}
