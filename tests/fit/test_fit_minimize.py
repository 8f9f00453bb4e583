"""The trust-region Newton minimiser on its own: every mode reaches the minimum by the EDM."""

from __future__ import annotations

import numpy as np
import pytest

from fit.minimize import minimize
from tests.support import rosenbrock, rosenbrock_hess


@pytest.mark.parametrize("mode", ["hess", "hessp", "both"])
def test_rosenbrock_from_an_indefinite_start(mode):
    """(-1.2, 1) has an indefinite Hessian; the minimum is (1, 1)."""
    kw = {
        "hess": dict(hess=rosenbrock_hess),
        "hessp": dict(hessp=lambda x, v: rosenbrock_hess(x) @ v),
        "both": dict(hess=rosenbrock_hess, hessp=lambda x, v: rosenbrock_hess(x) @ v),
    }[mode]
    res = minimize(rosenbrock, np.array([-1.2, 1.0]), tol=1e-14, **kw)
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-6)
    assert res.edm < 1e-14


def test_poisson_fit_with_fisher_preconditioner_matches_closed_form():
    """n_i = exp(x_0 + x_1 t_i): the Poisson MLE satisfies sum(d) = sum(n), sum(t d) = sum(t n)."""
    t = np.linspace(-1, 1, 20)
    d = np.round(100 * np.exp(0.3 + 0.5 * t) + 7 * np.sin(5 * t))
    X = np.stack([np.ones_like(t), t], axis=1)

    def vg(x):
        n = np.exp(X @ x)
        return float(np.sum(n - d * np.log(n))), X.T @ (n - d)

    def hess(x):
        return X.T @ (np.exp(X @ x)[:, None] * X)

    res = minimize(
        vg, np.zeros(2), hess=hess, hessp=lambda x, v: hess(x) @ v, fisher=hess, tol=1e-16
    )
    n = np.exp(X @ res.x)
    np.testing.assert_allclose(X.T @ n, X.T @ d, rtol=1e-10)
    np.testing.assert_allclose(res.hess, hess(res.x))
