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

**Export** (:func:`to_workspace`) writes a :class:`fit.FitInput` as a pyhf workspace
(see its docstring for what is exact and what is approximated).

>>> spec = simple_workspace(signal=[5.0, 10.0], background=[50.0, 60.0], observed=[58, 69])
>>> model = read_workspace(spec)
>>> model.parameters
('mu',)
"""

from __future__ import annotations

import copy
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "WorkspaceError",
    "WorkspaceModel",
    "fit_workspace",
    "read_workspace",
    "simple_workspace",
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


try:  # H2's base error for bad fit inputs, when present
    from .errors import FitInputError as _FitInputError
except ImportError:  # pragma: no cover - before fit.errors exists
    _FitInputError = ValueError  # type: ignore[assignment,misc]


class WorkspaceError(_FitInputError):
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


def _expected_by_sample(a: dict[str, Any], pars: Any, histosys: str, normsys: str) -> Any:
    import jax.numpy as jnp

    pars = jnp.asarray(pars, dtype=jnp.float64)
    nominal = a["nominal"]
    if a["hs_index"].size:
        theta = pars[a["hs_index"]]
        if histosys == "code0":
            h = jnp.abs(theta)
        else:  # code4p: 6th-order polynomial inside |theta| < 1, linear outside
            t2 = theta * theta
            inside = t2 * (15.0 - 10.0 * t2 + 3.0 * t2 * t2) / 8.0
            h = jnp.where(jnp.abs(theta) > 1.0, jnp.abs(theta), inside)
        nominal = nominal + (theta @ a["hs_sum"] + h @ a["hs_diff"]).reshape(nominal.shape)
    factor = jnp.ones_like(nominal)
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
    return nominal * factor


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
        return copy.deepcopy(dict(ws))
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


def _check_yields(values: Sequence[float], what: str, nbins: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (nbins,):
        raise WorkspaceError(f"{what}: {arr.size} values for a channel of {nbins} bins")
    if not np.all(np.isfinite(arr)):
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise WorkspaceError(f"{what}: non-finite value {arr[bad]} in bin {bad}")
    if np.any(arr < 0):
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
            hi = _check_yields(data["hi_data"], what + " hi_data", nbins[c])
            lo = _check_yields(data["lo_data"], what + " lo_data", nbins[c])
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
        "hs_sum": jnp.asarray(hs_sum.reshape(len(hs_names), -1)),
        "hs_diff": jnp.asarray(hs_diff.reshape(len(hs_names), -1)),
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


_COMPILED: dict[str, Any] = {}


def _compiled() -> dict[str, Any]:
    """The jitted value+gradient, Hessian and HVP of :func:`_free_nll` (compiled once per shape)."""
    if not _COMPILED:
        import jax

        static = ("histosys", "normsys")
        grad = jax.grad(_free_nll)
        _COMPILED["vg"] = jax.jit(jax.value_and_grad(_free_nll), static_argnames=static)
        _COMPILED["hess"] = jax.jit(jax.hessian(_free_nll), static_argnames=static)
        _COMPILED["hvp"] = jax.jit(
            lambda x, v, *args, histosys, normsys: jax.jvp(
                lambda y: grad(y, *args, histosys=histosys, normsys=normsys), (x,), (v,)
            )[1],
            static_argnames=static,
        )
    return _COMPILED


def _objective(model: WorkspaceModel, observed: np.ndarray, auxdata: np.ndarray):
    """Value+gradient, Hessian and HVP of the NLL as functions of the free parameters."""
    import jax.numpy as jnp

    c = _compiled()
    free = np.flatnonzero(~model.fixed)
    args = (
        model._arrays,
        jnp.asarray(model.init),
        jnp.asarray(free),
        jnp.asarray(observed, dtype=jnp.float64),
        jnp.asarray(auxdata, dtype=jnp.float64),
    )
    codes = model._codes

    def value_and_grad(x):
        v, g = c["vg"](jnp.asarray(x), *args, **codes)
        return float(v), np.asarray(g)

    def hessian(x):
        return np.asarray(c["hess"](jnp.asarray(x), *args, **codes))

    def hessp(x, v):
        return np.asarray(c["hvp"](jnp.asarray(x), jnp.asarray(v), *args, **codes))

    return free, value_and_grad, hessian, hessp


def _edm(g: np.ndarray, h: np.ndarray) -> float:
    import scipy.linalg

    try:
        c = scipy.linalg.cho_factor(h)
    except np.linalg.LinAlgError:
        return float("nan")
    return float(0.5 * g @ scipy.linalg.cho_solve(c, g))


def _minimize(value_and_grad, hessian, hessp, x0: np.ndarray, *, tolerance: float, max_iter: int):
    """Trust-region Newton with the exact Hessian: H2's ``fit.minimize`` when present."""
    import scipy.optimize

    from .errors import FitDidNotConverge

    res = scipy.optimize.minimize(
        value_and_grad,
        x0,
        jac=True,
        hess=hessian,
        method="trust-exact",
        options={"gtol": 1e-10, "maxiter": max_iter},
    )
    x = res.x
    f, g = value_and_grad(x)
    if not np.isfinite(f):
        raise FitDidNotConverge("non-finite NLL", x=x, n_iter=res.nit)
    h = hessian(x)
    edm = _edm(g, h)
    # polish with plain Newton steps (the trust region may stop on its gradient test early)
    for _ in range(3):
        if not np.isfinite(edm) or edm < tolerance * 1e-3:
            break
        step = np.linalg.solve(h, g)
        f_new, g_new = value_and_grad(x - step)
        if not (f_new <= f):
            break
        x, f, g = x - step, f_new, g_new
        h = hessian(x)
        edm = _edm(g, h)
    if not np.isfinite(edm):
        raise FitDidNotConverge("Hessian not positive definite", x=x, n_iter=res.nit)
    if edm > tolerance:
        raise FitDidNotConverge(
            f"edm {edm:.3g} above tolerance {tolerance:g}", x=x, edm=edm, n_iter=res.nit
        )
    return x, f, h, edm, int(res.nit)


def fit_model(
    model: WorkspaceModel,
    *,
    data: str | Sequence[float] = "observed",
    init: Sequence[float] | None = None,
    tolerance: float = 1e-10,
    max_iter: int = 200,
) -> WorkspaceFit:
    """Maximum-likelihood fit of a :class:`WorkspaceModel` (free parameters only).

    ``data``: ``"observed"``, ``"asimov"`` (expected yields at the initial values, auxiliary
    data unchanged) or the main-channel counts. Errors are ``sqrt(diag(H^-1))`` of the NLL's
    exact Hessian (pyhf/minuit HESSE with ``errordef=1`` on ``2 NLL``).
    """
    _enable_x64()
    if isinstance(data, str):
        if data == "observed":
            observed = model.observed
        elif data == "asimov":
            observed = model.asimov()
        else:
            raise WorkspaceError(f"data {data!r}: choose 'observed', 'asimov' or counts")
    else:
        observed = np.asarray(data, dtype=np.float64)
        if observed.shape != model.observed.shape:
            raise WorkspaceError(f"data has {observed.size} bins, the model {model.observed.size}")
    free, value_and_grad, hessian, hessp = _objective(model, observed, model.auxdata)
    x0 = np.asarray(model.init if init is None else init, dtype=np.float64)[free]
    x, f, h, edm, n_iter = _minimize(
        value_and_grad, hessian, hessp, x0, tolerance=tolerance, max_iter=max_iter
    )
    values = model.init.copy()
    values[free] = x
    cov = np.zeros((model.n_parameters, model.n_parameters))
    cov[np.ix_(free, free)] = np.linalg.inv(h)
    errors = np.sqrt(np.clip(np.diag(cov), 0, None))
    return WorkspaceFit(
        parameters=model.parameters,
        values=values,
        errors=errors,
        covariance=cov,
        nll=f,
        edm=edm,
        n_iter=n_iter,
        poi=model.poi,
        fixed=model.fixed.copy(),
    )
