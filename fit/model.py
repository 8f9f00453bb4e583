"""The negative log-likelihood of a :class:`fit.FitInput`: a structured sparse path and a JAX path.

Both give the same function of the parameters ``x`` (see :mod:`fit.writer` for the prediction)::

    NLL(x) = sum_b [ L_b(n_b(x)) - L_b^sat ] + 1/2 sum_{k constrained} (x_k - x0_k)^2

with, per unmasked bin, the Poisson term ``L_b = n - d log n``, or with Barlow-Beeston-lite
(``sumw2`` given, ``k_b = (sum_p nominal)^2 / sum_p sumw2`` effective MC events, one gamma-
constrained factor ``beta_b`` per bin with auxiliary observation ``beta0_b`` (1 in data) profiled
analytically, as combinetf does):

    beta_b = (d + k) / (n + k / beta0),   L_b = beta n - d log(beta n) + k (beta/beta0 - log(beta/beta0)).

``L_b^sat`` (its minimum: ``d - d log d`` [+ ``k``]) is subtracted so the NLL is ~ndf/2 at the
minimum (the trust region stalls without it: the NLL would be ~1e8 and its changes ~1).

The NLL depends on ``x`` only through ``eta[b, p] = log(nominal) + logk(x)``, so with
``J = d eta / d x`` (sparse, same pattern as log-kappa), ``e = exp(eta)`` and the per-bin
derivatives ``L1 = dL/dn``, ``L2 = d2L/dn2`` the exact derivatives are

    grad = J^T (L1 e) + C (x - x0)
    H    = J^T diag(L1 e) J + M^T diag(L2) M + diag(curv) + C,   M[b] = sum_p e[b, p] J[b, p]

(``curv`` is the asymmetric interpolation's second-derivative term, per element). :class:`Model`
evaluates these with ``scipy.sparse``, treating the few columns that touch many bins (global
nuisances) as a dense block multiplied by BLAS and the rest (one eta slice each) as sparse.
:class:`DenseModel` is the same NLL in JAX (float64) with autodiff: the reference for small
models and for the cross-checks in the tests.

Why one module of ~530 lines: it is one formula, the NLL above with its gradient and Hessian,
written twice on purpose -- the structured :class:`Model` and the autodiff :class:`DenseModel`
-- over the pieces they share (the asymmetric interpolation, the per-bin Poisson and
Barlow-Beeston terms of :class:`BinTerms`, the parameter layout of ``_Base``). Split apart, a
reader changing one implementation would no longer see the other, and the tests compare them
term by term.

>>> import numpy as np
>>> from fit.builder import FitInputBuilder
>>> b = FitInputBuilder()
>>> b.add_channel("sr", np.array([12.0, 20.0]))
>>> b.add_process("sr", "sig", np.array([8.0, 19.0]), signal=True)
>>> b.add_process("sr", "bkg", np.array([2.0, 1.0]))
>>> b.add_poi("mu")
>>> m = Model(b.build())
>>> round(float(m.value(np.zeros(1))), 6)  # 8 + 2 - 12 log 10 - (12 - 12 log 12)
0.187859
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .errors import FitInputError
from .writer import FitInput

__all__ = ["BinTerms", "DenseModel", "Model", "enable_x64", "interpolation"]


def enable_x64() -> None:
    """Switch JAX to float64 (done by the fit itself, not at import of unrelated code)."""
    import jax

    jax.config.update("jax_enable_x64", True)


def interpolation(x: np.ndarray, xp: Any = np) -> tuple[Any, Any, Any]:
    """combinetf's smooth step: ``g(x) = x * alpha(x)`` and its first two derivatives.

    ``alpha(x) = (t (t^2 (3 t^2 - 10) + 15)) / 8`` with ``t = 2x``, clipped to [-1, 1] beyond
    ``|x| = 1/2``; ``logk(x) = a x + h g(x)`` interpolates log-kappa between down and up.
    """
    t = xp.clip(2.0 * x, -1.0, 1.0)
    inside = xp.abs(2.0 * x) < 1.0
    t2 = t * t
    alpha = 0.125 * t * (t2 * (3.0 * t2 - 10.0) + 15.0)
    dalpha = xp.where(inside, 3.75 * (t2 - 1.0) ** 2, 0.0)
    d2alpha = xp.where(inside, 30.0 * t * (t2 - 1.0), 0.0)
    return x * alpha, alpha + x * dalpha, 2.0 * dalpha + x * d2alpha


class BinTerms:
    """Per-bin likelihood terms ``L(n)``, ``dL/dn``, ``d2L/dn2`` (numpy), shared by both paths.

    ``mask`` selects the bins in the likelihood, ``kstat`` the effective MC events (``inf``: no
    Barlow-Beeston-lite in that bin), ``beta0`` its auxiliary observations.
    """

    def __init__(self, data: np.ndarray, mask: np.ndarray, kstat: np.ndarray, beta0: np.ndarray):
        self.d = np.where(mask, data, 0.0)
        self.mask = mask
        self.bb = np.isfinite(kstat) & mask
        self.k = np.where(self.bb, kstat, 0.0)
        self.beta0 = np.where(self.bb, beta0, 1.0)
        dlogd = np.where(self.d > 0, self.d * np.log(np.where(self.d > 0, self.d, 1.0)), 0.0)
        self.sat = np.where(mask, self.d - dlogd + self.k, 0.0)

    def terms(self, n: Any, xp: Any = np) -> tuple[Any, Any, Any]:
        """``(L - L_sat, dL/dn, d2L/dn2)`` per bin, zero outside the mask.

        ``L - L_sat = d phi(beta n / d) + k phi(beta / beta0)`` with ``phi(r) = r - 1 - log r``
        evaluated as ``delta - log1p(delta)`` from the differences ``beta n - d`` and
        ``d - beta0 n``: near the minimum each bin is ~1 while ``n`` is ~1e4, and the naive
        ``n - d log n - (d - d log d)`` would leave ~1e-9 of rounding noise in the NLL, more
        than the last Newton steps change it.
        """
        if xp is np:
            # far trial points of a line search may over/underflow (n -> 0 or inf): the value is
            # then inf and the step is rejected; no warnings for that
            with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
                return self._terms(n, np)
        return self._terms(n, xp)

    def _terms(self, n: Any, xp: Any) -> tuple[Any, Any, Any]:
        d, k, beta0, bb = self.d, self.k, self.beta0, self.bb
        mask = self.mask
        ns = xp.where(n > 0, n, 1.0)
        den = ns + k / beta0
        beta = xp.where(bb, (d + k) / den, 1.0)
        bn_minus_d = xp.where(bb, k * (ns - d / beta0) / den, ns - d)
        dpos = d > 0
        dsafe = xp.where(dpos, d, 1.0)
        delta = xp.where(dpos, bn_minus_d / dsafe, 0.0)
        # phi(r) = r - 1 - log r: through log1p(delta) near r = 1 (precision at the minimum),
        # through log(r) for r << 1, where 1 + delta rounds to 0 (beta n / d < 1e-16, e.g. a
        # yield far below the data with BB-lite k -> 0) although phi is finite
        r = xp.where(bb, (d + k) * n / (n + k / beta0), n) / dsafe
        small = delta < -0.5
        phi = xp.where(
            small,
            r - 1.0 - xp.log(xp.where(small, r, 1.0)),
            delta - xp.log1p(xp.where(small, 0.0, delta)),
        )
        term_d = xp.where(dpos, d * phi, beta * n)
        delta_b = xp.where(bb, (d - beta0 * ns) / (beta0 * ns + k), 0.0)
        term_k = xp.where(bb, k * (delta_b - xp.log1p(delta_b)), 0.0)
        value = xp.where(mask, term_d + term_k, 0.0)
        d1 = xp.where(mask, xp.where(bb, beta - d / ns, bn_minus_d / ns), 0.0)
        d2 = xp.where(mask, (d / ns) / ns - xp.where(bb, beta / den, 0.0), 0.0)
        return value, d1, d2

    def responses(self, n: np.ndarray) -> dict[str, np.ndarray]:
        """Derivatives of ``dL/dn`` w.r.t. the random inputs, and the inputs' variances.

        The data count ``d_b`` (variance: the fitted expectation ``n_b``, so the identity of
        :func:`fit.uncertainties.global_impacts` is exact on Asimov data) and the BB-lite auxiliary
        observation ``beta0_b`` (variance ``1/k_b``, gamma-distributed ``k beta0``).
        """
        d, k, beta0, bb = self.d, self.k, self.beta0, self.bb
        ns = np.where(n > 0, n, 1.0)
        denom = ns + np.where(bb, k / beta0, 0.0)
        dd = np.where(bb, 1.0 / np.where(bb, denom, 1.0), 0.0) - 1.0 / ns
        dbeta0 = np.where(bb, (d + k) * k / beta0**2 / np.where(bb, denom, 1.0) ** 2, 0.0)
        return {
            "d_L1_d_data": np.where(self.mask, dd, 0.0),
            "var_data": np.where(self.mask, n, 0.0),
            "d_L1_d_beta0": np.where(self.mask, dbeta0, 0.0),
            "var_beta0": np.where(bb, 1.0 / np.where(bb, k, 1.0), 0.0),
        }


def _kstat(fi: FitInput, mc_stat: bool) -> np.ndarray:
    if not mc_stat or fi.sumw2 is None:
        return np.full(fi.nbins, np.inf)
    w = fi.nominal.sum(axis=1)
    w2 = fi.sumw2.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((w2 > 0) & (w > 0), w * w / np.where(w2 > 0, w2, 1.0), np.inf)


def _nonzero(logk: sp.csr_array) -> sp.coo_array:
    """The entries of ``logk`` that are not zero, as COO. A stored zero is no entry: dropping
    it is exact, and keeps the pattern sparse (a fit input may store the zeros of a process's
    variations; 2/3 of the entries of the demo's)."""
    coo = logk.tocoo()
    keep = coo.data != 0
    return sp.coo_array((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=coo.shape)


class _Base:
    """What both paths share: inputs (data, global observables), sizes, constraint terms."""

    def __init__(
        self,
        fi: FitInput,
        *,
        data: np.ndarray | None = None,
        theta0: np.ndarray | None = None,
        beta0: np.ndarray | None = None,
        mc_stat: bool = True,
    ) -> None:
        self.fit_input = fi
        self.B, self.P, self.K = fi.nbins, fi.nprocs, fi.nparams
        self.mask = fi.bin_mask
        self.data = np.asarray(fi.data if data is None else data, dtype=np.float64)
        if self.data.shape != (self.B,):
            raise FitInputError(f"data has shape {self.data.shape}, expected ({self.B},)")
        self.constrained = fi.constraints == "gaussian"
        self.theta0 = np.zeros(self.K) if theta0 is None else np.asarray(theta0, dtype=np.float64)
        self.kstat = _kstat(fi, mc_stat)
        self.beta0 = np.ones(self.B) if beta0 is None else np.asarray(beta0, dtype=np.float64)
        self.bins = BinTerms(self.data, self.mask, self.kstat, self.beta0)
        self.nom = fi.nominal.ravel()
        self.row_bin = np.repeat(np.arange(self.B), self.P)
        self.nfev = 0

    def constraint_value(self, x: np.ndarray) -> float:
        r = np.where(self.constrained, x - self.theta0, 0.0)
        return 0.5 * float(r @ r)

    def constraint_grad(self, x: np.ndarray) -> np.ndarray:
        return np.where(self.constrained, x - self.theta0, 0.0)


class Model(_Base):
    """The structured, sparse NLL with its exact gradient, Hessian and Hessian-vector product.

    ``dense_fraction``: columns with more than this fraction of non-zero (bin, process) entries
    are handled as one dense block (BLAS), the others as a sparse matrix.
    """

    def __init__(self, fi: FitInput, *, dense_fraction: float = 0.05, **inputs: Any) -> None:
        super().__init__(fi, **inputs)
        NP, K = self.B * self.P, self.K
        up = _nonzero(fi.logk_up)
        if fi.logk_down is None:
            pat = sp.csr_array((up.data, (up.row, up.col)), shape=(NP, K))
            pat.sum_duplicates()
            pat.sort_indices()
            self.a_vals, self.h_vals = pat.data.copy(), None
        else:
            # one shared pattern for a = (u - d)/2 and h = (u + d)/2: complex values u + i d
            down = _nonzero(fi.logk_down)
            vals = np.concatenate([up.data + 0j, 1j * down.data])
            rows = np.concatenate([up.row, down.row])
            cols = np.concatenate([up.col, down.col])
            pat = sp.csr_array((vals, (rows, cols)), shape=(NP, K))
            pat.sum_duplicates()
            pat.sort_indices()
            u, d = pat.data.real.copy(), pat.data.imag.copy()
            self.a_vals, self.h_vals = 0.5 * (u - d), 0.5 * (u + d)
            pat = sp.csr_array((np.ones(u.size), pat.indices, pat.indptr), shape=(NP, K))
        self.indptr, self.indices = pat.indptr, pat.indices
        self.A = sp.csr_array((self.a_vals, self.indices, self.indptr), shape=(NP, K))
        self.Hh = (
            None
            if self.h_vals is None
            else sp.csr_array((self.h_vals, self.indices, self.indptr), shape=(NP, K))
        )
        self.col_of = self.indices
        self.row_of = np.repeat(np.arange(NP), np.diff(self.indptr))
        # dense / sparse column split for the Hessian
        nnz_col = np.bincount(self.indices, minlength=K)
        self.dense_cols = np.flatnonzero(nnz_col > dense_fraction * NP)
        self.sparse_cols = np.flatnonzero(nnz_col <= dense_fraction * NP)
        is_dense = np.zeros(K, dtype=bool)
        is_dense[self.dense_cols] = True
        pos = np.empty(K, dtype=np.int64)
        pos[self.dense_cols] = np.arange(self.dense_cols.size)
        pos[self.sparse_cols] = np.arange(self.sparse_cols.size)
        sel_d = is_dense[self.indices]
        proc_of = self.row_of % self.P
        bin_of = self.row_of // self.P
        # per process: the dense columns it touches, and where its entries go in a [B, m_p] block
        self._dense_blocks = []
        for p in range(self.P):
            on = np.flatnonzero(sel_d & (proc_of == p))
            if on.size == 0:
                continue
            cols_p, local = np.unique(pos[self.indices[on]], return_inverse=True)
            self._dense_blocks.append((p, cols_p, bin_of[on], local, on))
        sel_l = np.flatnonzero(~sel_d)
        jl = sp.csr_array(
            (sel_l.astype(np.float64) + 1.0, (self.row_of[sel_l], pos[self.indices[sel_l]])),
            shape=(NP, self.sparse_cols.size),
        )
        jl.sort_indices()
        # jl.data holds, in its own order, 1 + the index into the shared data array
        self._l_idx = jl.data.astype(np.int64) - 1
        self._l_indices, self._l_indptr = jl.indices, jl.indptr
        # the same, one [B, S] matrix per process (for the dense x sparse cross term)
        self._l_blocks = []
        for p in range(self.P):
            sub = jl[p :: self.P]
            if sub.nnz and any(b[0] == p for b in self._dense_blocks):
                sub.sort_indices()
                self._l_blocks.append((p, sub.data.astype(np.int64) - 1, sub.indices, sub.indptr))
        # dense columns first in the parameter order: blocks are written as slices
        self._dense_first = bool(np.array_equal(self.dense_cols, np.arange(self.dense_cols.size)))
        # E: [B, NP] row-block sums with the yields as values
        self._E_indptr = np.arange(0, NP + 1, self.P)
        self._E_indices = np.arange(NP)

    # ---------------------------------------------------------------- pieces
    def _eta(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        eta = self.A @ x
        gp = gpp = None
        if self.Hh is not None:
            g, gp, gpp = interpolation(x)
            eta = eta + self.Hh @ g
        return eta, gp, gpp

    def yields(self, x: np.ndarray) -> np.ndarray:
        """Predicted yields ``[B, P]`` at ``x``."""
        eta, _, _ = self._eta(np.asarray(x, dtype=np.float64))
        return (self.nom * np.exp(eta)).reshape(self.B, self.P)

    def jacobian(self, x: np.ndarray) -> sp.csr_array:
        """``J = d eta / d x`` as CSR ``[B * P, K]``."""
        if self.Hh is None:
            return self.A
        _, gp, _ = interpolation(np.asarray(x, dtype=np.float64))
        data = self.a_vals + self.h_vals * gp[self.col_of]
        return sp.csr_array((data, self.indices, self.indptr), shape=self.A.shape)

    def yield_jacobian(self, x: np.ndarray) -> sp.csr_array:
        """``d yields[b, p] / d x`` as CSR ``[B * P, K]``."""
        e = self.yields(x).ravel()
        return (sp.diags_array(e) @ self.jacobian(x)).tocsr()

    def bin_jacobian(self, x: np.ndarray) -> sp.csr_array:
        """``M = d n / d x`` as CSR ``[B, K]`` (total yield per bin)."""
        e = self.yields(x).ravel()
        E = sp.csr_array((e, self._E_indices, self._E_indptr), shape=(self.B, self.B * self.P))
        return (E @ self.jacobian(x)).tocsr()

    def _state(self, x: np.ndarray) -> dict[str, Any]:
        x = np.asarray(x, dtype=np.float64)
        eta, gp, gpp = self._eta(x)
        e = self.nom * np.exp(eta)
        n = e.reshape(self.B, self.P).sum(axis=1)
        L, L1, L2 = self.bins.terms(n)
        return dict(x=x, e=e, n=n, L=L, L1=L1, L2=L2, gp=gp, gpp=gpp)

    # ---------------------------------------------------------------- API
    def value(self, x: np.ndarray) -> float:
        s = self._state(x)
        self.nfev += 1
        return float(s["L"].sum()) + self.constraint_value(s["x"])

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        s = self._state(x)
        self.nfev += 1
        w = s["L1"][self.row_bin] * s["e"]
        grad = self.jacobian(s["x"]).T @ w + self.constraint_grad(s["x"])
        return float(s["L"].sum()) + self.constraint_value(s["x"]), grad

    def _curv(self, s: dict[str, Any], w: np.ndarray) -> np.ndarray | None:
        if self.Hh is None:
            return None
        return s["gpp"] * (self.Hh.T @ w)

    def _linearised(self, x: np.ndarray) -> tuple[dict[str, Any], sp.csr_array, Any, Any]:
        """State, Jacobian, its transpose and the weights at ``x``; the last point is kept,
        since the conjugate-gradient steps ask for many products at one point."""
        x = np.asarray(x, dtype=np.float64)
        cached = getattr(self, "_lin", None)
        if cached is not None and np.array_equal(cached[0], x):
            return cached[1]
        s = self._state(x)
        J = self.jacobian(s["x"])
        w = s["L1"][self.row_bin] * s["e"]
        lin = (s, J, w, self._curv(s, w))
        self._lin = (x.copy(), lin)
        return lin

    def hessp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Exact Hessian-vector product."""
        s, J, w, curv = self._linearised(x)
        Jv = J @ v
        Mv = (s["e"] * Jv).reshape(self.B, self.P).sum(axis=1)
        r = w * Jv + s["e"] * (s["L2"] * Mv)[self.row_bin]
        out = J.T @ r + np.where(self.constrained, v, 0.0)
        return out if curv is None else out + curv * v

    def fisher(self, x: np.ndarray) -> np.ndarray:
        """The expected information at ``x``: the Hessian with the data replaced by the
        prediction (``dL/dn = 0``). Positive definite whenever the model is not singular, and
        equal to the Hessian at an Asimov minimum; the minimiser's preconditioner."""
        return self.hessian(x, expected=True)

    def hessian(self, x: np.ndarray, *, expected: bool = False) -> np.ndarray:
        """The exact dense Hessian ``[K, K]`` from the block structure (see the module doc).

        Columns touching many bins ("dense", e.g. theory and normalisations) are filled, per
        process, into ``[B, m_p]`` blocks multiplied by BLAS; the others stay sparse.
        """
        s = self._state(x)
        e, L1, L2 = s["e"], s["L1"], s["L2"]
        if expected:
            ns = np.where(s["n"] > 0, s["n"], 1.0)
            bins = self.bins
            L1 = np.zeros_like(L1)
            L2 = np.where(
                bins.mask, 1.0 / ns - np.where(bins.bb, 1.0 / (ns + bins.k / bins.beta0), 0.0), 0.0
            )
        w = L1[self.row_bin] * e
        NP, B, P = self.B * self.P, self.B, self.P
        data = self.a_vals if self.Hh is None else self.a_vals + self.h_vals * s["gp"][self.col_of]
        nd, ns = self.dense_cols.size, self.sparse_cols.size
        Hdd = np.zeros((nd, nd))
        Md = np.zeros((B, nd))
        Hld = np.zeros((ns, nd))
        lblocks = {blk[0]: blk for blk in self._l_blocks}
        for p, cols_p, b_idx, j_idx, on in self._dense_blocks:
            Jp = np.zeros((B, cols_p.size))
            Jp[b_idx, j_idx] = data[on]
            Md[:, cols_p] += e[p::P, None] * Jp
            if expected:  # dL/dn = 0: no diag(L1 e) term
                continue
            WJp = w[p::P, None] * Jp
            Hdd[np.ix_(cols_p, cols_p)] += Jp.T @ WJp
            if p in lblocks:
                _, idx, ind, ptr = lblocks[p]
                Jl_p = sp.csr_array((data[idx], ind, ptr), shape=(B, ns))
                Hld[:, cols_p] += Jl_p.T @ WJp
        L2Md = L2[:, None] * Md
        Hdd += Md.T @ L2Md
        Jl = sp.csr_array((data[self._l_idx], self._l_indices, self._l_indptr), shape=(NP, ns))
        E = sp.csr_array((e, self._E_indices, self._E_indptr), shape=(B, NP))
        Ml = (E @ Jl).tocsr()
        Hld += Ml.T @ L2Md
        L2Ml = sp.diags_array(L2) @ Ml
        Hll = Ml.T @ L2Ml
        if not expected:
            WJl = sp.csr_array(
                (w[self.row_of[self._l_idx]] * Jl.data, Jl.indices, Jl.indptr), shape=Jl.shape
            )
            Hll = Hll + Jl.T @ WJl
        Hll = Hll.tocsr()
        D, S = self.dense_cols, self.sparse_cols
        H = np.zeros((self.K, self.K))
        if self._dense_first:
            H[:nd, :nd] = Hdd
            H[nd:, :nd] = Hld
            H[:nd, nd:] = Hld.T
        else:
            H[np.ix_(D, D)] = Hdd
            H[np.ix_(S, D)] = Hld
            H[np.ix_(D, S)] = Hld.T
        coo = Hll.tocoo()
        H[S[coo.row], S[coo.col]] += coo.data
        diag = np.where(self.constrained, 1.0, 0.0)
        curv = self._curv(s, w)
        if curv is not None:
            diag = diag + curv
        H[np.diag_indices(self.K)] += diag
        return H


class DenseModel(_Base):
    """The same NLL in JAX (float64, jit), with autodiff gradient, HVP and Hessian.

    Memory is ``B * P * K`` doubles (x2 when asymmetric): the reference path for small models.
    """

    def __init__(self, fi: FitInput, **inputs: Any) -> None:
        super().__init__(fi, **inputs)
        enable_x64()
        import jax
        import jax.numpy as jnp

        NP, K = self.B * self.P, self.K
        up = fi.logk_up.toarray()
        if fi.logk_down is None:
            a, h = jnp.asarray(up), None
        else:
            down = fi.logk_down.toarray()
            a, h = jnp.asarray(0.5 * (up - down)), jnp.asarray(0.5 * (up + down))
        del up
        nom = jnp.asarray(self.nom)
        bins, constrained = self.bins, jnp.asarray(self.constrained)
        theta0 = jnp.asarray(self.theta0)
        B, P = self.B, self.P
        assert a.shape == (NP, K)

        def yields(x):
            eta = a @ x
            if h is not None:
                eta = eta + h @ interpolation(x, jnp)[0]
            return nom * jnp.exp(eta)

        def nll(x):
            n = yields(x).reshape(B, P).sum(axis=1)
            L, _, _ = bins.terms(n, jnp)
            r = jnp.where(constrained, x - theta0, 0.0)
            return jnp.sum(L) + 0.5 * jnp.dot(r, r)

        self._yields = jax.jit(yields)
        self._nll = jax.jit(nll)
        self._vg = jax.jit(jax.value_and_grad(nll))
        self._hvp = jax.jit(lambda x, v: jax.jvp(jax.grad(nll), (x,), (v,))[1])
        self._hess = jax.jit(jax.hessian(nll))
        self._binjac = jax.jit(jax.jacfwd(lambda x: yields(x).reshape(B, P).sum(axis=1)))

    def value(self, x: np.ndarray) -> float:
        self.nfev += 1
        return float(self._nll(np.asarray(x, dtype=np.float64)))

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.nfev += 1
        v, g = self._vg(np.asarray(x, dtype=np.float64))
        return float(v), np.asarray(g)

    def hessp(self, x: np.ndarray, v: np.ndarray) -> np.ndarray:
        return np.asarray(
            self._hvp(np.asarray(x, dtype=np.float64), np.asarray(v, dtype=np.float64))
        )

    def hessian(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._hess(np.asarray(x, dtype=np.float64)))

    def fisher(self, x: np.ndarray) -> np.ndarray:
        """The expected information (see :meth:`Model.fisher`), from the bin Jacobian."""
        x = np.asarray(x, dtype=np.float64)
        M = np.asarray(self._binjac(x))
        n = np.asarray(self._yields(x)).reshape(self.B, self.P).sum(axis=1)
        ns = np.where(n > 0, n, 1.0)
        b = self.bins
        L2 = np.where(b.mask, 1.0 / ns - np.where(b.bb, 1.0 / (ns + b.k / b.beta0), 0.0), 0.0)
        return M.T @ (L2[:, None] * M) + np.diag(self.constrained.astype(np.float64))

    def yields(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self._yields(np.asarray(x, dtype=np.float64))).reshape(self.B, self.P)

    def bin_jacobian(self, x: np.ndarray) -> sp.csr_array:
        return sp.csr_array(np.asarray(self._binjac(np.asarray(x, dtype=np.float64))))

    def yield_jacobian(self, x: np.ndarray) -> sp.csr_array:
        import jax

        return sp.csr_array(np.asarray(jax.jacfwd(self._yields)(np.asarray(x, dtype=np.float64))))
