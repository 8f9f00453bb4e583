"""pyhf interoperability: read a pyhf workspace into a JAX likelihood, write one from a FitInput.

**Import** (:func:`read_workspace`, :func:`fit_workspace`) reproduces pyhf's own likelihood
(``pyhf.Workspace(spec).model().logpdf``) up to a constant, for the HistFactory modifiers

- ``normfactor`` (free scale), ``lumi`` (scale, Gaussian constraint with the measurement's
  ``auxdata``/``sigmas``), ``shapefactor`` (free per-bin scale),
- ``normsys`` (interpolation code 4 by default, as ``pyhf`` 0.7 builds models; code 1 =
  ``hi**theta`` / ``lo**-theta`` on request), Gaussian-constrained,
- ``histosys`` (code 4p by default; code 0 = piecewise linear on request), Gaussian-constrained,
- ``staterror`` (one Gaussian-constrained gamma per bin shared by the samples of a channel,
  relative width ``sqrt(sum sigma_s**2) / sum nominal_s``; zero-width bins fixed at 1),
- ``shapesys`` (one Poisson-constrained gamma per bin with ``tau = (nominal / sigma)**2``;
  bins with zero nominal or zero uncertainty fixed at 1),

with the bounds, initial values, fixed flags, auxiliary data and widths of the measurement's
``config.parameters`` and its ``poi``. The NLL has each bin's saturated value subtracted (a
constant), so the NLL *differences* are pyhf's ``-logpdf`` differences. Parameters follow pyhf's
order and names (``model.config.par_names``: ``name`` or ``name[i]``). pyhf's bounds are
walls: a trial point outside them, or one with a negative expected yield, has an infinite NLL.

**Fit** (:func:`fit_model`, :func:`fit_workspace` -> :class:`fit.FitResult`): the NLL's exact
gradient and Hessian by JAX autodiff (compiled once per shape), minimised by
:func:`fit.minimize.minimize` (trust-region Newton, EDM convergence) or MINUIT as a cross-check;
covariance = inverse Hessian. ``wmass fit ws.json`` calls :func:`fit_workspace`.

**Export** (:func:`to_workspace`, :func:`write_workspace`) writes a :class:`fit.FitInput` as a
pyhf workspace (see :func:`to_workspace` for what is exact and what is approximated).

Sections of this module: reading and the likelihood, fitting, export.

>>> spec = simple_workspace(signal=[5.0, 10.0], background=[50.0, 60.0], observed=[58, 69])
>>> model = read_workspace(spec)
>>> model.parameters
('mu',)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FitInputError

__all__ = [
    "GROUPS",
    "WorkspaceError",
    "WorkspaceFit",
    "WorkspaceModel",
    "fit_model",
    "fit_workspace",
    "read_workspace",
    "simple_workspace",
    "to_workspace",
    "workspace_parameters",
    "write_workspace",
]

#: The modifier types this reader understands (all of pyhf's HistFactory set).
MODIFIER_TYPES = (
    "histosys",
    "lumi",
    "normfactor",
    "normsys",
    "shapefactor",
    "shapesys",
    "staterror",
)

#: pyhf 0.7's defaults when a model is built from a workspace (``pyhf.pdf._ModelConfig``).
DEFAULT_MODIFIER_SETTINGS = {
    "normsys": {"interpcode": "code4"},
    "histosys": {"interpcode": "code4p"},
}


class WorkspaceError(FitInputError):
    """A pyhf workspace that cannot be read: names the channel, sample or modifier at fault."""


def _enable_x64() -> None:
    global _nll_jit, _expected_jit
    import jax

    jax.config.update("jax_enable_x64", True)
    if _nll_jit is None:
        _nll_jit = jax.jit(_nll, static_argnames=("histosys", "normsys"))
        _expected_jit = jax.jit(_expected_by_sample, static_argnames=("histosys", "normsys"))


# --------------------------------------------------------------------------------------------
# the model


@dataclass
class _ParamSet:
    name: str
    kind: str  # modifier type
    n: int
    init: list[float]
    bounds: list[tuple[float, float]]
    fixed: list[bool]
    constraint: str | None  # "normal" | "poisson" | None
    auxdata: list[float] = field(default_factory=list)
    sigmas: list[float] = field(default_factory=list)
    factors: list[float] = field(default_factory=list)  # Poisson tau


@dataclass(frozen=True)
class WorkspaceModel:
    """A pyhf workspace as arrays, with its likelihood in JAX (float64).

    ``nll(pars)`` takes the full parameter vector in pyhf's order (fixed ones included) and
    returns pyhf's ``-logpdf(pars, data)`` minus a constant (each bin's saturated value).
    """

    parameters: tuple[str, ...]
    poi: str | None
    init: np.ndarray
    bounds: np.ndarray  # [n, 2]
    fixed: np.ndarray  # [n] bool
    channels: tuple[str, ...]
    channel_bins: dict[str, slice]
    samples: tuple[str, ...]
    observed: np.ndarray  # [bins]
    auxdata: np.ndarray  # [n] auxiliary observations of constrained parameters (nan if none)
    modifier_settings: dict[str, dict[str, str]]
    groups: np.ndarray  # [n] impact group of each parameter (see GROUPS)
    _arrays: dict[str, Any] = field(repr=False)

    @property
    def n_parameters(self) -> int:
        return len(self.parameters)

    @property
    def poi_index(self) -> int | None:
        return None if self.poi is None else self.parameters.index(self.poi)

    def index(self, name: str) -> int:
        """Position of parameter ``name`` (pyhf's ``par_names`` spelling)."""
        try:
            return self.parameters.index(name)
        except ValueError:
            raise WorkspaceError(f"no parameter {name!r} in the workspace") from None

    # -- likelihood -------------------------------------------------------------------------
    def expected_by_sample(self, pars: Any) -> Any:
        """Expected yields [samples, bins] at ``pars`` (JAX array)."""
        return _expected_jit(self._arrays, pars, **self._codes)

    def expected(self, pars: Any) -> Any:
        """Expected yields per bin (all channels concatenated in ``channels`` order)."""
        return self.expected_by_sample(pars).sum(axis=0)

    def nll(self, pars: Any, observed: Any = None, auxdata: Any = None) -> Any:
        """pyhf's ``-logpdf`` minus each term's saturated value; ``inf`` outside the bounds."""
        n = self.observed if observed is None else observed
        aux = self.auxdata if auxdata is None else auxdata
        return _nll_jit(self._arrays, pars, n, aux, **self._codes)

    @property
    def _codes(self) -> dict[str, str]:
        return {
            "histosys": self.modifier_settings["histosys"]["interpcode"],
            "normsys": self.modifier_settings["normsys"]["interpcode"],
        }

    def asimov(self, pars: Any = None) -> np.ndarray:
        """Expected main-channel data at ``pars`` (default: the suggested initial values)."""
        return np.asarray(self.expected(self.init if pars is None else pars))


def _h(theta: Any, histosys: str) -> tuple[Any, Any, Any]:
    """The histosys interpolation ``delta = theta * S + h(theta) * D``: h, h' and h''.

    code0: ``h = |theta|``; code4p: ``(15 t^2 - 10 t^4 + 3 t^6) / 8`` inside |theta| <= 1.
    """
    import jax.numpy as jnp

    abs_t = jnp.abs(theta)
    if histosys == "code0":
        return abs_t, jnp.sign(theta), jnp.zeros_like(theta)
    t2 = theta * theta
    inside = abs_t <= 1.0
    h = jnp.where(inside, t2 * (15.0 - 10.0 * t2 + 3.0 * t2 * t2) / 8.0, abs_t)
    dh = jnp.where(inside, theta * (30.0 - 40.0 * t2 + 18.0 * t2 * t2) / 8.0, jnp.sign(theta))
    d2h = jnp.where(inside, (30.0 - 120.0 * t2 + 90.0 * t2 * t2) / 8.0, 0.0)
    return h, dh, d2h


def _additive(a: dict[str, Any], pars: Any, histosys: str) -> Any:
    """``nominal + delta(histosys)`` per [sample, bin]."""
    nominal = a["nominal"]
    if not a["hs_index"].size:
        return nominal
    theta = pars[a["hs_index"]]
    h = _h(theta, histosys)[0]
    return nominal + (theta @ a["hs_sum"] + h @ a["hs_diff"]).reshape(nominal.shape)


def _factor(a: dict[str, Any], pars: Any, normsys: str) -> Any:
    """The product of the multiplicative modifiers per [sample, bin]."""
    import jax.numpy as jnp

    factor = jnp.ones(a["nominal"].shape, dtype=jnp.float64)
    if a["ns_index"].size:
        theta = pars[a["ns_index"]][:, None, None]
        log_hi, log_lo = a["ns_log_hi"], a["ns_log_lo"]
        outside = jnp.where(theta >= 0, theta * log_hi, -theta * log_lo)
        if normsys == "code1":
            log_f = outside
        else:  # code4: polynomial inside |theta| < 1, exponential outside
            powers = jnp.stack([theta**i for i in range(1, 7)])
            inner = 1.0 + jnp.sum(a["ns_coeff"] * powers, axis=0)
            safe_inner = jnp.where(inner > 0, inner, 1.0)
            log_inner = jnp.where(inner > 0, jnp.log(safe_inner), -jnp.inf)
            log_f = jnp.where(jnp.abs(theta) >= 1.0, outside, log_inner)
        # [samples, channels] -> [samples, bins]
        factor = factor * jnp.exp(jnp.sum(log_f, axis=0))[:, a["bin_channel"]]
    if a["mult_index"].size:
        ext = jnp.concatenate([pars, jnp.ones(1, dtype=pars.dtype)])
        factor = factor * jnp.prod(ext[a["mult_index"]], axis=0)
    return factor


def _expected_by_sample(a: dict[str, Any], pars: Any, histosys: str, normsys: str) -> Any:
    import jax.numpy as jnp

    pars = jnp.asarray(pars, dtype=jnp.float64)
    return _additive(a, pars, histosys) * _factor(a, pars, normsys)


def _hessian(a: dict[str, Any], pars: Any, n: Any, aux: Any, histosys: str, normsys: str) -> Any:
    """The exact Hessian of :func:`_nll` [n_par, n_par], by its structure (not nested autodiff).

    With ``nu_b = sum_s (nominal + theta S + h(theta) D)_sb F_sb(p)`` and ``l(nu) = nu - n log nu``:
    ``H = J^T diag(l'') J + sum_b l'_b d2 nu_b + constraints``. The histosys columns of ``J`` are
    ``sum_s (S + h' D)_ksb F_sb`` (one pass over the templates); the second-order term is
    ``diag(h'' D.(l' F))`` for histosys x histosys, and forward-mode derivatives in the few
    multiplicative parameters ``p_m`` (normsys, normfactor, lumi, gammas) for the other blocks:
    nothing is differentiated through the [K, samples x bins] templates with K tangents.
    """
    import jax
    import jax.numpy as jnp

    pars = jnp.asarray(pars, dtype=jnp.float64)
    hs, ms = a["hs_index"], a["m_index"]
    nom = a["nominal"]
    n_par = pars.shape[0]
    base_yield = _additive(a, pars, histosys)

    def factor_of(q):
        return _factor(a, pars.at[ms].set(q), normsys)

    pm = pars[ms]
    f = factor_of(pm)
    nu = (base_yield * f).sum(axis=0)
    l1 = 1.0 - n / nu
    l2 = n / (nu * nu)
    jac = jnp.zeros((nom.shape[1], n_par))
    hess = jnp.zeros((n_par, n_par))
    if hs.size:
        k = hs.shape[0]
        theta = pars[hs]
        _, dh, d2h = _h(theta, histosys)
        s3 = a["hs_sum"].reshape(k, *nom.shape)
        d3 = a["hs_diff"].reshape(k, *nom.shape)
        jac_h = jnp.einsum("ksb,sb->kb", s3, f) + dh[:, None] * jnp.einsum("ksb,sb->kb", d3, f)
        jac = jac.at[:, hs].set(jac_h.T)
        v = a["hs_diff"] @ (l1[None, :] * f).ravel()
        hess = hess.at[hs, hs].add(d2h * v)
    if ms.size:
        jac_m = jax.jacfwd(lambda q: (base_yield * factor_of(q)).sum(axis=0))(pm)
        jac = jac.at[:, ms].set(jac_m)
        h_mm = jax.hessian(lambda q: jnp.sum(l1[None, :] * base_yield * factor_of(q)))(pm)
        hess = hess.at[ms[:, None], ms[None, :]].add(h_mm)
        if hs.size:

            def uv(q):
                w = (l1[None, :] * factor_of(q)).ravel()
                return a["hs_sum"] @ w + dh * (a["hs_diff"] @ w)

            h_hm = jax.jacfwd(uv)(pm)  # [K_h, K_m]
            hess = hess.at[hs[:, None], ms[None, :]].add(h_hm)
            hess = hess.at[ms[:, None], hs[None, :]].add(h_hm.T)
    hess = hess + (jac * l2[:, None]).T @ jac
    gi, pi = a["gauss_index"], a["pois_index"]
    hess = hess.at[gi, gi].add(1.0 / a["gauss_sigma"] ** 2)
    gamma = pars[pi]
    hess = hess.at[pi, pi].add(jnp.where(aux[pi] > 0, aux[pi], 0.0) / (gamma * gamma))
    return hess


def _nll(a: dict[str, Any], pars: Any, n: Any, aux: Any, histosys: str, normsys: str) -> Any:
    import jax.numpy as jnp

    pars = jnp.asarray(pars, dtype=jnp.float64)
    n = jnp.asarray(n, dtype=jnp.float64)
    aux = jnp.asarray(aux, dtype=jnp.float64)
    nu = _expected_by_sample(a, pars, histosys, normsys).sum(axis=0)
    ok = jnp.all((nu > 0) | ((nu == 0) & (n == 0)))
    nu_safe = jnp.where(nu > 0, nu, 1.0)
    n_safe = jnp.where(n > 0, n, 1.0)
    main = jnp.sum(jnp.where(n > 0, nu - n + n * jnp.log(n_safe / nu_safe), nu))
    # Gaussian constraints
    gi = a["gauss_index"]
    pull = (pars[gi] - aux[gi]) / a["gauss_sigma"]
    gauss = 0.5 * jnp.sum(pull * pull)
    # Poisson constraints (shapesys): Poisson(aux | gamma * tau), continuous in aux
    pi = a["pois_index"]
    rate = pars[pi] * a["pois_tau"]
    paux = aux[pi]
    ok = ok & jnp.all(rate > 0)
    rate_safe = jnp.where(rate > 0, rate, 1.0)
    paux_safe = jnp.where(paux > 0, paux, 1.0)
    pois = jnp.sum(jnp.where(paux > 0, rate - paux + paux * jnp.log(paux_safe / rate_safe), rate))
    lo, hi = a["bounds"][:, 0], a["bounds"][:, 1]
    ok = ok & jnp.all((pars >= lo) & (pars <= hi))
    return jnp.where(ok, main + gauss + pois, jnp.inf)


_nll_jit = _expected_jit = None  # set by _enable_x64 (jax is imported lazily)


# --------------------------------------------------------------------------------------------
# reading


def _load(ws: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(ws, Mapping):
        return dict(ws)  # read only: never modified
    path = Path(ws)
    try:
        with path.open() as f:
            return json.load(f)
    except OSError as exc:
        raise WorkspaceError(f"cannot read workspace {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise WorkspaceError(f"workspace {path} is not valid JSON: {exc}") from exc


def _validate(spec: dict[str, Any], where: str) -> None:
    import pyhf
    import pyhf.exceptions

    try:
        pyhf.schema.validate(spec, "workspace.json")
    except pyhf.exceptions.InvalidSpecification as exc:
        path = "/".join(str(p) for p in getattr(exc, "path", []) or [])
        known = set(MODIFIER_TYPES)
        # name the culprit: an unknown modifier type is the commonest schema failure
        for channel in spec.get("channels", []):
            for sample in channel.get("samples", []):
                for mod in sample.get("modifiers", []):
                    if isinstance(mod, Mapping) and mod.get("type") not in known:
                        raise WorkspaceError(
                            f"{where}: channel {channel.get('name')!r} sample "
                            f"{sample.get('name')!r}: modifier {mod.get('name')!r} has unknown "
                            f"type {mod.get('type')!r} (known: {', '.join(MODIFIER_TYPES)})"
                        ) from exc
        raise WorkspaceError(f"{where}: not a valid pyhf workspace at /{path}: {exc}") from exc


def _measurement(spec: dict[str, Any], name: str | None, where: str) -> dict[str, Any]:
    measurements = spec.get("measurements", [])
    if name is None:
        if not measurements:
            raise WorkspaceError(f"{where}: the workspace has no measurement")
        return measurements[0]
    for m in measurements:
        if m["name"] == name:
            return m
    names = [m["name"] for m in measurements]
    raise WorkspaceError(f"{where}: no measurement {name!r} (have {names})")


def _code4_coefficients(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """pyhf's code-4 polynomial coefficients a_1..a_6 (alpha0 = 1), shape [6, *hi.shape]."""
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
    lh, ll = np.log(hi), np.log(lo)
    b = np.stack([hi - 1, lo - 1, lh * hi, -ll * lo, lh**2 * hi, ll**2 * lo])
    return np.einsum("rc,c...->r...", a_inv, b)


def _check_yields(
    values: Sequence[float], what: str, nbins: int, *, negative: bool = False
) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (nbins,):
        raise WorkspaceError(f"{what}: {arr.size} values for a channel of {nbins} bins")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise WorkspaceError(f"{what}: non-finite value {arr[bad]} in bin {bad}")
    if not negative and np.any(arr < 0):
        bad = int(np.flatnonzero(arr < 0)[0])
        raise WorkspaceError(f"{what}: negative value {arr[bad]} in bin {bad}")
    return arr


def read_workspace(
    ws: str | os.PathLike | Mapping[str, Any],
    *,
    measurement: str | None = None,
    modifier_settings: Mapping[str, Mapping[str, str]] | None = None,
    validate: bool = True,
) -> WorkspaceModel:
    """Read a pyhf workspace (path to JSON, or the dict) into a :class:`WorkspaceModel`.

    ``modifier_settings`` has pyhf's form (``{"normsys": {"interpcode": "code1"}, ...}``); the
    default is what ``pyhf.Workspace(spec).model()`` uses. ``validate`` checks the JSON schema
    with pyhf's own validator. Raises :class:`WorkspaceError` naming the culprit.
    """
    _enable_x64()
    import jax.numpy as jnp

    where = str(ws) if not isinstance(ws, Mapping) else "workspace"
    spec = _load(ws)
    if validate:
        _validate(spec, where)
    settings = {k: dict(v) for k, v in DEFAULT_MODIFIER_SETTINGS.items()}
    for key, value in (modifier_settings or {}).items():
        settings.setdefault(key, {}).update(value)
    if settings["normsys"]["interpcode"] not in ("code1", "code4"):
        raise WorkspaceError(
            f"normsys interpcode {settings['normsys']['interpcode']!r} unsupported"
        )
    if settings["histosys"]["interpcode"] not in ("code0", "code4p"):
        raise WorkspaceError(
            f"histosys interpcode {settings['histosys']['interpcode']!r} unsupported"
        )
    meas = _measurement(spec, measurement, where)
    config = meas.get("config", {})

    # -- structure: pyhf sorts channels, samples and (name, type) modifier pairs
    channel_specs = {c["name"]: c for c in spec["channels"]}
    channels = sorted(channel_specs)
    samples = sorted({s["name"] for c in spec["channels"] for s in c["samples"]})
    nbins = {}
    for c in channels:
        sizes = {len(s["data"]) for s in channel_specs[c]["samples"]}
        if len(sizes) != 1:
            raise WorkspaceError(
                f"{where}: channel {c!r}: samples have different bin counts {sizes}"
            )
        nbins[c] = sizes.pop()
    offsets, start = {}, 0
    for c in channels:
        offsets[c] = slice(start, start + nbins[c])
        start += nbins[c]
    n_bins = start
    s_index = {s: i for i, s in enumerate(samples)}
    c_index = {c: i for i, c in enumerate(channels)}
    bin_channel = np.concatenate([np.full(nbins[c], c_index[c]) for c in channels])

    observations = {o["name"]: o["data"] for o in spec.get("observations", [])}
    observed = np.zeros(n_bins)
    for c in channels:
        if c not in observations:
            raise WorkspaceError(f"{where}: channel {c!r} has no observation")
        observed[offsets[c]] = _check_yields(
            observations[c], f"{where}: observation of channel {c!r}", nbins[c]
        )

    nominal = np.zeros((len(samples), n_bins))
    # modifier entries: type -> name -> list of (channel, sample, modifier data)
    entries: dict[str, dict[str, list[tuple[str, str, Any]]]] = {t: {} for t in MODIFIER_TYPES}
    for c in channels:
        for sample in sorted(channel_specs[c]["samples"], key=lambda s: s["name"]):
            s = sample["name"]
            what = f"{where}: channel {c!r} sample {s!r}"
            nominal[s_index[s], offsets[c]] = _check_yields(sample["data"], what, nbins[c])
            for mod in sorted(sample["modifiers"], key=lambda m: (m["name"], m["type"])):
                if mod["type"] not in entries:
                    raise WorkspaceError(
                        f"{what}: modifier {mod['name']!r} has unknown type {mod['type']!r}"
                    )
                entries[mod["type"]].setdefault(mod["name"], []).append((c, s, mod.get("data")))
    for name in {n for t in ("shapesys",) for n in entries[t]}:
        if len(entries["shapesys"][name]) > 1:
            raise WorkspaceError(
                f"{where}: shapesys modifier {name!r} is used by more than one sample"
            )
    seen: dict[str, str] = {}
    for t in MODIFIER_TYPES:
        for name in entries[t]:
            if name in seen:
                raise WorkspaceError(
                    f"{where}: modifier {name!r} is used with types {seen[name]!r} and {t!r}"
                )
            seen[name] = t

    # -- parameter sets, in pyhf's order (modifier type, then first appearance)
    psets: list[_ParamSet] = []
    for name in entries["histosys"]:
        psets.append(
            _ParamSet(name, "histosys", 1, [0.0], [(-5.0, 5.0)], [False], "normal", [0.0], [1.0])
        )
    for name in entries["lumi"]:
        psets.append(_ParamSet(name, "lumi", 1, [], [], [False], "normal"))
    for name in entries["normfactor"]:
        psets.append(_ParamSet(name, "normfactor", 1, [1.0], [(0.0, 10.0)], [False], None))
    for name in entries["normsys"]:
        psets.append(
            _ParamSet(name, "normsys", 1, [0.0], [(-5.0, 5.0)], [False], "normal", [0.0], [1.0])
        )
    for name, uses in entries["shapefactor"].items():
        sizes = {nbins[c] for c, _, _ in uses}
        if len(sizes) != 1:
            raise WorkspaceError(
                f"{where}: shapefactor {name!r} spans channels of different bin counts {sizes}"
            )
        k = sizes.pop()
        psets.append(
            _ParamSet(name, "shapefactor", k, [1.0] * k, [(0.0, 10.0)] * k, [False] * k, None)
        )
    shapesys_tau: dict[str, np.ndarray] = {}
    for name, uses in entries["shapesys"].items():
        c, s, data = uses[0]
        nom = nominal[s_index[s], offsets[c]]
        unc = _check_yields(
            data, f"{where}: channel {c!r} sample {s!r} shapesys {name!r}", nbins[c]
        )
        valid = (nom > 0) & (unc > 0)
        tau = np.where(valid, nom**2 / np.where(valid, unc, 1.0) ** 2, 1.0)
        shapesys_tau[name] = tau
        k = nbins[c]
        psets.append(
            _ParamSet(
                name,
                "shapesys",
                k,
                [1.0] * k,
                [(1e-10, 10.0)] * k,
                list(~valid),
                "poisson",
                list(tau),
                [],
                list(tau),
            )
        )
    staterror_bins: dict[str, np.ndarray] = {}
    for name, uses in entries["staterror"].items():
        mask = np.zeros(n_bins, dtype=bool)
        nom_sum = np.zeros(n_bins)
        var = np.zeros(n_bins)
        for c, s, data in uses:
            unc = _check_yields(
                data, f"{where}: channel {c!r} sample {s!r} staterror {name!r}", nbins[c]
            )
            mask[offsets[c]] = True
            var[offsets[c]] += unc**2
        users = {s for _, s, _ in uses}
        for s in users:
            nom_sum += nominal[s_index[s]]
        safe = np.where(nom_sum > 0, nom_sum, 1.0)
        rel = np.where(nom_sum > 0, np.sqrt(var) / safe, 0.0)[mask]
        fixed = rel == 0
        sig = np.where(fixed, 1.0, rel)
        staterror_bins[name] = np.flatnonzero(mask)
        k = int(mask.sum())
        psets.append(
            _ParamSet(
                name,
                "staterror",
                k,
                [1.0] * k,
                [(1e-10, 10.0)] * k,
                list(fixed),
                "normal",
                [1.0] * k,
                list(sig),
            )
        )

    # -- the measurement's parameter configuration overrides the defaults
    by_name = {p.name: p for p in psets}
    configured = [user["name"] for user in config.get("parameters", [])]
    for name in configured:
        if configured.count(name) > 1:
            raise WorkspaceError(f"{where}: measurement parameter {name!r} is configured twice")
    for user in config.get("parameters", []):
        p = by_name.get(user["name"])
        if p is None:
            continue  # pyhf ignores configurations of parameters the model does not have
        for key in ("inits", "bounds", "auxdata", "sigmas"):
            if key in user:
                values = [tuple(v) if key == "bounds" else float(v) for v in user[key]]
                if len(values) != p.n:
                    raise WorkspaceError(
                        f"{where}: measurement parameter {p.name!r}: {len(values)} {key} for "
                        f"{p.n} parameters"
                    )
                attr = {
                    "inits": "init",
                    "bounds": "bounds",
                    "auxdata": "auxdata",
                    "sigmas": "sigmas",
                }[key]
                setattr(p, attr, values)
        if "fixed" in user:
            p.fixed = [bool(user["fixed"])] * p.n
    for p in psets:
        if p.kind == "lumi" and not (p.init and p.bounds and p.auxdata and p.sigmas):
            raise WorkspaceError(
                f"{where}: lumi modifier {p.name!r} needs inits, bounds, auxdata and sigmas in "
                f"the measurement's parameters"
            )

    names: list[str] = []
    start_of: dict[str, int] = {}
    for p in psets:
        start_of[p.name] = len(names)
        names.extend(
            [p.name]
            if p.kind in ("histosys", "lumi", "normfactor", "normsys")
            else [f"{p.name}[{i}]" for i in range(p.n)]
        )
    n_par = len(names)
    init = np.array([v for p in psets for v in p.init], dtype=np.float64)
    bounds = np.array([b for p in psets for b in p.bounds], dtype=np.float64).reshape(n_par, 2)
    fixed = np.array([v for p in psets for v in p.fixed], dtype=bool)
    auxdata = np.full(n_par, np.nan)
    gauss_index, gauss_sigma, pois_index, pois_tau = [], [], [], []
    for p in psets:
        i0 = start_of[p.name]
        if p.constraint is None:
            continue
        auxdata[i0 : i0 + p.n] = p.auxdata
        if p.constraint == "normal":
            gauss_index.extend(range(i0, i0 + p.n))
            gauss_sigma.extend(p.sigmas)
        else:
            pois_index.extend(range(i0, i0 + p.n))
            pois_tau.extend(p.factors)

    poi = config.get("poi")
    if poi is not None and poi not in names:
        raise WorkspaceError(
            f"{where}: the measurement's POI {poi!r} is not a parameter of the model"
        )

    # -- histosys: delta = theta * S + h(theta) * D per (sample, bin)
    hs_names = list(entries["histosys"])
    hs_sum = np.zeros((len(hs_names), len(samples), n_bins))
    hs_diff = np.zeros_like(hs_sum)
    for k, name in enumerate(hs_names):
        for c, s, data in entries["histosys"][name]:
            what = f"{where}: channel {c!r} sample {s!r} histosys {name!r}"
            # a stretched template may go negative: pyhf only adds the differences
            hi = _check_yields(data["hi_data"], what + " hi_data", nbins[c], negative=True)
            lo = _check_yields(data["lo_data"], what + " lo_data", nbins[c], negative=True)
            nom = nominal[s_index[s], offsets[c]]
            up, down = hi - nom, nom - lo
            hs_sum[k, s_index[s], offsets[c]] = 0.5 * (up + down)
            hs_diff[k, s_index[s], offsets[c]] = 0.5 * (up - down)

    # -- normsys: per (sample, channel) factors
    ns_names = list(entries["normsys"])
    ns_hi = np.ones((len(ns_names), len(samples), len(channels)))
    ns_lo = np.ones_like(ns_hi)
    for k, name in enumerate(ns_names):
        for c, s, data in entries["normsys"][name]:
            hi, lo = float(data["hi"]), float(data["lo"])
            if not (hi > 0 and lo > 0 and math.isfinite(hi) and math.isfinite(lo)):
                raise WorkspaceError(
                    f"{where}: channel {c!r} sample {s!r} normsys {name!r}: hi={hi}, lo={lo} "
                    "must be positive and finite"
                )
            ns_hi[k, s_index[s], c_index[c]] = hi
            ns_lo[k, s_index[s], c_index[c]] = lo

    # -- multiplicative parameters, packed into layers of non-overlapping (sample, bin) masks
    layers: list[np.ndarray] = []

    def _place(par_of_bin: np.ndarray) -> None:  # [samples, bins], -1 where unaffected
        used = par_of_bin >= 0
        for layer in layers:
            if not np.any((layer != n_par) & used):
                layer[used] = par_of_bin[used]
                return
        layer = np.full((len(samples), n_bins), n_par, dtype=np.int64)
        layer[used] = par_of_bin[used]
        layers.append(layer)

    for t in ("lumi", "normfactor", "shapefactor", "shapesys"):
        for name, uses in entries[t].items():
            for c, s, _ in uses:
                idx = np.full((len(samples), n_bins), -1, dtype=np.int64)
                i0 = start_of[name]
                if t in ("lumi", "normfactor"):
                    idx[s_index[s], offsets[c]] = i0
                else:
                    idx[s_index[s], offsets[c]] = i0 + np.arange(nbins[c])
                _place(idx)
    for name, uses in entries["staterror"].items():
        pos = np.full(n_bins, -1, dtype=np.int64)
        pos[staterror_bins[name]] = start_of[name] + np.arange(staterror_bins[name].size)
        for c, s, _ in uses:
            idx = np.full((len(samples), n_bins), -1, dtype=np.int64)
            idx[s_index[s], offsets[c]] = pos[offsets[c]]
            _place(idx)

    arrays = {
        "nominal": jnp.asarray(nominal),
        "bin_channel": jnp.asarray(bin_channel),
        "hs_index": jnp.asarray([start_of[n] for n in hs_names], dtype=jnp.int64),
        "m_index": jnp.asarray(
            np.setdiff1d(np.arange(n_par), [start_of[n] for n in hs_names]), dtype=jnp.int64
        ),
        "hs_sum": jnp.asarray(hs_sum.reshape(len(hs_names), len(samples) * n_bins)),
        "hs_diff": jnp.asarray(hs_diff.reshape(len(hs_names), len(samples) * n_bins)),
        "ns_index": jnp.asarray([start_of[n] for n in ns_names], dtype=jnp.int64),
        "ns_log_hi": jnp.asarray(np.log(ns_hi)),
        "ns_log_lo": jnp.asarray(np.log(ns_lo)),
        "ns_coeff": jnp.asarray(_code4_coefficients(ns_hi, ns_lo)),
        "mult_index": jnp.asarray(np.stack(layers) if layers else np.zeros((0,), dtype=np.int64)),
        "gauss_index": jnp.asarray(gauss_index, dtype=jnp.int64),
        "gauss_sigma": jnp.asarray(gauss_sigma, dtype=jnp.float64),
        "pois_index": jnp.asarray(pois_index, dtype=jnp.int64),
        "pois_tau": jnp.asarray(pois_tau, dtype=jnp.float64),
        "bounds": jnp.asarray(bounds),
    }
    return WorkspaceModel(
        parameters=tuple(names),
        poi=poi,
        init=init,
        bounds=bounds,
        fixed=fixed,
        channels=tuple(channels),
        channel_bins=offsets,
        samples=tuple(samples),
        observed=observed,
        auxdata=auxdata,
        modifier_settings=settings,
        groups=np.array([GROUPS[p.kind] for p in psets for _ in range(p.n)], dtype=object),
        _arrays=arrays,
    )


def simple_workspace(
    signal: Sequence[float],
    background: Sequence[float],
    observed: Sequence[float],
    *,
    poi: str = "mu",
) -> dict[str, Any]:
    """A one-channel signal + background workspace (no systematics): for docs and examples."""
    return {
        "channels": [
            {
                "name": "singlechannel",
                "samples": [
                    {
                        "name": "signal",
                        "data": list(map(float, signal)),
                        "modifiers": [{"name": poi, "type": "normfactor", "data": None}],
                    },
                    {"name": "background", "data": list(map(float, background)), "modifiers": []},
                ],
            }
        ],
        "observations": [{"name": "singlechannel", "data": list(map(float, observed))}],
        "measurements": [{"name": "measurement", "config": {"poi": poi, "parameters": []}}],
        "version": "1.0.0",
    }


# --------------------------------------------------------------------------------------------
# fitting


@dataclass(frozen=True)
class WorkspaceFit:
    """The best fit of a workspace: values and errors in pyhf's parameter order."""

    parameters: tuple[str, ...]
    values: np.ndarray
    errors: np.ndarray  # 0 for fixed parameters
    covariance: np.ndarray  # [n, n], zero rows/columns for fixed parameters
    hessian: np.ndarray  # [free, free] at the minimum
    nll: float  # pyhf's -logpdf minus the saturated constant
    edm: float
    n_iter: int
    poi: str | None
    fixed: np.ndarray

    def value(self, name: str) -> float:
        return float(self.values[self.parameters.index(name)])

    def error(self, name: str) -> float:
        return float(self.errors[self.parameters.index(name)])


def _free_nll(x, a, base, free, n, aux, histosys, normsys):
    return _nll(a, base.at[free].set(x), n, aux, histosys, normsys)


def _free_hessian(x, a, base, free, n, aux, histosys, normsys):
    h = _hessian(a, base.at[free].set(x), n, aux, histosys, normsys)
    return h[free[:, None], free[None, :]]


_COMPILED: dict[str, Any] = {}


def _compiled() -> dict[str, Any]:
    """The jitted value+gradient, Hessian and HVP of :func:`_free_nll` (compiled once per shape)."""
    if not _COMPILED:
        import jax

        static = ("histosys", "normsys")
        grad = jax.grad(_free_nll)
        _COMPILED["vg"] = jax.jit(jax.value_and_grad(_free_nll), static_argnames=static)
        _COMPILED["hess_autodiff"] = jax.jit(jax.hessian(_free_nll), static_argnames=static)
        _COMPILED["hess"] = jax.jit(_free_hessian, static_argnames=static)
        _COMPILED["hvp"] = jax.jit(
            lambda x, v, *args, histosys, normsys: jax.jvp(
                lambda y: grad(y, *args, histosys=histosys, normsys=normsys), (x,), (v,)
            )[1],
            static_argnames=static,
        )

        # v . d(grad)/d(main data) and v . d(grad)/d(auxdata), by one reverse pass over the
        # gradient: the responses of the global impacts
        def _v_dot_grad(n, aux, x, v, a, base, free, histosys, normsys):
            g = grad(x, a, base, free, n, aux, histosys=histosys, normsys=normsys)
            return v @ g

        _COMPILED["v_dgrad_dinputs"] = jax.jit(
            jax.grad(_v_dot_grad, argnums=(0, 1)), static_argnames=static
        )
    return _COMPILED


@dataclass(frozen=True)
class _Objective:
    """The NLL as a function of the free parameters, with the rest held at ``base``."""

    model: WorkspaceModel
    free: np.ndarray  # indices
    args: tuple

    @classmethod
    def make(cls, model, observed, auxdata, fixed=None, base=None) -> _Objective:
        import jax.numpy as jnp

        fixed = model.fixed if fixed is None else fixed
        free = np.flatnonzero(~fixed)
        base = model.init if base is None else base
        args = (
            model._arrays,
            jnp.asarray(base, dtype=jnp.float64),
            jnp.asarray(free),
            jnp.asarray(observed, dtype=jnp.float64),
            jnp.asarray(auxdata, dtype=jnp.float64),
        )
        return cls(model, free, args)

    def value_and_grad(self, x):
        import jax.numpy as jnp

        v, g = _compiled()["vg"](jnp.asarray(x), *self.args, **self.model._codes)
        return float(v), np.asarray(g)

    def hessian(self, x, *, autodiff: bool = False):
        """The exact Hessian: structured (default) or by nested autodiff (the cross-check)."""
        import jax.numpy as jnp

        c = _compiled()["hess_autodiff" if autodiff else "hess"]
        return np.asarray(c(jnp.asarray(x), *self.args, **self.model._codes))

    def hessp(self, x, v):
        import jax.numpy as jnp

        c = _compiled()["hvp"]
        return np.asarray(c(jnp.asarray(x), jnp.asarray(v), *self.args, **self.model._codes))

    def v_dgrad_dinputs(self, x, v):
        """``v . d(grad)/d(main data)`` [bins] and ``v . d(grad)/d(auxdata)`` [parameters]."""
        import jax.numpy as jnp

        a, base, free, n, aux = self.args
        c = _compiled()["v_dgrad_dinputs"]
        dn, daux = c(n, aux, jnp.asarray(x), jnp.asarray(v), a, base, free, **self.model._codes)
        return np.asarray(dn), np.asarray(daux)


def _minimize(obj: _Objective, x0: np.ndarray, *, minimizer: str, tol: float, max_iter: int):
    """(x, nll, hessian, edm, n_iter) of the minimum, by H2's trust-region Newton or MINUIT."""
    from .minimize import minimize

    if minimizer == "minuit":
        from iminuit import Minuit

        m = Minuit(lambda x: obj.value_and_grad(x)[0], x0, grad=lambda x: obj.value_and_grad(x)[1])
        m.errordef = Minuit.LIKELIHOOD
        m.strategy = 2
        m.tol = 1e-6
        m.migrad(ncall=100_000)
        x = np.asarray(m.values)
        f, g = obj.value_and_grad(x)
        h = obj.hessian(x)
        if not m.valid:
            from .errors import FitDidNotConverge

            raise FitDidNotConverge(f"minuit: invalid minimum (edm {m.fmin.edm:.3g})", x=x)
        edm = float(0.5 * g @ np.linalg.solve(h, g))
        return x, f, h, edm, int(m.nfcn)
    last: dict[str, Any] = {}

    def hessian(x):  # the minimiser asks again at the same point after a rejected step
        if "x" not in last or not np.array_equal(last["x"], x):
            last["x"], last["h"] = np.array(x, copy=True), obj.hessian(x)
        return last["h"]

    res = minimize(obj.value_and_grad, x0, hess=hessian, tol=tol, max_iter=max_iter)
    return res.x, float(res.fun), res.hess, float(res.edm), int(res.n_iter)


def fit_model(
    model: WorkspaceModel,
    *,
    data: str | Sequence[float] = "observed",
    auxdata: Sequence[float] | None = None,
    init: Sequence[float] | None = None,
    fixed: Sequence[bool] | None = None,
    minimizer: str = "trust",
    tol: float = 1e-10,
    max_iter: int = 200,
) -> WorkspaceFit:
    """Maximum-likelihood fit of a :class:`WorkspaceModel` (its free parameters only).

    ``data``: ``"observed"``, ``"asimov"`` (expected yields at the initial values, auxiliary
    data unchanged) or the main-channel counts; ``auxdata`` replaces the auxiliary data (toys).
    ``fixed``/``init``: hold more parameters, at ``init``. Errors are ``sqrt(diag(H^-1))`` of
    the exact Hessian of the NLL (pyhf/MINUIT HESSE, ``errordef=1`` on ``2 NLL``).
    ``minimizer``: ``"trust"`` (:func:`fit.minimize.minimize`, exact Hessian) or ``"minuit"``
    (MIGRAD with the JAX gradient, strategy 2, then the exact Hessian).
    """
    _enable_x64()
    from .uncertainties import covariance

    observed = _main_data(model, data)
    aux = model.auxdata if auxdata is None else np.asarray(auxdata, dtype=np.float64)
    fixed = model.fixed if fixed is None else np.asarray(fixed, dtype=bool)
    start = np.asarray(model.init if init is None else init, dtype=np.float64)
    obj = _Objective.make(model, observed, aux, fixed=fixed, base=start)
    x, f, h, edm, n_iter = _minimize(
        obj, start[obj.free], minimizer=minimizer, tol=tol, max_iter=max_iter
    )
    values = start.copy()
    values[obj.free] = x
    cov = np.zeros((model.n_parameters, model.n_parameters))
    cov[np.ix_(obj.free, obj.free)] = covariance(h)
    return WorkspaceFit(
        parameters=model.parameters,
        values=values,
        errors=np.sqrt(np.clip(np.diag(cov), 0, None)),
        covariance=cov,
        hessian=h,
        nll=f,
        edm=edm,
        n_iter=n_iter,
        poi=model.poi,
        fixed=fixed.copy(),
    )


def _main_data(model: WorkspaceModel, data: str | Sequence[float]) -> np.ndarray:
    if isinstance(data, str):
        if data == "observed":
            return model.observed
        if data == "asimov":
            return model.asimov()
        raise WorkspaceError(f"data {data!r}: choose 'observed', 'asimov' or counts")
    observed = np.asarray(data, dtype=np.float64)
    if observed.shape != model.observed.shape:
        raise WorkspaceError(f"data has {observed.size} bins, the model {model.observed.size}")
    return observed


#: Impact groups of the pyhf modifier types; the MC-statistics gammas form ``mc_stat``.
GROUPS = {
    "histosys": "histosys",
    "lumi": "lumi",
    "normsys": "normsys",
    "staterror": "mc_stat",
    "shapesys": "mc_stat",
    "normfactor": "free",
    "shapefactor": "free",
}


def _global_impacts(model, obj, fit, observed, i_free) -> dict[str, float]:
    """Linear response of a parameter to each random input, summed in quadrature per source.

    ``dx/dy = -H^-1 d(grad)/dy`` for the main counts (variance: the fitted yield), the Gaussian
    global observables (variance ``sigma**2``) and the Poisson ones (variance ``gamma tau``).
    On Asimov data the sources add up in quadrature to the total error exactly.
    """
    x = fit.values[obj.free]
    v_i = np.linalg.solve(fit.hessian, np.eye(len(x))[i_free])  # row i of H^-1
    dn, daux = obj.v_dgrad_dinputs(x, v_i)
    r_n, r_aux = -dn, -daux
    nu = np.asarray(model.expected(fit.values))
    out = {"data_stat": float(np.sqrt(np.sum(r_n**2 * nu)))}
    a = model._arrays
    var = np.zeros(model.n_parameters)
    gi = np.asarray(a["gauss_index"])
    var[gi] = np.asarray(a["gauss_sigma"]) ** 2
    pi = np.asarray(a["pois_index"])
    var[pi] = fit.values[pi] * np.asarray(a["pois_tau"])
    var[model.fixed] = 0.0
    groups = model.groups
    for g in dict.fromkeys(groups[np.isfinite(model.auxdata)]):
        idx = (groups == g) & np.isfinite(model.auxdata)
        out[str(g)] = float(np.sqrt(np.sum(r_aux[idx] ** 2 * var[idx])))
    out.setdefault("mc_stat", 0.0)
    out["total"] = float(np.sqrt(sum(v**2 for v in out.values())))
    return out


def fit_workspace(
    ws: str | os.PathLike | Mapping[str, Any] | WorkspaceModel,
    *,
    data: str | Sequence[float] = "observed",
    toys: int | None = None,
    seed: int = 0,
    impacts: bool = False,
    global_impacts: bool = False,
    minimizer: str = "trust",
    scan: Sequence[str] = (),
    scan_points: int = 21,
    scan_range: float = 3.0,
    measurement: str | None = None,
    modifier_settings: Mapping[str, Mapping[str, str]] | None = None,
    tol: float = 1e-10,
    max_iter: int = 200,
    meta: dict[str, Any] | None = None,
) -> Any:
    """Fit a pyhf workspace and return a :class:`fit.FitResult` (what ``wmass fit ws.json`` does).

    The POI is reported under ``pois[<the measurement's poi>]`` as the fitted parameter itself
    (identity transform). ``toys`` follows combine's ``-t`` (-1 Asimov, 0 observed, N toys
    generated at the initial values: Poisson counts, Gaussian and Poisson global observables).
    Impact groups are the modifier types (``normsys``, ``histosys``, ``lumi``; ``staterror`` and
    ``shapesys`` are ``mc_stat``). ``pulls`` are ``value - auxdata`` (not divided by the width).

    >>> r = fit_workspace(simple_workspace([5.0, 10.0], [50.0, 60.0], [55, 70]))
    >>> round(r.pois["mu"]["value"], 4)
    1.0
    """
    import time

    from .provenance import provenance
    from .result import FitResult
    from .uncertainties import group_impacts as _group_impacts
    from .uncertainties import impacts as _impacts

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    model = (
        ws
        if isinstance(ws, WorkspaceModel)
        else read_workspace(ws, measurement=measurement, modifier_settings=modifier_settings)
    )
    timings["build"] = time.perf_counter() - t_start
    if toys is not None and toys != 0:
        data = "asimov"
    elif toys == 0:
        data = "observed"
    label = data if isinstance(data, str) else "pseudodata"
    if toys is not None and toys > 0:
        label = "toys"
    observed = _main_data(model, data)
    t = time.perf_counter()
    best = fit_model(model, data=observed, minimizer=minimizer, tol=tol, max_iter=max_iter)
    timings["minimize"] = time.perf_counter() - t
    constrained = np.isfinite(model.auxdata)
    result = FitResult(
        parameters=list(model.parameters),
        values=best.values,
        errors=best.errors,
        covariance=best.covariance,
        constrained=constrained,
        groups=model.groups.astype(object),
        pois={},
        nll=best.nll,
        edm=best.edm,
        n_iter=best.n_iter,
        minimizer=minimizer,
        data=label,
        theta0=np.where(constrained, model.auxdata, 0.0),
        timings=timings,
    )
    pois = [model.poi] if model.poi is not None else []
    obj = _Objective.make(model, observed, model.auxdata)
    free_pos = {int(k): j for j, k in enumerate(obj.free)}
    for name in pois:
        i = model.index(name)
        result.pois[name] = {
            "name": name,
            "kind": "nuisance",
            "offset": 0.0,
            "scale": 1.0,
            "unit": "",
            "value": float(best.values[i]),
            "error": float(best.errors[i]),
            "index": i,
            "x": float(best.values[i]),
            "x_error": float(best.errors[i]),
        }
        if impacts:
            t = time.perf_counter()
            result.impacts[name] = _impacts(best.covariance, i)
            members = constrained & ~model.fixed
            result.group_impacts[name] = _group_impacts(best.covariance, i, model.groups, members)
            timings["impacts"] = time.perf_counter() - t
        if global_impacts and i in free_pos:
            t = time.perf_counter()
            result.global_impacts[name] = _global_impacts(model, obj, best, observed, free_pos[i])
            timings["global_impacts"] = time.perf_counter() - t
    from .gof import saturated_gof

    n_free_unconstrained = int((~constrained & ~model.fixed).sum())
    result.gof = saturated_gof(best.nll, model.observed.size, n_free_unconstrained)
    for name in scan:
        t = time.perf_counter()
        result.scans[name] = _scan(model, best, observed, name, scan_points, scan_range, tol)
        timings[f"scan_{name}"] = time.perf_counter() - t
    if toys is not None and toys > 0:
        t = time.perf_counter()
        result.toys = _toys(model, toys, seed, pois, minimizer, tol, max_iter)
        timings["toys"] = time.perf_counter() - t
    result.time = time.perf_counter() - t_start
    result.meta = (
        meta
        if meta is not None
        else provenance(
            args={"data": label, "toys": toys, "seed": seed, "minimizer": minimizer},
            inputs=[] if isinstance(ws, (Mapping, WorkspaceModel)) else [str(ws)],
        )
    )
    return result


def _scan(model, best, observed, name, points, width, tol) -> dict[str, np.ndarray]:
    i = model.index(name)
    grid = best.values[i] + best.errors[i] * np.linspace(-width, width, points)
    fixed = model.fixed.copy()
    fixed[i] = True
    dnll = np.empty(points)
    start = best.values.copy()
    for j, v in enumerate(grid):
        start[i] = v
        r = fit_model(model, data=observed, init=start, fixed=fixed, tol=tol)
        dnll[j] = r.nll - best.nll
        start = r.values.copy()
    return {"x": grid, "values": grid.copy(), "dnll": dnll}


def _toys(model, n, seed, pois, minimizer, tol, max_iter) -> dict[str, Any]:
    from .errors import FitDidNotConverge

    rng = np.random.default_rng(seed)
    expected = model.asimov()
    a = model._arrays
    gi, pi = np.asarray(a["gauss_index"]), np.asarray(a["pois_index"])
    sigma, tau = np.asarray(a["gauss_sigma"]), np.asarray(a["pois_tau"])
    values = np.full((n, model.n_parameters), np.nan)
    errors = np.full_like(values, np.nan)
    nll = np.full(n, np.nan)
    status = []
    for j in range(n):
        counts = rng.poisson(expected).astype(np.float64)
        aux = model.auxdata.copy()
        aux[gi] = model.init[gi] + sigma * rng.standard_normal(gi.size)
        aux[pi] = rng.poisson(model.init[pi] * tau).astype(np.float64)
        try:
            r = fit_model(
                model, data=counts, auxdata=aux, minimizer=minimizer, tol=tol, max_iter=max_iter
            )
        except FitDidNotConverge as err:
            status.append(err.reason)
            continue
        values[j], errors[j], nll[j] = r.values, r.errors, r.nll
        status.append("converged")
    out: dict[str, Any] = {
        "values": values,
        "errors": errors,
        "nll": nll,
        "status": status,
        "x_gen": model.init.copy(),
    }
    for name in pois:
        i = model.index(name)
        out[f"poi_{name}"] = np.stack([values[:, i], errors[:, i]], axis=1)
    return out


# --------------------------------------------------------------------------------------------
# export


def _classify(fi: Any, width: float) -> list[tuple[str, float]]:
    """How each parameter of a FitInput is exported: (modifier type, scale) per column.

    ``normfactor`` (scale c: pyhf's factor is ``exp(c x)``), ``normsys``, ``histosys`` (scale 1)
    or ``histosys`` of an unconstrained parameter (scale ``width``: pyhf's ``theta = x / width``).
    """
    norm_pois = {p.name for p in fi.pois if p.kind == "norm"}
    up = fi.logk_up.tocsc()
    down = None if fi.logk_down is None else fi.logk_down.tocsc()
    nprocs = fi.nprocs
    chan = np.zeros(fi.nbins, dtype=np.int64)
    for i, ch in enumerate(fi.channels):
        chan[ch.slice] = i
    # bins with a yield per (channel, process): a normalisation acts on all of them
    filled = np.zeros((len(fi.channels), nprocs), dtype=np.int64)
    np.add.at(filled, chan, fi.nominal > 0)
    out = []
    for k, name in enumerate(fi.parameters):
        col = up[:, [k]].tocoo()
        rows, u = col.row, col.data
        d = None
        if down is not None:
            dcol = down[:, [k]].toarray().ravel()
            d = dcol[rows]
        symmetric = d is None or np.allclose(d, -u, rtol=0, atol=0)
        if name in norm_pois:
            out.append(("normfactor", 1.0))
            continue
        # constant per (channel, process) use?
        procs = rows % nprocs
        bins = rows // nprocs
        use = chan[bins] * nprocs + procs
        constant = True
        for key in np.unique(use):
            sel = use == key
            if np.ptp(u[sel]) != 0 or (d is not None and np.ptp(d[sel]) != 0):
                constant = False
                break
            if sel.sum() != filled[int(key // nprocs), int(key % nprocs)]:
                constant = False
                break
        if fi.constraints[k] == "none":
            if symmetric and constant and u.size and np.ptp(u) == 0:
                out.append(("normfactor", float(u[0])))
            else:
                out.append(("histosys", float(width)))
        else:
            out.append(("normsys" if constant else "histosys", 1.0))
    return out


def to_workspace(
    fit_input: Any,
    *,
    split: Sequence[str] = (),
    unconstrained_width: float = 100.0,
    measurement: str = "measurement",
) -> dict[str, Any]:
    """A pyhf workspace (dict) for a :class:`fit.FitInput`.

    Each unmasked channel (masked ones are left out: pyhf has none) becomes a pyhf channel, or
    one per slice of the axes named in ``split`` (e.g. ``("charge", "eta")``: per-slice
    nuisances then stay in their slice and the JSON stays small). Each parameter becomes:

    - a signal strength POI (``x = log mu``): ``normfactor`` ``mu = exp(x)`` — **exact**;
    - a Gaussian-constrained log-normal normalisation (the same log-kappa on every bin of a
      channel x process): ``normsys`` with ``hi = exp(u)``, ``lo = exp(d)`` — **exact** for a
      symmetric kappa with ``interpcode code1`` (``kappa**theta``: read it with
      ``modifier_settings={"normsys": {"interpcode": "code1"}}``; pyhf 0.7 builds ``code4``
      by default, a polynomial inside |theta| < 1); for an asymmetric one exact for
      |theta| >= 1/2 (inside, combinetf's smooth interpolation differs from code1's kink);
    - an unconstrained normalisation with one log-kappa ``c``: ``normfactor`` ``exp(c x)`` — exact;
    - a shape (log-kappa varying over bins): ``histosys`` with ``hi_data = nominal * exp(u)``,
      ``lo_data = nominal * exp(d)`` — an **approximation**: pyhf interpolates additively,
      piecewise-linearly (code0) or with a polynomial (code4p) between the templates, where we
      scale each bin by ``exp(x * logk)``; equal at x = 0 and +-1 for one parameter alone, and
      several shapes add in pyhf where they multiply here (on the benchmark model the POI moves
      by up to 1 sigma);
    - an unconstrained shape (e.g. the W mass): ``histosys`` whose templates are stretched by
      ``unconstrained_width`` (``hi = nominal * (1 + w (exp(u) - 1))``), so pyhf's unit Gaussian
      on ``theta = x / w`` is a constraint of width ``w`` on ``x`` — nearly free;
    - ``sumw2`` (Barlow-Beeston-lite): ``staterror`` per channel with ``sqrt(sumw2)`` per
      sample — an approximation (a Gaussian per-bin gamma instead of the BB-lite Poisson term).

    Use :func:`write_workspace` to store it with its provenance.
    """
    fi = fit_input
    kinds = _classify(fi, unconstrained_width)
    P = fi.nprocs
    up = fi.logk_up.tocsr()
    down = None if fi.logk_down is None else fi.logk_down.tocsr()
    channels, observations = [], []
    for ch in fi.channels:
        if ch.masked:
            continue
        shape = ch.shape
        names = [a.get("name", f"axis{i}") for i, a in enumerate(ch.axes)]
        if len(shape) != len(names):
            names = [f"axis{i}" for i in range(len(shape))]
        split_dims = [names.index(a) for a in split if a in names]
        local = np.arange(ch.nbins).reshape(shape)
        pieces: list[tuple[str, np.ndarray]] = []
        if split_dims:
            for idx in np.ndindex(*[shape[i] for i in split_dims]):
                sel = [slice(None)] * len(shape)
                for dim, i in zip(split_dims, idx, strict=True):
                    sel[dim] = i
                label = "_".join(f"{names[d]}{i}" for d, i in zip(split_dims, idx, strict=True))
                pieces.append((f"{ch.name}_{label}", np.sort(local[tuple(sel)].ravel())))
        else:
            pieces.append((ch.name, np.arange(ch.nbins)))
        for cname, lbins in pieces:
            bins = ch.first_bin + lbins
            samples = []
            for p, proc in enumerate(fi.processes):
                nom = fi.nominal[bins, p]
                if not np.any(nom > 0):
                    continue
                rows = bins * P + p
                u_blk = up[rows].tocsc()
                d_blk = None if down is None else down[rows].tocsc()
                active = np.flatnonzero(np.diff(u_blk.indptr) > 0)
                if d_blk is not None:
                    active = np.union1d(active, np.flatnonzero(np.diff(d_blk.indptr) > 0))
                mods = []
                for k in active:
                    u = u_blk[:, [k]].toarray().ravel()
                    d = -u if d_blk is None else d_blk[:, [k]].toarray().ravel()
                    name = fi.parameters[k]
                    kind, scale = kinds[k]
                    if kind == "normfactor":
                        mods.append({"name": name, "type": "normfactor", "data": None})
                    elif kind == "normsys":
                        at = int(np.flatnonzero(u != 0)[0]) if np.any(u != 0) else 0
                        mods.append(
                            {
                                "name": name,
                                "type": "normsys",
                                "data": {"hi": float(np.exp(u[at])), "lo": float(np.exp(d[at]))},
                            }
                        )
                    else:
                        hi = nom * (1.0 + scale * np.expm1(u))
                        lo = nom * (1.0 + scale * np.expm1(d))
                        mods.append(
                            {
                                "name": name,
                                "type": "histosys",
                                "data": {"hi_data": hi.tolist(), "lo_data": lo.tolist()},
                            }
                        )
                if fi.sumw2 is not None:
                    mods.append(
                        {
                            "name": f"staterror_{cname}",
                            "type": "staterror",
                            "data": np.sqrt(fi.sumw2[bins, p]).tolist(),
                        }
                    )
                samples.append({"name": proc, "data": nom.tolist(), "modifiers": mods})
            if not samples:
                continue
            channels.append({"name": cname, "samples": samples})
            observations.append({"name": cname, "data": fi.data[bins].tolist()})
    config: dict[str, Any] = {"parameters": []}
    if fi.pois:
        config["poi"] = fi.pois[0].name
    for k, (kind, _) in enumerate(kinds):
        if kind == "normfactor":
            config["parameters"].append({"name": fi.parameters[k], "bounds": [[0.0, 1e3]]})
    return {
        "channels": channels,
        "observations": observations,
        "measurements": [{"name": measurement, "config": config}],
        "version": "1.0.0",
    }


def workspace_parameters(
    fit_input: Any, x: Sequence[float], model: WorkspaceModel, *, unconstrained_width: float = 100.0
) -> np.ndarray:
    """The point of an exported workspace's ``model`` that corresponds to our parameters ``x``.

    (``mu = exp(c x)`` for normfactors, ``theta = x`` for normsys and constrained histosys,
    ``x / width`` for unconstrained histosys; other pyhf parameters, e.g. gammas, at their init.)
    """
    kinds = _classify(fit_input, unconstrained_width)
    pars = model.init.copy()
    for k, (kind, scale) in enumerate(kinds):
        name = fit_input.parameters[k]
        if name not in model.parameters:
            continue
        i = model.index(name)
        if kind == "normfactor":
            pars[i] = math.exp(scale * x[k])
        elif kind == "histosys":
            pars[i] = x[k] / scale
        else:
            pars[i] = x[k]
    return pars


def write_workspace(
    fit_input: Any,
    path: str | os.PathLike,
    *,
    meta: Mapping[str, Any] | None = None,
    **options: Any,
) -> Path:
    """Write :func:`to_workspace` as JSON (atomically) and its provenance beside it.

    pyhf's schema allows no extra keys, so the provenance goes to ``<path>.provenance.json``.
    """
    from .provenance import atomic_write_text, provenance

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = to_workspace(fit_input, **options)
    meta = dict(meta) if meta is not None else provenance(args=options)
    for target, payload in ((path, spec), (path.with_name(path.name + ".provenance.json"), meta)):
        atomic_write_text(target, json.dumps(payload))
    return path
