"""A generic trust-region Newton minimiser on float64 arrays, converged by the EDM.

The objective comes as callables: ``value_and_grad(x) -> (f, g)`` and either ``hess(x) -> H``
(dense, exact: Newton steps with a Cholesky factorisation and a dogleg inside the trust region;
a Hessian that is not positive definite is shifted, Levenberg-Marquardt style, for the step only)
or ``hessp(x, v) -> H v`` (Steihaug-Toint truncated conjugate gradient inside the trust region),
or both: then the exact Hessian is computed and factorised only now and then, and the Newton
steps in between are solved by conjugate gradients on Hessian-vector products preconditioned
with the last Cholesky factor (a handful of HVPs per step), with a backtracking line search;
the Hessian is refreshed when that preconditioned solve stalls or meets negative curvature, and
always at the end, so the returned ``hess`` is the exact Hessian at the minimum. With a
``fisher`` preconditioner, once its own step (taken on negative curvature) needs a line-search
step below 0.1, it misjudges the curvature and the exact Hessian (shifted where indefinite)
takes its place.

Convergence: the estimated distance to the minimum ``EDM = g^T H^-1 g / 2 < tol`` with ``H``
positive definite at that point. Anything else raises :class:`fit.errors.FitDidNotConverge`
with the reason (``"max iterations"``, ``"non-finite NLL"``, ``"Hessian not positive definite"``,
``"trust region collapsed"``).

>>> import numpy as np
>>> A = np.array([[2.0, 0.5], [0.5, 1.0]])
>>> res = minimize(lambda x: (0.5 * x @ A @ x - x.sum(), A @ x - 1), np.zeros(2), hess=lambda x: A)
>>> np.allclose(res.x, np.linalg.solve(A, np.ones(2))), res.edm < 1e-12
(True, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg as la

from .errors import FitDidNotConverge

__all__ = ["MinimizeResult", "minimize", "restrict"]

ValueAndGrad = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass
class MinimizeResult:
    """The minimum: point, value, gradient, Hessian there (if computed), EDM and counters."""

    x: np.ndarray
    fun: float
    grad: np.ndarray
    edm: float
    n_iter: int
    nfev: int
    hess: np.ndarray | None = None
    factor: tuple[np.ndarray, bool] | None = None
    status: str = "converged"
    method: str = "newton"
    time: float = 0.0
    history: list[float] = field(default_factory=list)


def _start(value_and_grad: ValueAndGrad, x0: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """The starting point, its NLL and gradient (finite, or :class:`FitDidNotConverge`)."""
    x = np.array(x0, dtype=np.float64)
    f, g = value_and_grad(x)
    if not np.isfinite(f) or not np.all(np.isfinite(g)):
        raise FitDidNotConverge("non-finite NLL at the starting point", x=x)
    return x, f, g


def _converged(
    t0: float, x: np.ndarray, f: float, g: np.ndarray, edm: float, it: int, nfev: int, **kw: Any
) -> MinimizeResult:
    """The result at a converged point, timed from ``t0``; ``kw``: the other fields."""
    return MinimizeResult(x, f, g, edm, it, nfev, time=time.perf_counter() - t0, **kw)


def _factor(H: np.ndarray) -> tuple[tuple[np.ndarray, bool], float]:
    """Cholesky of ``H + shift I`` with the smallest shift that works (0 first).

    For an indefinite ``H`` the shift starts just above ``-lambda_min`` (Lanczos, ARPACK), so
    one or two factorisations suffice.
    """
    try:
        return la.cho_factor(H, lower=False, check_finite=False), 0.0
    except la.LinAlgError:
        pass
    scale = max(float(np.abs(np.diag(H)).max()), 1e-12)
    try:
        from scipy.sparse.linalg import eigsh

        # a fixed start vector: ARPACK's default is random, and the fit must be reproducible
        v0 = np.random.default_rng(0).standard_normal(H.shape[0])
        lam = eigsh(H, k=1, which="SA", tol=1e-3, v0=v0, return_eigenvectors=False, maxiter=5000)
        lam = float(lam[0])
        shift = max(-1.05 * lam, 0.0) + 1e-8 * scale
    except Exception:  # ARPACK did not converge: fall back to a geometric search
        shift = 1e-8 * scale
    while shift < 1e8 * scale:
        try:
            return la.cho_factor(
                H + shift * np.eye(H.shape[0]), lower=False, check_finite=False
            ), shift
        except la.LinAlgError:
            shift *= 4.0
    raise FitDidNotConverge("Hessian not positive definite (no shift makes it so)")


def _to_boundary(p: np.ndarray, d: np.ndarray, radius: float) -> float:
    """tau >= 0 with ||p + tau d|| = radius."""
    a, b, c = d @ d, 2 * p @ d, p @ p - radius**2
    return (-b + np.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)


def _dogleg(g: np.ndarray, Hg: np.ndarray, p_newton: np.ndarray, radius: float) -> np.ndarray:
    if np.linalg.norm(p_newton) <= radius:
        return p_newton
    gHg = g @ Hg
    gnorm = np.linalg.norm(g)
    if gHg <= 0:
        return -radius * g / gnorm
    p_u = -(g @ g) / gHg * g
    if np.linalg.norm(p_u) >= radius:
        return -radius * g / gnorm
    return p_u + _to_boundary(p_u, p_newton - p_u, radius) * (p_newton - p_u)


def _steihaug(
    g: np.ndarray, hv: Callable[[np.ndarray], np.ndarray], radius: float, rtol: float, max_cg: int
) -> tuple[np.ndarray, bool, int]:
    """Truncated CG for min g.p + p.H.p/2, ||p|| <= radius. Returns (p, interior, n_hvp)."""
    p = np.zeros_like(g)
    r = g.copy()
    d = -r
    rr = r @ r
    stop = rtol * np.sqrt(rr)
    for i in range(max_cg):
        Hd = hv(d)
        dHd = d @ Hd
        if dHd <= 0:
            return p + _to_boundary(p, d, radius) * d, False, i + 1
        alpha = rr / dHd
        p_next = p + alpha * d
        if np.linalg.norm(p_next) >= radius:
            return p + _to_boundary(p, d, radius) * d, False, i + 1
        p = p_next
        r = r + alpha * Hd
        rr_new = r @ r
        if np.sqrt(rr_new) < stop:
            return p, True, i + 1
        d = -r + (rr_new / rr) * d
        rr = rr_new
    return p, True, max_cg


def minimize(
    value_and_grad: ValueAndGrad,
    x0: np.ndarray,
    *,
    hess: Callable[[np.ndarray], np.ndarray] | None = None,
    hessp: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    tol: float = 1e-10,
    max_iter: int = 200,
    radius: float | None = None,
    max_cg: int | None = None,
    fisher: Callable[[np.ndarray], np.ndarray] | None = None,
) -> MinimizeResult:
    """Minimise with a trust-region Newton method; see the module docstring.

    ``tol`` is the EDM goal (the NLL's units: 1e-10 puts the minimum ~1e-5 sigma from exact).
    With ``hess`` the Hessian at the minimum is returned in ``.hess`` (and its Cholesky factor
    in ``.factor``). ``fisher``: an optional positive-definite approximation of the Hessian
    (the expected information) used, with ``hess`` and ``hessp``, as the preconditioner and,
    where the Hessian is indefinite, for the step; the exact Hessian is then computed once, at
    the end.
    """
    if hess is None and hessp is None:
        raise ValueError("minimize needs hess or hessp")
    if hess is not None and hessp is not None:
        return _newton_pcg(value_and_grad, x0, hess, hessp, fisher, tol=tol, max_iter=max_iter)
    t0 = time.perf_counter()
    x, f, g = _start(value_and_grad, x0)
    nfev = 1
    history = [f]
    edm = np.inf
    n = x.size
    max_cg = max_cg or max(10 * n, 50)
    for it in range(1, max_iter + 1):
        if hess is not None:
            H = hess(x)
            if not np.all(np.isfinite(H)):
                raise FitDidNotConverge("non-finite Hessian", x=x, n_iter=it)
            cho, shift = _factor(H)
            p_newton = -la.cho_solve(cho, g, check_finite=False)
            if shift == 0.0:
                edm = -0.5 * float(g @ p_newton)
                if edm < tol:
                    return _converged(
                        t0, x, f, g, edm, it, nfev, hess=H, factor=cho, history=history
                    )
            if radius is None:
                radius = max(1.0, float(np.linalg.norm(p_newton)))
            p = _dogleg(g, H @ g, p_newton, radius)
            predicted = -float(g @ p + 0.5 * p @ (H @ p))
        else:
            hv = lambda v, x=x: hessp(x, v)  # noqa: E731
            if radius is None:
                radius = max(1.0, np.sqrt(n))
            gnorm = float(np.linalg.norm(g))
            if gnorm == 0.0:
                return _converged(t0, x, f, g, 0.0, it, nfev, method="cg", history=history)
            p, interior, _ = _steihaug(g, hv, radius, min(0.5, np.sqrt(gnorm)) * 1e-3, max_cg)
            Hp = hv(p)
            predicted = -float(g @ p + 0.5 * p @ Hp)
            if interior:
                # p ~ -H^-1 g: the EDM estimate
                edm = -0.5 * float(g @ p)
                if edm < tol:
                    return _converged(t0, x, f, g, edm, it, nfev, method="cg", history=history)
        step = float(np.linalg.norm(p))
        f_new, g_new = value_and_grad(x + p)
        nfev += 1
        if not np.isfinite(f_new) or not np.all(np.isfinite(g_new)):
            rho = -np.inf
        elif predicted <= 1e-14 * max(1.0, abs(f)):
            rho = 1.0 if f_new <= f + 1e-12 * max(1.0, abs(f)) else -np.inf
        else:
            rho = (f - f_new) / predicted
        if rho < 0.25:
            radius = 0.25 * step
        elif rho > 0.75 and step >= 0.99 * radius:
            radius = 2.0 * radius
        if rho > 1e-4:
            x, f, g = x + p, f_new, g_new
            history.append(f)
        if radius < 1e-14 * max(1.0, float(np.linalg.norm(x))):
            raise FitDidNotConverge("trust region collapsed", x=x, edm=edm, n_iter=it)
    raise FitDidNotConverge("max iterations", x=x, edm=edm, n_iter=max_iter)


def _pcg(hv, b: np.ndarray, precond, rtol: float, maxiter: int) -> tuple[np.ndarray, str, int]:
    """Preconditioned CG for ``A p = b``; stops at negative curvature."""
    x = np.zeros_like(b)
    if not np.any(b):
        return x, "ok", 0
    r = b.copy()
    z = precond(r)
    d = z.copy()
    rz = r @ z
    stop = rtol * np.linalg.norm(b)
    for i in range(maxiter):
        Ad = hv(d)
        dAd = d @ Ad
        if dAd <= 0:
            return x, "negative curvature", i + 1
        alpha = rz / dAd
        x += alpha * d
        r -= alpha * Ad
        if np.linalg.norm(r) <= stop:
            return x, "ok", i + 1
        z = precond(r)
        rz_new = r @ z
        d = z + (rz_new / rz) * d
        rz = rz_new
    return x, "maxiter", maxiter


def _newton_pcg(
    value_and_grad, x0, hess, hessp, fisher=None, *, tol: float, max_iter: int, max_cg: int = 50
):
    """Newton with occasional factorisations, preconditioned CG in between (module doc)."""
    t0 = time.perf_counter()
    x, f, g = _start(value_and_grad, x0)
    nfev = 1
    history = [f]
    edm = np.inf
    cho, kind, fresh, H = None, "", False, None
    want_exact = fisher is None
    n_factor = 0
    for it in range(1, max_iter + 1):
        if cho is None:
            if want_exact:
                H = hess(x)
                if not np.all(np.isfinite(H)):
                    raise FitDidNotConverge("non-finite Hessian", x=x, n_iter=it)
                cho, shift = _factor(H)
                kind = "exact" if shift == 0.0 else "shifted"
            else:
                cho, shift = _factor(fisher(x))
                kind = "fisher"
            fresh = True
            n_factor += 1
        n_cg = 0
        precond_step = False
        if kind == "exact" and fresh:
            p = -la.cho_solve(cho, g, check_finite=False)
            edm = -0.5 * float(g @ p)
            if edm < tol:
                kw = {"hess": H, "factor": cho, "method": "newton-pcg", "history": history}
                return _converged(t0, x, f, g, edm, it, nfev, **kw)
        else:
            gnorm = float(np.linalg.norm(g))
            p, status, n_cg = _pcg(
                lambda v, x=x: hessp(x, v),
                -g,
                lambda r, cho=cho: la.cho_solve(cho, r, check_finite=False),
                rtol=min(0.1, max(gnorm, 1e-10)),
                maxiter=max_cg,
            )
            if status == "ok":
                edm = -0.5 * float(g @ p)
                if edm < tol:
                    want_exact, cho = True, None  # confirm with the exact Hessian here
                    continue
            elif status == "maxiter" and not fresh:
                cho = None  # a stale preconditioner: refresh it first
                continue
            elif status == "negative curvature":
                # far from the minimum: the (positive-definite) preconditioner's own step
                p = -la.cho_solve(cho, g, check_finite=False)
                precond_step = True
        slope = float(g @ p)
        if slope >= 0:
            if fresh:
                raise FitDidNotConverge("no descent direction", x=x, edm=edm, n_iter=it)
            cho = None
            continue
        alpha, accepted = 1.0, False
        for _ in range(30):
            f_new, g_new = value_and_grad(x + alpha * p)
            nfev += 1
            if np.isfinite(f_new) and f_new <= f + 1e-4 * alpha * slope + 1e-13 * max(1.0, abs(f)):
                accepted = True
                break
            alpha *= 0.5
        if not accepted:
            if fresh:
                raise FitDidNotConverge("line search failed", x=x, edm=edm, n_iter=it)
            cho = None
            continue
        x, f, g = x + alpha * p, f_new, g_new
        history.append(f)
        fresh = False
        if kind == "shifted" or alpha < 0.1:
            cho = None
            if precond_step and kind == "fisher" and alpha < 0.1:
                # the expected information misjudges the curvature here by > 10x (an indefinite
                # Hessian that F does not see, e.g. yields far below the data): from now on the
                # exact Hessian, shifted where indefinite (Levenberg-Marquardt)
                want_exact = True
    raise FitDidNotConverge("max iterations", x=x, edm=edm, n_iter=max_iter)


def restrict(
    free: np.ndarray,
    x_full: np.ndarray,
    value_and_grad: ValueAndGrad,
    hess: Callable[[np.ndarray], np.ndarray] | None = None,
    hessp: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    fisher: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[Callable, ...]:
    """The objective restricted to the ``free`` parameters (others fixed at ``x_full``).

    Returns ``(value_and_grad, hess, hessp, embed)`` on the free sub-vector (and the restricted
    ``fisher`` last when one is given); ``embed(y)`` is the full point.
    """
    free = np.asarray(free, dtype=bool)
    base = np.array(x_full, dtype=np.float64)
    if free.all():  # nothing fixed: the callables themselves (no K x K copies)
        out = (value_and_grad, hess, hessp, lambda y: np.array(y, dtype=np.float64))
        return out if fisher is None else (*out, fisher)

    def embed(y: np.ndarray) -> np.ndarray:
        x = base.copy()
        x[free] = y
        return x

    def vg(y):
        f, g = value_and_grad(embed(y))
        return f, g[free]

    h = None if hess is None else (lambda y: hess(embed(y))[np.ix_(free, free)])
    hp = None
    if hessp is not None:

        def hp(y, v):
            full = np.zeros(free.size)
            full[free] = v
            return hessp(embed(y), full)[free]

    if fisher is None:
        return vg, h, hp, embed
    fi = lambda y: fisher(embed(y))[np.ix_(free, free)]  # noqa: E731
    return vg, h, hp, embed, fi
