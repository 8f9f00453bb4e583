"""``fit.fit``: fit a :class:`fit.FitInput` and collect everything into a :class:`fit.FitResult`.

>>> import numpy as np
>>> from fit.builder import FitInputBuilder
>>> b = FitInputBuilder()
>>> b.add_channel("sr", np.array([110.0, 205.0, 290.0]))
>>> b.add_process("sr", "sig", np.array([10.0, 20.0, 30.0]), signal=True)
>>> b.add_process("sr", "bkg", np.array([100.0, 180.0, 250.0]))
>>> b.add_poi("mu")
>>> b.add_norm("bkg_norm", ["bkg"], 1.05)
>>> res = fit(b.build(), data="asimov")
>>> round(res.pois["mu"]["value"], 12), res.status
(1.0, 'converged')
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import uncertainties as unc
from .errors import FitDidNotConverge, FitInputError
from .gof import saturated_gof
from .minimize import minimize, restrict
from .model import DenseModel, Model
from .provenance import provenance
from .result import FitResult
from .terms import TermsModel
from .toys import asimov_data, generate_toy
from .writer import FitInput

__all__ = ["MINIMIZERS", "fit", "make_model", "minimize_model", "scan"]

#: ``trust``: Newton with the exact Hessian (Cholesky + dogleg); ``cg``: Steihaug CG with
#: Hessian-vector products; ``trust-krylov``: scipy's, with HVPs; ``minuit``: iminuit MIGRAD +
#: HESSE with the exact gradient (strategy 2, EDM goal ``tol``), a cross-check; HESSE is
#: numerical (Minuit's g2 tolerance: ~1e-3 relative) except with the dense backend, which hands
#: iminuit JAX's autodiff Hessian.
MINIMIZERS = ("trust", "cg", "trust-krylov", "minuit")


def make_model(
    fit_input: FitInput, backend: str = "sparse", **inputs: Any
) -> Model | DenseModel | TermsModel:
    """The NLL of ``fit_input``: ``backend="sparse"`` (structured) or ``"dense"`` (JAX autodiff);
    a :class:`fit.terms.TermsInput` (a pyhf workspace) always gets its :class:`TermsModel`."""
    if getattr(fit_input, "terms", None) is not None:
        if backend not in ("sparse", "terms"):
            raise FitInputError(f"backend {backend!r}: a pyhf workspace fits with 'sparse'")
        inputs.pop("mc_stat", None)
        return TermsModel(fit_input, **inputs)
    if backend == "sparse":
        return Model(fit_input, **inputs)
    if backend == "dense":
        return DenseModel(fit_input, **inputs)
    raise FitInputError(f"backend {backend!r}: choose 'sparse' or 'dense'")


def _with_inputs(model: Model | DenseModel, **inputs: Any) -> Model | DenseModel:
    """The same model with other data / global observables (cheap for the sparse model)."""
    if isinstance(model, DenseModel):
        kw = {"data": model.data, "theta0": model.theta0, "beta0": model.beta0}
        kw.update(inputs)
        return DenseModel(model.fit_input, mc_stat=bool(np.isfinite(model.kstat).any()), **kw)
    from .model import BinTerms

    new = copy.copy(model)
    for key, value in inputs.items():
        setattr(new, key, np.asarray(value, dtype=np.float64))
    new.bins = BinTerms(new.data, new.mask, new.kstat, new.beta0)
    return new


def minimize_model(
    model: Model | DenseModel,
    *,
    minimizer: str = "trust",
    x0: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 200,
) -> dict[str, Any]:
    """Minimise ``model`` (optionally with ``fixed`` parameters held at ``x0``).

    Returns ``x``, ``nll``, ``edm``, ``n_iter``, ``hess`` (exact, at the minimum, over all
    parameters) and, for minuit, ``covariance`` from HESSE. The model's own start and fixed
    parameters (``model.x_init``, ``model.fixed``: a pyhf workspace's) are the defaults.
    """
    K = model.K
    x_init = getattr(model, "x_init", None)
    if x0 is None:
        x0 = np.zeros(K) if x_init is None else x_init.copy()
    x0 = np.asarray(x0, dtype=np.float64)
    model_fixed = getattr(model, "fixed", None)
    if model_fixed is not None:
        fixed = model_fixed if fixed is None else (np.asarray(fixed, dtype=bool) | model_fixed)
    free = np.ones(K, dtype=bool) if fixed is None else ~np.asarray(fixed, dtype=bool)
    vg, hess, hessp, embed, fisher = restrict(
        free, x0, model.value_and_grad, model.hessian, model.hessp, model.fisher
    )
    y0 = x0[free]
    out: dict[str, Any] = {}
    if minimizer == "trust":
        res = minimize(vg, y0, hess=hess, hessp=hessp, fisher=fisher, tol=tol, max_iter=max_iter)
        y, n_iter, H = res.x, res.n_iter, res.hess
        if fixed is None:
            out["factor"] = res.factor
    elif minimizer == "cg":
        res = minimize(vg, y0, hessp=hessp, tol=tol, max_iter=max_iter)
        y, n_iter, H = res.x, res.n_iter, None
    elif minimizer == "trust-krylov":
        from scipy.optimize import minimize as sp_minimize

        r = sp_minimize(
            vg,
            y0,
            jac=True,
            hessp=hessp,
            method="trust-krylov",
            options={"gtol": 1e-9, "maxiter": max_iter},
        )
        if not np.isfinite(r.fun):
            raise FitDidNotConverge("non-finite NLL", x=embed(r.x))
        y, n_iter, H = r.x, int(r.nit), None
    elif minimizer == "minuit":
        y, n_iter, cov = _minuit(vg, y0, tol, hess if isinstance(model, DenseModel) else None)
        out["covariance_free"] = cov
        H = None
    else:
        raise FitInputError(f"minimizer {minimizer!r}: choose one of {MINIMIZERS}")
    x = embed(y)
    if minimizer == "trust" and free.all():
        # the minimiser's exact Hessian, factor and EDM at this very point
        f, g, Hfull, edm = res.fun, res.grad, res.hess, res.edm
    else:
        f, g = model.value_and_grad(x)
        Hfull = model.hessian(x)
        Hf = Hfull[np.ix_(free, free)] if H is None else H
        gf = g[free]
        try:
            sol = np.linalg.solve(Hf, gf)
        except np.linalg.LinAlgError:
            raise FitDidNotConverge("Hessian singular at the minimum", x=x, n_iter=n_iter) from None
        edm = 0.5 * float(gf @ sol)
    if minimizer != "trust" and not (edm < max(tol, 1e-8) * 10):
        raise FitDidNotConverge(
            f"{minimizer}: edm {edm:.3g} above the goal", x=x, edm=edm, n_iter=n_iter
        )
    out.update(x=x, nll=float(f), grad=g, edm=edm, n_iter=n_iter, hess=Hfull, free=free)
    return out


def _minuit(vg, y0: np.ndarray, tol: float, hess=None) -> tuple[np.ndarray, int, np.ndarray]:
    """MIGRAD (strategy 2, exact gradient) + HESSE; numerical second derivatives unless
    ``hess`` (the JAX autodiff Hessian of the dense backend) is given."""
    from iminuit import Minuit

    cache: dict[bytes, tuple[float, np.ndarray]] = {}

    def both(y):
        key = np.asarray(y).tobytes()
        if key not in cache:
            cache.clear()
            cache[key] = vg(np.asarray(y, dtype=np.float64))
        return cache[key]

    extra = {} if hess is None else {"hessian": lambda y: hess(np.asarray(y, dtype=np.float64))}
    m = Minuit(lambda y: both(y)[0], y0, grad=lambda y: both(y)[1], **extra)
    m.errordef = Minuit.LIKELIHOOD
    m.strategy = 2
    # iminuit stops at EDM < 0.002 * tol * errordef
    m.tol = max(tol / (0.002 * 0.5), 1e-8)
    m.migrad(ncall=200000)
    if not m.valid:
        raise FitDidNotConverge(f"minuit: {m.fmin}", x=np.array(m.values), edm=float(m.fmin.edm))
    m.hesse()
    if not m.accurate:
        raise FitDidNotConverge("minuit: HESSE covariance not accurate", x=np.array(m.values))
    return np.array(m.values), int(m.nfcn), np.array(m.covariance)


def _covariance(m: dict[str, Any], minimizer: str, *, use_factor: bool = True) -> np.ndarray:
    """The covariance of a :func:`minimize_model` result, zero rows/columns for fixed parameters."""
    free = m["free"]
    if minimizer == "minuit":
        cov_free = m["covariance_free"]
    elif free.all():
        return unc.covariance(m["hess"], m.get("factor") if use_factor else None)
    else:
        cov_free = unc.covariance(m["hess"][np.ix_(free, free)])
    if free.all():
        return cov_free
    cov = np.zeros((free.size, free.size))
    cov[np.ix_(free, free)] = cov_free
    return cov


def _report_scale(poi, x: float) -> float:
    return abs(poi.scale) * (float(np.exp(x)) if poi.kind == "norm" else 1.0)


def fit(
    fit_input: FitInput,
    *,
    data: str | np.ndarray = "observed",
    toys: int | None = None,
    seed: int = 0,
    impacts: bool = False,
    global_impacts: bool = False,
    minimizer: str = "trust",
    backend: str = "sparse",
    mc_stat: bool = True,
    theta0: np.ndarray | None = None,
    yields: bool = True,
    scan: Sequence[str] = (),
    scan_points: int = 21,
    scan_range: float = 3.0,
    tol: float = 1e-10,
    max_iter: int = 200,
    meta: dict[str, Any] | None = None,
) -> FitResult:
    """Fit and return a :class:`FitResult` (POIs in reported units, covariance, impacts, ...).

    ``data``: ``"observed"``, ``"asimov"`` (the prefit expectation: gives back the nominal
    parameters exactly) or an array of counts. ``toys`` follows combine's ``-t``: ``-1`` Asimov,
    ``0`` observed, ``N > 0``: the central fit is the Asimov one and ``N`` seeded toys
    (Poisson data, randomised global observables, generated at the nominal point) are fitted,
    their values/errors stored in ``result.toys``. ``impacts``: traditional impacts per
    parameter and group; ``global_impacts``: per source (data_stat, groups, mc_stat).
    ``scan``: POIs to scan (profiled), ``scan_points`` over ``+-scan_range`` sigma.
    ``theta0``: the global observables of the Gaussian constraints (default 0), e.g. to fit
    pseudo-data made at pulled nuisances.
    """
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    if toys is not None and toys < 0:
        data = "asimov"
    elif toys == 0:
        data = "observed"
    fi = fit_input
    if isinstance(data, str):
        if data not in ("observed", "asimov"):
            raise FitInputError(f"data {data!r}: choose 'observed', 'asimov' or an array")
        label = data
    else:
        label = "pseudodata"
    t = time.perf_counter()
    counts = None
    if isinstance(data, str) and data == "asimov" or (toys is not None and toys > 0):
        label = "asimov" if toys is None or toys <= 0 else "toys"
        # the prediction at x = 0 is the nominal
        counts = asimov_data(fi.nominal.sum(axis=1), fi.bin_mask)
    elif not isinstance(data, str):
        counts = np.asarray(data, dtype=np.float64)
    terms = getattr(fi, "terms", None) is not None
    if terms and counts is not None and (isinstance(data, str) or toys):
        # the prediction at the initial values (a workspace's are not all 0)
        model = make_model(fi, backend, theta0=theta0)
        counts = asimov_data(model.yields(model.x_init).sum(axis=1), fi.bin_mask)
        model = _with_inputs(model, data=counts)
    else:
        model = make_model(fi, backend, mc_stat=mc_stat, theta0=theta0, data=counts)
    timings["build"] = time.perf_counter() - t
    t = time.perf_counter()
    m = minimize_model(model, minimizer=minimizer, tol=tol, max_iter=max_iter)
    timings["minimize"] = time.perf_counter() - t
    t = time.perf_counter()
    x = m["x"]
    cov = _covariance(m, minimizer)
    errors = np.sqrt(np.diag(cov))
    timings["covariance"] = time.perf_counter() - t
    result = FitResult(
        parameters=list(fi.parameters),
        values=x,
        errors=errors,
        covariance=cov,
        constrained=model.constrained.copy(),
        groups=fi.groups.copy(),
        pois={},
        nll=m["nll"],
        edm=m["edm"],
        n_iter=m["n_iter"],
        minimizer=minimizer,
        data=label,
        theta0=model.pull_centers() if terms else model.theta0.copy(),
        timings=timings,
    )
    for poi in fi.pois:
        i = fi.index(poi.name)
        value, error = poi.report(x[i], errors[i])
        result.pois[poi.name] = {
            **poi.to_dict(),
            "value": value,
            "error": error,
            "index": i,
            "x": float(x[i]),
            "x_error": float(errors[i]),
        }
    t = time.perf_counter()
    nuis = model.constrained
    if not m["free"].all():
        nuis = nuis & m["free"]
    if impacts:
        for poi in fi.pois:
            i = fi.index(poi.name)
            s = _report_scale(poi, x[i])
            result.impacts[poi.name] = unc.impacts(cov, i) * s
            gi = unc.group_impacts(cov, i, fi.groups, nuis)
            result.group_impacts[poi.name] = {g: v * s for g, v in gi.items()}
        timings["impacts"] = time.perf_counter() - t
    if global_impacts:
        t = time.perf_counter()
        M = model.bin_jacobian(x)
        n = model.yields(x).sum(axis=1)
        resp = model.bins.responses(n)
        for poi in fi.pois:
            i = fi.index(poi.name)
            s = _report_scale(poi, x[i])
            gi = unc.global_impacts(
                cov,
                i,
                bin_jacobian=M,
                responses=resp,
                groups=fi.groups,
                constrained=nuis,
                aux_scale=model.aux_response_scale(x) if terms else None,
            )
            result.global_impacts[poi.name] = {g: v * s for g, v in gi.items()}
        timings["global_impacts"] = time.perf_counter() - t
    nbins = int(model.mask.sum())
    result.gof = saturated_gof(m["nll"], nbins, int((~model.constrained & m["free"]).sum()))
    if yields:
        t = time.perf_counter()
        result.yields = unc.yield_table(model, fi, x, cov)
        timings["yields"] = time.perf_counter() - t
    for name in scan:
        t = time.perf_counter()
        result.scans[name] = _scan(
            model, fi, name, x, errors, m["nll"], scan_points, scan_range, minimizer, tol
        )
        timings[f"scan_{name}"] = time.perf_counter() - t
    if toys is not None and toys > 0:
        t = time.perf_counter()
        result.toys = _toys(model, fi, toys, seed, minimizer, tol, max_iter)
        timings["toys"] = time.perf_counter() - t
    result.time = time.perf_counter() - t_start
    result.meta = (
        meta
        if meta is not None
        else provenance(
            args={
                "data": label,
                "toys": toys,
                "seed": seed,
                "minimizer": minimizer,
                "backend": backend,
            },
            inputs=[str(fi.meta.get("path", ""))] if fi.meta.get("path") else [],
        )
    )
    return result


def _scan(
    model, fi, name, x, errors, nll_min, points, width, minimizer, tol
) -> dict[str, np.ndarray]:
    i = fi.index(name)
    poi = fi.poi(name) if name in [p.name for p in fi.pois] else None
    grid = x[i] + errors[i] * np.linspace(-width, width, points)
    fixed = np.zeros(model.K, dtype=bool)
    fixed[i] = True
    dnll = np.empty(points)
    start = x.copy()
    for j, v in enumerate(grid):
        start[i] = v
        mm = minimize_model(
            model,
            minimizer="trust" if minimizer == "minuit" else minimizer,
            x0=start,
            fixed=fixed,
            tol=tol,
        )
        dnll[j] = mm["nll"] - nll_min
        start = mm["x"].copy()
    reported = np.array([poi.report(v, 0.0)[0] for v in grid]) if poi else grid
    return {"x": grid, "values": reported, "dnll": dnll}


def _toys(
    model, fi: FitInput, n: int, seed: int, minimizer: str, tol: float, max_iter: int
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    x_init = getattr(model, "x_init", None)
    x_gen = np.zeros(model.K) if x_init is None else x_init.copy()
    expected = model.yields(x_gen).sum(axis=1)
    K = model.K
    values = np.full((n, K), np.nan)
    errors = np.full((n, K), np.nan)
    nll = np.full(n, np.nan)
    status = []
    for j in range(n):
        if isinstance(model, TermsModel):  # Gaussian widths, Poisson-constrained gammas
            toy = generate_toy(
                expected,
                model.mask,
                x_gen,
                model.gauss,
                model.kstat,
                rng,
                sigma=model.sigma,
                poisson_tau=np.where(model.pois, model.tau, np.nan),
            )
        else:
            toy = generate_toy(expected, model.mask, x_gen, model.constrained, model.kstat, rng)
        tm = _with_inputs(model, **toy)
        try:
            m = minimize_model(tm, minimizer=minimizer, tol=tol, max_iter=max_iter)
            cov = _covariance(m, minimizer, use_factor=False)
        except FitDidNotConverge as err:
            status.append(err.reason)
            continue
        values[j], errors[j], nll[j] = m["x"], np.sqrt(np.diag(cov)), m["nll"]
        status.append("converged")
    out: dict[str, Any] = {
        "values": values,
        "errors": errors,
        "nll": nll,
        "status": status,
        "x_gen": x_gen,
    }
    for poi in fi.pois:
        i = fi.index(poi.name)
        rep = [
            poi.report(v, e) if np.isfinite(v) else (np.nan, np.nan)
            for v, e in zip(values[:, i], errors[:, i], strict=True)
        ]
        out[f"poi_{poi.name}"] = np.array(rep)
    return out


def scan(
    fit_input: FitInput, poi: str, values: Sequence[float] | np.ndarray, **options: Any
) -> dict[str, np.ndarray]:
    """Profile-likelihood scan of ``poi`` at the given fit-parameter ``values``: ``dnll``."""
    data = options.pop("data", "observed")
    backend = options.pop("backend", "sparse")
    model = make_model(fit_input, backend, mc_stat=options.pop("mc_stat", True))
    if isinstance(data, str) and data == "asimov":
        model = _with_inputs(
            model,
            data=asimov_data(
                model.yields(getattr(model, "x_init", np.zeros(model.K))).sum(axis=1), model.mask
            ),
        )
    best = minimize_model(model, **options)
    i = fit_input.index(poi)
    fixed = np.zeros(model.K, dtype=bool)
    fixed[i] = True
    dnll = []
    start = best["x"].copy()
    for v in values:
        start[i] = v
        mm = minimize_model(model, x0=start, fixed=fixed, **options)
        dnll.append(mm["nll"] - best["nll"])
        start = mm["x"].copy()
    return {"x": np.asarray(values, dtype=np.float64), "dnll": np.array(dnll)}
