"""HistFactory's modifiers as terms of the structured likelihood: :class:`TermsModel`.

A :class:`fit.FitInput` predicts ``n_b = sum_p nominal[b, p] exp(eta[b, p](x))`` with
``eta`` linear in log-kappa (:mod:`fit.model`). A :class:`TermsInput` (what
:func:`fit.histfactory.read_workspace` builds from a pyhf workspace) adds, per row
``r = b * P + p`` (a bin of a process),

    e_r(x) = m_r(x) * exp(eta_r(x)),   m_r = nominal_r + sum_k Delta_rk(x_k),
    eta_r = sum_k phi_rk(x_k)

with these element terms (one ``(row, parameter)`` entry each, grouped in *uses* that share one
function of one parameter, so each function is evaluated once per use):

- ``phi = log x``: a linear factor (``normfactor``, ``lumi``, ``shapefactor``, the ``staterror``
  and ``shapesys`` gammas): the parameter is the factor itself, as in pyhf (a factor held at 0,
  e.g. a background-only fit, gives a zero yield; its derivatives are taken at 1e-150);
- ``phi = a x + h |x|``: ``normsys`` code 1 (``hi**x`` above 0, ``lo**-x`` below;
  ``a = (log hi - log lo) / 2``, ``h = (log hi + log lo) / 2``);
- ``phi = log(1 + sum_i c_i x^i)`` for ``|x| < 1`` and code 1 outside: ``normsys`` code 4
  (pyhf's polynomial, six coefficients from ``hi`` and ``lo``);
- ``Delta = x S + g(x) D`` (additive, ``S``/``D`` half sum / half difference of ``hi - nominal``
  and ``nominal - lo``): ``histosys`` code 0 (``g = |x|``) and code 4p (``g`` the sextic
  ``(15 x^2 - 10 x^4 + 3 x^6) / 8`` inside ``|x| <= 1``);

and per parameter a Gaussian constraint ``((x - a) / sigma)^2 / 2`` or a Poisson one
``tau x - a log(tau x)`` (minus its saturated value), ``a`` the global observable (auxdata).
Bounds are walls (the NLL is ``inf`` outside), fixed parameters stay at their initial value.

The derivatives have the structure of :mod:`fit.model` with ``G = exp(eta)``, ``P = d phi/dx``,
``D = d Delta / dx`` (sparse, disjoint columns: a parameter is one modifier type),
``Y = de/dx = G m P + G D`` and ``M = dn/dx`` (row sums of ``Y`` per bin):

    grad = Y^T L1 + c'
    H    = M^T diag(L2) M + P^T diag(L1 e) P + D^T diag(L1 G) P + P^T diag(L1 G) D
           + diag(sum_r L1 G (m phi'' + Delta'')) + diag(c'')

evaluated with ``scipy.sparse`` products. The same minimiser, covariance, impacts, toys and
scans (:mod:`fit.fitter`) run on it; none of this code runs for a native fit input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from .errors import FitInputError
from .model import _Base
from .writer import FitInput

__all__ = ["ELEMENT_KINDS", "ModelTerms", "TermsInput", "TermsModel", "code4_coefficients"]

#: element kinds of the log-space terms
ELEMENT_KINDS = {"log": 0, "code1": 1, "code4": 2}
#: the smallest factor at which derivatives of ``log x`` are taken (a factor fixed at 0)
_TINY = 1e-150


def code4_coefficients(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """pyhf's code-4 polynomial coefficients ``c_1..c_6`` (``c_0 = 1``), shape ``[6, *hi.shape]``:
    value, first and second derivative of ``hi**x`` / ``lo**-x`` matched at ``x = +-1``."""
    a_inv = np.array(
        [
            [15 / 16, -15 / 16, -7 / 16, -7 / 16, 1 / 16, -1 / 16],
            [3 / 2, 3 / 2, -9 / 16, 9 / 16, 1 / 16, 1 / 16],
            [-5 / 8, 5 / 8, 5 / 8, 5 / 8, -1 / 8, 1 / 8],
            [-3 / 2, -3 / 2, 7 / 8, -7 / 8, -1 / 8, -1 / 8],
            [3 / 16, -3 / 16, -3 / 16, -3 / 16, 1 / 16, -1 / 16],
            [1 / 2, 1 / 2, -5 / 16, 5 / 16, 1 / 16, 1 / 16],
        ]
    )
    hi, lo = np.asarray(hi, dtype=np.float64), np.asarray(lo, dtype=np.float64)
    lh, ll = np.log(hi), np.log(lo)
    b = np.stack([hi - 1, lo - 1, lh * hi, -ll * lo, lh**2 * hi, ll**2 * lo])
    return np.einsum("rc,c...->r...", a_inv, b)


def histosys_g(x: np.ndarray, code: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The histosys interpolation ``g(x)`` (``Delta = x S + g(x) D``) and its two derivatives."""
    ax = np.abs(x)
    if code == "code0":
        return ax, np.sign(x), np.zeros_like(x)
    t2 = x * x
    inside = ax <= 1.0
    g = np.where(inside, t2 * (15.0 - 10.0 * t2 + 3.0 * t2 * t2) / 8.0, ax)
    dg = np.where(inside, x * (30.0 - 40.0 * t2 + 18.0 * t2 * t2) / 8.0, np.sign(x))
    d2g = np.where(inside, (30.0 - 120.0 * t2 + 90.0 * t2 * t2) / 8.0, 0.0)
    return g, dg, d2g


@dataclass
class ModelTerms:
    """The element terms, additive terms, constraints and parameter set-up (module doc).

    A log-space element is a ``(row, use)`` pair: a *use* is one function ``phi`` of one
    parameter shared by many rows (a normsys of a sample in a channel: its bins), given by
    ``use_kind`` (:data:`ELEMENT_KINDS`), ``use_col``, ``use_a``, ``use_h`` and ``use_coeff``
    ``[U, 6]`` (code 4 only), so ``phi`` is evaluated once per use. Additive (histosys)
    elements are aligned arrays ``hs_*``. Per-parameter arrays are ``[K]``: ``sigma`` (NaN: no
    Gaussian constraint), ``tau`` (NaN: no Poisson constraint), ``aux`` the global observables,
    ``init``, ``lo``/``hi`` the bounds and ``fixed``.
    """

    rows: np.ndarray
    use: np.ndarray
    use_kind: np.ndarray
    use_col: np.ndarray
    use_a: np.ndarray
    use_h: np.ndarray
    use_coeff: np.ndarray
    hs_rows: np.ndarray
    hs_cols: np.ndarray
    hs_sum: np.ndarray
    hs_diff: np.ndarray
    hs_code: str
    sigma: np.ndarray
    tau: np.ndarray
    aux: np.ndarray
    init: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    fixed: np.ndarray
    settings: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def cols(self) -> np.ndarray:
        """The parameter of each log-space element."""
        return self.use_col[self.use]

    @property
    def gaussian(self) -> np.ndarray:
        return np.isfinite(self.sigma)

    @property
    def poisson(self) -> np.ndarray:
        return np.isfinite(self.tau)

    @property
    def constrained(self) -> np.ndarray:
        return self.gaussian | self.poisson


@dataclass
class TermsInput(FitInput):
    """A :class:`fit.FitInput` whose prediction is given by :class:`ModelTerms` (its log-kappa
    is empty): what a pyhf workspace becomes. :func:`fit.fit` fits it with :class:`TermsModel`."""

    terms: ModelTerms | None = None

    @property
    def init(self) -> np.ndarray:
        return self.terms.init

    @property
    def fixed(self) -> np.ndarray:
        return self.terms.fixed

    @property
    def bounds(self) -> np.ndarray:
        return np.stack([self.terms.lo, self.terms.hi], axis=1)

    @property
    def auxdata(self) -> np.ndarray:
        return self.terms.aux

    @property
    def poi_name(self) -> str | None:
        return self.pois[0].name if self.pois else None

    def validate(self) -> None:
        """Shapes, yields and data, and that every free parameter acts on something."""
        B, P, K = self.nbins, self.nprocs, self.nparams
        t = self.terms
        if t is None:
            raise FitInputError("a TermsInput needs its terms")
        if self.data.shape != (B,) or self.nominal.shape != (B, P) or len(self.parameters) != K:
            raise FitInputError("data, nominal and parameters do not match in shape")
        if sum(ch.nbins for ch in self.channels) != B:
            raise FitInputError("channel bin counts do not add up to the nominal's bins")
        for arr, what in ((t.sigma, "sigma"), (t.init, "init"), (t.fixed, "fixed")):
            if np.shape(arr) != (K,):
                raise FitInputError(f"terms.{what} has shape {np.shape(arr)}, expected ({K},)")
        if not (np.all(np.isfinite(self.nominal)) and np.all(self.nominal >= 0)):
            raise FitInputError("nominal yields must be finite and >= 0")
        if not (np.all(np.isfinite(self.data)) and np.all(self.data >= 0)):
            raise FitInputError("data must be finite and >= 0")
        acts = np.zeros(K, dtype=bool)
        acts[t.cols] = True
        acts[t.hs_cols] = True
        for k in np.flatnonzero(~acts & ~t.constrained & ~t.fixed):
            raise FitInputError(
                "has no effect on any bin and no constraint: the model is singular",
                where=f"parameter {self.parameters[k]!r}",
            )
        for poi in self.pois:
            if poi.name not in self.parameters:
                raise FitInputError(f"POI {poi.name!r} is not a parameter")

    def write(self, *args: Any, **kwargs: Any) -> Any:
        raise FitInputError("a pyhf workspace is not stored as fitinput.h5: keep the JSON")


class TermsModel(_Base):
    """The NLL of a :class:`TermsInput` with its exact gradient, Hessian and Hessian-vector
    product (module doc); the interface of :class:`fit.model.Model`."""

    def __init__(self, fi: TermsInput, **inputs: Any) -> None:
        if fi.terms is None:
            raise FitInputError("TermsModel needs a TermsInput with terms")
        t = fi.terms
        if inputs.get("theta0") is None:
            inputs["theta0"] = t.aux.copy()
        inputs["mc_stat"] = False
        super().__init__(fi, **inputs)
        K, NP = self.K, self.B * self.P
        self.terms = t
        self.constrained = t.constrained.copy()
        self.gauss, self.pois = t.gaussian, t.poisson
        self.sigma = np.where(self.gauss, t.sigma, 1.0)
        self.tau = np.where(self.pois, t.tau, 1.0)
        self.x_init = t.init.astype(np.float64).copy()
        self.fixed = t.fixed.copy() if t.fixed.any() else None
        self.lo, self.hi = t.lo, t.hi
        #: prefit variances (the yields' prefit band): sigma^2, 1/tau for Poisson gammas
        self.prior_var = np.where(self.gauss, self.sigma**2, np.where(self.pois, 1 / self.tau, 0))
        # one CSR pattern for the log-space (P) and additive (D) elements
        self._cols = t.cols.astype(np.int64)
        rows = np.concatenate([t.rows, t.hs_rows]).astype(np.int64)
        cols = np.concatenate([self._cols, t.hs_cols]).astype(np.int64)
        key = rows * K + cols
        ukey, pos = np.unique(key, return_inverse=True)
        self._nnz = ukey.size
        self._pos_l, self._pos_h = pos[: t.rows.size], pos[t.rows.size :]
        u_rows = ukey // K
        self._u_rows = u_rows
        self._indices = (ukey % K).astype(np.int32)
        self._indptr = np.searchsorted(u_rows, np.arange(NP + 1)).astype(np.int32)
        # the P and D entries alone (compact patterns, same order) for the Hessian's products
        self._sub = {}
        for name, pos_of in (("P", self._pos_l), ("D", self._pos_h)):
            idx = np.unique(pos_of)
            counts = np.bincount(u_rows[idx], minlength=NP)
            indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
            self._sub[name] = (idx, self._indices[idx], indptr)
        self._kinds = {
            name: np.flatnonzero(t.use_kind == code) for name, code in ELEMENT_KINDS.items()
        }
        self._E = sp.csr_array(
            (np.ones(NP), np.arange(NP), np.arange(0, NP + 1, self.P)), shape=(self.B, NP)
        )
        self._has_hs = t.hs_rows.size > 0
        self._state_cache: tuple[Any, ...] | None = None

    # ---------------------------------------------------------------- pieces
    def _elements(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``phi``, ``phi'``, ``phi''`` per log-space element (evaluated per use)."""
        t = self.terms
        xe = x[t.use_col]
        phi, d1, d2 = np.zeros(xe.size), np.zeros(xe.size), np.zeros(xe.size)
        i = self._kinds["log"]
        if i.size:
            v = xe[i]
            with np.errstate(divide="ignore", invalid="ignore"):
                phi[i] = np.where(v > 0, np.log(np.where(v > 0, v, 1.0)), -np.inf)
            vs = np.maximum(v, _TINY)
            d1[i] = 1.0 / vs
            d2[i] = -1.0 / (vs * vs)
        for name in ("code1", "code4"):
            i = self._kinds[name]
            if not i.size:
                continue
            v, a, h = xe[i], t.use_a[i], t.use_h[i]
            phi[i] = a * v + h * np.abs(v)
            d1[i] = a + h * np.sign(v)
            if name == "code4":
                inside = np.abs(v) < 1.0
                j, vi = i[inside], v[inside]
                c = t.use_coeff[j]  # [n, 6]
                pw = vi[:, None] ** np.arange(7)[None, :]  # v^0..v^6
                f = 1.0 + np.einsum("ni,ni->n", c, pw[:, 1:])
                fp = np.einsum("ni,ni->n", c * np.arange(1, 7), pw[:, :6])
                fpp = np.einsum(
                    "ni,ni->n", c[:, 1:] * (np.arange(2, 7) * np.arange(1, 6)), pw[:, :5]
                )
                ok = f > 0
                fs = np.where(ok, f, 1.0)
                phi[j] = np.where(ok, np.log(fs), -np.inf)
                d1[j] = fp / fs
                d2[j] = fpp / fs - d1[j] ** 2
        return phi[t.use], d1[t.use], d2[t.use]

    def _state(self, x: np.ndarray) -> dict[str, Any]:
        x = np.asarray(x, dtype=np.float64)
        cached = self._state_cache
        if cached is not None and cached[1] is self.bins and np.array_equal(cached[0], x):
            return cached[2]
        t, NP = self.terms, self.B * self.P
        phi, d1, d2 = self._elements(x)
        eta = np.bincount(t.rows, weights=phi, minlength=NP) if t.rows.size else np.zeros(NP)
        m = self.nom
        dD = d2D = None
        if self._has_hs:
            c = t.hs_cols
            g, dg, d2g = histosys_g(x, t.hs_code)  # per parameter, then per element
            delta = x[c] * t.hs_sum + g[c] * t.hs_diff
            m = m + np.bincount(t.hs_rows, weights=delta, minlength=NP)
            dD, d2D = t.hs_sum + dg[c] * t.hs_diff, d2g[c] * t.hs_diff
        with np.errstate(over="ignore", invalid="ignore"):
            G = np.exp(eta)
            e = m * G
        n = e.reshape(self.B, self.P).sum(axis=1)
        s = dict(x=x, phi=phi, d1=d1, d2=d2, G=G, m=m, e=e, n=n, dD=dD, d2D=d2D)
        s["ok"] = bool(
            np.all(np.isfinite(e))
            and np.all(n[self.mask] >= 0)
            and not np.any((n <= 0) & (self.bins.d > 0))
            and self._in_bounds(x)
        )
        if s["ok"]:
            s["L"], s["L1"], s["L2"] = self.bins.terms(n)
        self._state_cache = (x.copy(), self.bins, s)
        return s

    def _in_bounds(self, x: np.ndarray) -> bool:
        free = np.ones(self.K, dtype=bool) if self.fixed is None else ~self.fixed
        return bool(np.all((x[free] >= self.lo[free]) & (x[free] <= self.hi[free])))

    def _matrices(self, s: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
        """The values of ``P = dphi/dx`` and ``D = dDelta/dx`` on the shared pattern."""
        pdata = np.bincount(self._pos_l, weights=s["d1"], minlength=self._nnz)
        if not self._has_hs:
            return pdata, None
        return pdata, np.bincount(self._pos_h, weights=s["dD"], minlength=self._nnz)

    def _compact(self, name: str, data: np.ndarray) -> sp.csr_array:
        """``P`` or ``D`` on its own entries (CSR ``[B * P, K]``)."""
        idx, indices, indptr = self._sub[name]
        return sp.csr_array((data[idx], indices, indptr), shape=(self.B * self.P, self.K))

    def _Y(self, s: dict[str, Any], pdata: np.ndarray, ddata: np.ndarray | None) -> sp.csr_array:
        """``Y = de/dx = G m P + G D`` (CSR ``[B * P, K]``)."""
        r = self._u_rows
        data = (s["G"] * s["m"])[r] * pdata
        if ddata is not None:
            data = data + s["G"][r] * ddata
        return sp.csr_array((data, self._indices, self._indptr), shape=(self.B * self.P, self.K))

    # ---------------------------------------------------------------- constraints
    def constraint_value(self, x: np.ndarray) -> float:
        out = 0.0
        if self.gauss.any():
            r = np.where(self.gauss, (x - self.theta0) / self.sigma, 0.0)
            out += 0.5 * float(r @ r)
        if self.pois.any():
            i = np.flatnonzero(self.pois)
            rate, a = self.tau[i] * x[i], self.theta0[i]
            if np.any(rate <= 0):
                return float("inf")
            asafe = np.where(a > 0, a, 1.0)
            ratio = rate / asafe
            out += float(np.sum(np.where(a > 0, a * (ratio - 1.0 - np.log(ratio)), rate)))
        return out

    def constraint_grad(self, x: np.ndarray) -> np.ndarray:
        g = np.where(self.gauss, (x - self.theta0) / self.sigma**2, 0.0)
        if self.pois.any():
            xs = np.where(self.pois & (x > 0), x, 1.0)
            g = g + np.where(self.pois, self.tau - self.theta0 / xs, 0.0)
        return g

    def constraint_curv(self, x: np.ndarray) -> np.ndarray:
        c = np.where(self.gauss, 1.0 / self.sigma**2, 0.0)
        if self.pois.any():
            xs = np.where(self.pois & (x > 0), x, 1.0)
            c = c + np.where(self.pois, self.theta0 / (xs * xs), 0.0)
        return c

    def aux_response_scale(self, x: np.ndarray) -> np.ndarray:
        """Per parameter: ``-d(grad_k)/d(a_k) * sd(a_k)``, the factor of ``V[i, k]`` in the
        global impact of the global observable ``a_k`` (``1/sigma``; ``sqrt(tau / x)``)."""
        xs = np.where(self.pois & (x > 0), x, 1.0)
        return np.where(
            self.gauss, 1.0 / self.sigma, np.where(self.pois, np.sqrt(self.tau / xs), 0)
        )

    def pull_centers(self) -> np.ndarray:
        """The prefit centre of each constrained parameter (``a``; ``a / tau`` for Poisson)."""
        return np.where(self.pois, self.theta0 / self.tau, np.where(self.gauss, self.theta0, 0.0))

    # ---------------------------------------------------------------- API
    def yields(self, x: np.ndarray) -> np.ndarray:
        """Predicted yields ``[B, P]`` at ``x``."""
        return self._state(x)["e"].reshape(self.B, self.P)

    def yield_jacobian(self, x: np.ndarray) -> sp.csr_array:
        s = self._state(x)
        return self._Y(s, *self._matrices(s))

    def bin_jacobian(self, x: np.ndarray) -> sp.csr_array:
        return (self._E @ self.yield_jacobian(x)).tocsr()

    def value(self, x: np.ndarray) -> float:
        s = self._state(x)
        self.nfev += 1
        if not s["ok"]:
            return float("inf")
        return float(s["L"].sum()) + self.constraint_value(s["x"])

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        s = self._state(x)
        self.nfev += 1
        if not s["ok"]:
            return float("inf"), np.full(self.K, np.nan)
        Y = self._Y(s, *self._matrices(s))
        grad = Y.T @ s["L1"][self.row_bin] + self.constraint_grad(s["x"])
        return float(s["L"].sum()) + self.constraint_value(s["x"]), grad

    def _linearised(self, x: np.ndarray) -> dict[str, Any]:
        s = self._state(x)
        if "lin" in s:
            return s["lin"]
        if not s["ok"]:
            raise FitInputError("the Hessian is asked for outside the model's domain")
        t = self.terms
        pdata, ddata = self._matrices(s)
        Y = self._Y(s, pdata, ddata)
        P = self._compact("P", pdata)
        D = None if ddata is None else self._compact("D", ddata)
        L1r = s["L1"][self.row_bin]
        l1g = L1r * s["G"]
        curv = np.bincount(
            self._cols, weights=(l1g * s["m"])[t.rows] * s["d2"], minlength=self.K
        ) + self.constraint_curv(s["x"])
        if D is not None:
            curv = curv + np.bincount(
                t.hs_cols, weights=l1g[t.hs_rows] * s["d2D"], minlength=self.K
            )
        lin = dict(P=P, D=D, Y=Y, M=(self._E @ Y).tocsr(), w=L1r * s["e"], l1g=l1g, curv=curv)
        s["lin"] = lin
        return lin

    def hessp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Exact Hessian-vector product."""
        s, lin = self._state(x), self._linearised(x)
        P, D, M = lin["P"], lin["D"], lin["M"]
        Pv = P @ v
        out = M.T @ (s["L2"] * (M @ v)) + P.T @ (lin["w"] * Pv) + lin["curv"] * v
        if D is not None:
            out = out + D.T @ (lin["l1g"] * Pv) + P.T @ (lin["l1g"] * (D @ v))
        return out

    def hessian(self, x: np.ndarray, *, expected: bool = False) -> np.ndarray:
        """The exact dense Hessian ``[K, K]`` (``expected``: the Fisher information)."""
        s, lin = self._state(x), self._linearised(x)
        M = lin["M"]
        if expected:
            ns = np.where(s["n"] > 0, s["n"], 1.0)
            L2 = np.where(self.mask, 1.0 / ns, 0.0)
            H = self._mlm(M, L2)
            H[np.diag_indices(self.K)] += self.constraint_curv(s["x"])
            return H
        P, D = lin["P"], lin["D"]
        H = self._mlm(M, s["L2"])
        rest = P.T @ (sp.diags_array(lin["w"]) @ P)
        if D is not None:
            C = D.T @ (sp.diags_array(lin["l1g"]) @ P)
            rest = rest + C + C.T
        coo = rest.tocoo()
        np.add.at(H, (coo.row, coo.col), coo.data)
        H[np.diag_indices(self.K)] += lin["curv"]
        return H

    def _mlm(self, M: sp.csr_array, L2: np.ndarray) -> np.ndarray:
        """``M^T diag(L2) M`` as a dense array (by BLAS when ``M`` is not very sparse)."""
        if M.nnz > 0.02 * M.shape[0] * M.shape[1]:
            Md = M.toarray()
            return Md.T @ (L2[:, None] * Md)
        return (M.T @ (sp.diags_array(L2) @ M)).toarray()

    def fisher(self, x: np.ndarray) -> np.ndarray:
        return self.hessian(x, expected=True)
