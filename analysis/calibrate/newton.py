"""A damped Newton minimiser for many small, independent likelihoods at once (JAX, float64).

:func:`batched_newton` minimises ``nll(theta, data_b)`` for every problem ``b`` of a batch in
one compiled call: ``jax.vmap`` over the problems of a ``lax.while_loop`` whose body takes a
Levenberg-Marquardt-damped Newton step (exact gradient and Hessian: by autodiff, or from an
analytic ``derivatives`` function, which is much cheaper for a binned likelihood), accepts it
if the NLL goes down, and otherwise raises the damping. A problem is done when its estimated
distance to the minimum ``edm = g^T H^-1 g / 2`` is below ``tol``. Parameters can be fixed per
problem (``free`` mask); the covariance is the inverse Hessian in the free parameters.

Under ``vmap`` a ``while_loop`` runs until the *last* problem of the batch is done, every
problem paying for every iteration: one slow problem among hundreds would set the cost of all.
So the problems go through the compiled loop in chunks of ``chunk`` (one compiled shape, the
last chunk padded), first for at most ``first_pass`` iterations; the few problems not done by
then are gathered into new chunks and continue from where they stopped, up to ``max_iter``
iterations in all. A Python loop over a handful of chunks, none over iterations.

>>> import jax.numpy as jnp
>>> def nll(t, d):
...     return jnp.sum((t - d) ** 2)
>>> fit = batched_newton(nll, np.zeros((3, 2)), np.arange(6.0).reshape(3, 2))
>>> fit.theta.round(6).tolist()
[[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["NewtonResult", "batched_newton"]


def _jax():
    import jax

    from analysis.calibrate.jaxcache import enable_compilation_cache

    jax.config.update("jax_enable_x64", True)
    enable_compilation_cache()
    return jax


@dataclass
class NewtonResult:
    """Per problem: the minimum, its covariance, the NLL there, edm, iterations, converged."""

    theta: np.ndarray  # [batch, p]
    cov: np.ndarray  # [batch, p, p]; zero rows/columns for fixed parameters
    nll: np.ndarray  # [batch]
    edm: np.ndarray  # [batch]
    iterations: np.ndarray  # [batch]
    converged: np.ndarray  # [batch] bool

    def error(self, i: int) -> np.ndarray:
        """Standard error of parameter ``i`` per problem."""
        return np.sqrt(np.clip(self.cov[:, i, i], 0.0, None))


@functools.cache
def _solver(nll: Callable, derivatives: Callable | None, tol: float) -> Callable:
    jax = _jax()
    jnp = jax.numpy

    def one(theta0, data, free, max_iter):
        def f(t):
            return nll(t, data)

        def grad_and_grad(t):
            g = jax.grad(f)(t)
            return g, g

        if derivatives is None:
            # Hessian and gradient in one forward-over-reverse pass
            hess_grad = jax.jacfwd(grad_and_grad, has_aux=True)
        else:

            def hess_grad(t):
                g, h = derivatives(t, data)
                return h, g

        mask = jnp.outer(free, free)
        fixed = jnp.diag(1.0 - free)

        def body(state):
            t, fval, lam, it, _, _ = state
            h, g = hess_grad(t)
            g, h = g * free, h * mask + fixed
            e, v = jnp.linalg.eigh(h)
            gv = v.T @ g
            # edm with the true Hessian (NaN unless positive definite); the step with
            # |eigenvalues| + damping: a descent direction even where h is indefinite
            edm = jnp.where(e.min() > 0, 0.5 * jnp.sum(gv**2 / e), jnp.nan)
            scale = jnp.abs(e).max() + 1e-300
            step = -v @ (gv / (jnp.abs(e) + lam * scale))
            new = t + step * free
            fnew = f(new)
            ok = jnp.isfinite(fnew) & (fnew <= fval)
            t = jnp.where(ok, new, t)
            lam = jnp.where(ok, jnp.maximum(lam * 0.1, 1e-12), jnp.minimum(lam * 10.0, 1e6))
            cov = jnp.where(e.min() > 0, (v / e) @ v.T, jnp.nan)
            return t, jnp.where(ok, fnew, fval), lam, it + 1, edm, cov

        def cond(state):
            _, _, lam, it, edm, _ = state
            # done: edm small with a positive-definite Hessian (edm is NaN otherwise), or stuck
            return (it < max_iter) & ~(edm < tol) & (lam < 1e6)

        n = theta0.shape[0]
        state = (theta0, f(theta0), jnp.asarray(1e-6), jnp.asarray(0), jnp.inf, jnp.eye(n))
        t, fval, _, it, edm, cov = jax.lax.while_loop(cond, body, state)
        # the covariance at the last point where the Hessian was evaluated: one (tiny,
        # edm < tol) step before ``t`` when converged
        return t, cov * mask, fval, edm, it

    return jax.jit(jax.vmap(one, in_axes=(0, 0, 0, None)))


def batched_newton(
    nll: Callable[[Any, Any], Any],
    theta0: np.ndarray,
    data: Any,
    free: np.ndarray | None = None,
    *,
    max_iter: int = 100,
    tol: float = 1e-6,
    chunk: int = 64,
    first_pass: int = 15,
    derivatives: Callable[[Any, Any], Any] | None = None,
) -> NewtonResult:
    """Minimise ``nll(theta, data_b)`` for every problem ``b`` at once (see the module doc).

    ``theta0`` is ``[batch, p]``, ``data`` a pytree of arrays with a leading batch axis,
    ``free`` a ``[batch, p]`` (or ``[p]``) mask of the parameters to fit (default all).
    ``nll`` must be a module-level function (the compiled solver is cached per function).
    ``chunk``: problems per compiled call (one compilation per ``chunk`` and data shape);
    ``first_pass``: iterations before the unfinished problems are regrouped.
    ``derivatives``: optional ``(theta, data) -> (gradient, Hessian)`` of ``nll`` (analytic,
    module-level); default autodiff.
    """
    jax = _jax()
    theta0 = np.asarray(theta0, dtype=np.float64)
    if free is None:
        free = np.ones_like(theta0)
    free = np.broadcast_to(np.asarray(free, dtype=np.float64), theta0.shape).copy()
    solve = _solver(nll, derivatives, float(tol))
    data = jax.tree_util.tree_map(lambda x: np.asarray(x, dtype=np.float64), data)
    n, p = theta0.shape
    size = max(1, min(int(chunk), n))
    t = theta0.copy()
    cov = np.full((n, p, p), np.nan)
    fval = np.full(n, np.nan)
    edm = np.full(n, np.inf)
    its = np.zeros(n, dtype=np.int64)
    todo = np.arange(n)
    budget = min(int(first_pass), int(max_iter))
    while len(todo) and budget > 0:
        for start in range(0, len(todo), size):
            idx = todo[start : start + size]
            pad = np.r_[idx, np.full(size - len(idx), idx[-1])]  # one compiled shape
            sub = jax.tree_util.tree_map(lambda x, pad=pad: x[pad], data)
            out = solve(t[pad], sub, free[pad], budget)
            t_c, cov_c, f_c, e_c, it_c = (np.asarray(x)[: len(idx)] for x in out)
            t[idx], cov[idx], fval[idx], edm[idx] = t_c, cov_c, f_c, e_c
            its[idx] += it_c
        done = (edm < tol) | ~np.isfinite(fval)
        todo = todo[~done[todo]]
        budget = int(max_iter) - int(its[todo].max()) if len(todo) else 0
    converged = np.isfinite(fval) & (edm < tol) & np.all(np.isfinite(cov), (1, 2))
    return NewtonResult(t, cov, fval, edm, its, converged)
