"""Read a pyhf workspace into a :class:`fit.terms.TermsInput` (the structured engine's terms).

Reproduces pyhf's own likelihood (``pyhf.Workspace(spec).model().logpdf``) up to a constant for
every HistFactory modifier (:mod:`fit.terms` gives the formulas):

- ``normfactor`` (free scale), ``lumi`` (scale, Gaussian constraint with the measurement's
  ``auxdata``/``sigmas``), ``shapefactor`` (free per-bin scale),
- ``normsys`` (interpolation code 4 by default, as pyhf 0.7 builds models; code 1 on request),
  Gaussian-constrained,
- ``histosys`` (code 4p by default; code 0 on request), Gaussian-constrained,
- ``staterror`` (one Gaussian-constrained gamma per bin shared by the samples of a channel,
  relative width ``sqrt(sum sigma_s**2) / sum nominal_s``; zero-width bins fixed at 1),
- ``shapesys`` (one Poisson-constrained gamma per bin with ``tau = (nominal / sigma)**2``;
  bins with zero nominal or zero uncertainty fixed at 1),

with the bounds, initial values, fixed flags, auxiliary data and widths of the measurement's
``config.parameters`` and its ``poi``. Parameters follow pyhf's order and names
(``model.config.par_names``: ``name`` or ``name[i]``); channels and samples are sorted as pyhf
sorts them, a sample becoming a process of the fit input.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..terms import ELEMENT_KINDS, TermsInput
from ..writer import POI, Channel
from .modifiers import (
    DEFAULT_MODIFIER_SETTINGS,
    GROUPS,
    MODIFIER_TYPES,
    WorkspaceError,
    check_normsys,
    check_yields,
    configure,
    modifier_terms,
    param_sets,
)

__all__ = [
    "DEFAULT_MODIFIER_SETTINGS",
    "GROUPS",
    "MODIFIER_TYPES",
    "WorkspaceError",
    "read_workspace",
    "simple_workspace",
]


#: The modifier types this reader understands (all of pyhf's HistFactory set).
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
    try:
        import pyhf
        import pyhf.exceptions
    except ImportError:  # pyhf is optional: the structural check stands alone
        return

    try:
        pyhf.schema.validate(spec, "workspace.json")
    except pyhf.exceptions.InvalidSpecification as exc:
        path = getattr(exc, "path", "") or ""
        if not isinstance(path, str):
            path = "/".join(str(p) for p in path)
        _unknown_modifier(spec, where, exc)
        raise WorkspaceError(f"{where}: not a valid pyhf workspace at /{path}: {exc}") from exc


#: the keys every part of a workspace must have (pyhf's schema, its required properties)
_REQUIRED = {
    "": ("channels", "observations", "measurements", "version"),
    "channel": ("name", "samples"),
    "sample": ("name", "data", "modifiers"),
    "modifier": ("name", "type", "data"),
    "observation": ("name", "data"),
    "measurement": ("name", "config"),
}


def _check_structure(spec: Any, where: str) -> None:
    """The structure pyhf's schema asks for (required keys, lists, names): a cheap check that
    names the place at fault, run on every read (pyhf's full schema with ``validate=True``)."""

    def need(obj: Any, part: str, path: str) -> None:
        if not isinstance(obj, Mapping):
            raise WorkspaceError(f"{where}: not a valid pyhf workspace at /{path}: not an object")
        for key in _REQUIRED[part]:
            if key not in obj:
                raise WorkspaceError(
                    f"{where}: not a valid pyhf workspace at /{path}: {key!r} is a required "
                    "property"
                )
        if "name" in _REQUIRED[part] and not isinstance(obj["name"], str):
            raise WorkspaceError(f"{where}: not a valid pyhf workspace at /{path}/name")

    need(spec, "", "")
    for key in ("channels", "observations", "measurements"):
        if not isinstance(spec[key], list) or (key == "channels" and not spec[key]):
            raise WorkspaceError(f"{where}: not a valid pyhf workspace at /{key}: a list")
    for i, ch in enumerate(spec["channels"]):
        need(ch, "channel", f"channels/{i}")
        if not isinstance(ch["samples"], list) or not ch["samples"]:
            raise WorkspaceError(f"{where}: not a valid pyhf workspace at /channels/{i}/samples")
        for j, sample in enumerate(ch["samples"]):
            need(sample, "sample", f"channels/{i}/samples/{j}")
            if not isinstance(sample["data"], list) or not isinstance(sample["modifiers"], list):
                raise WorkspaceError(
                    f"{where}: not a valid pyhf workspace at /channels/{i}/samples/{j}"
                )
            for m, mod in enumerate(sample["modifiers"]):
                need(mod, "modifier", f"channels/{i}/samples/{j}/modifiers/{m}")
    for i, obs in enumerate(spec["observations"]):
        need(obs, "observation", f"observations/{i}")
    for i, meas in enumerate(spec["measurements"]):
        need(meas, "measurement", f"measurements/{i}")


def _unknown_modifier(spec: dict[str, Any], where: str, cause: Exception | None = None) -> None:
    """Name an unknown modifier type (the commonest schema failure)."""
    for channel in spec.get("channels", []):
        for sample in channel.get("samples", []):
            for mod in sample.get("modifiers", []):
                if isinstance(mod, Mapping) and mod.get("type") not in MODIFIER_TYPES:
                    raise WorkspaceError(
                        f"{where}: channel {channel.get('name')!r} sample "
                        f"{sample.get('name')!r}: modifier {mod.get('name')!r} has unknown "
                        f"type {mod.get('type')!r} (known: {', '.join(MODIFIER_TYPES)})"
                    ) from cause


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


def _settings(modifier_settings: Mapping[str, Mapping[str, str]] | None) -> dict[str, dict]:
    settings = {k: dict(v) for k, v in DEFAULT_MODIFIER_SETTINGS.items()}
    for key, value in (modifier_settings or {}).items():
        settings.setdefault(key, {}).update(value)
    for kind, codes in (("normsys", ("code1", "code4")), ("histosys", ("code0", "code4p"))):
        if settings[kind]["interpcode"] not in codes:
            raise WorkspaceError(f"{kind} interpcode {settings[kind]['interpcode']!r} unsupported")
    return settings


def read_workspace(
    ws: str | os.PathLike | Mapping[str, Any],
    *,
    measurement: str | None = None,
    modifier_settings: Mapping[str, Mapping[str, str]] | None = None,
    validate: bool | None = None,
) -> TermsInput:
    """Read a pyhf workspace (path to JSON, or the dict) into a :class:`fit.terms.TermsInput`.

    ``modifier_settings`` has pyhf's form (``{"normsys": {"interpcode": "code1"}, ...}``); the
    default is what ``pyhf.Workspace(spec).model()`` uses. The structure (required keys and
    types) and every value read are checked, naming the place at fault; pyhf's full JSON schema
    (pyhf's own validator, when pyhf is installed) with ``validate=True``; by default (``None``)
    only when the workspace fails to read, to name the schema violation (jsonschema takes ~7 s
    on a 10 MB workspace, 20x our fit); never with ``False``.
    Raises :class:`WorkspaceError` naming the culprit.
    """
    where = str(ws) if not isinstance(ws, Mapping) else "workspace"
    spec = _load(ws)
    _unknown_modifier(spec, where)
    _check_structure(spec, where)
    if validate:
        _validate(spec, where)
    try:
        return _read(spec, where, measurement, modifier_settings, ws)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        if isinstance(exc, WorkspaceError):
            raise
        if validate is None:
            _validate(spec, where)  # names the schema violation, if that is what it is
        raise WorkspaceError(f"{where}: not a valid pyhf workspace: {exc!r}") from exc


def _read(spec, where, measurement, modifier_settings, ws) -> TermsInput:
    settings = _settings(modifier_settings)
    config = _measurement(spec, measurement, where).get("config", {})

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
    n_bins, P = start, len(samples)
    s_index = {s: i for i, s in enumerate(samples)}

    observations = {o["name"]: o["data"] for o in spec.get("observations", [])}
    observed = np.zeros(n_bins)
    for c in channels:
        if c not in observations:
            raise WorkspaceError(f"{where}: channel {c!r} has no observation")
        observed[offsets[c]] = check_yields(
            observations[c], f"{where}: observation of channel {c!r}", nbins[c]
        )

    nominal = np.zeros((P, n_bins))
    # modifier entries: type -> name -> list of (channel, sample, modifier data)
    entries: dict[str, dict[str, list[tuple[str, str, Any]]]] = {t: {} for t in MODIFIER_TYPES}
    for c in channels:
        for sample in sorted(channel_specs[c]["samples"], key=lambda s: s["name"]):
            s = sample["name"]
            what = f"{where}: channel {c!r} sample {s!r}"
            nominal[s_index[s], offsets[c]] = check_yields(sample["data"], what, nbins[c])
            for mod in sorted(sample["modifiers"], key=lambda m: (m["name"], m["type"])):
                if mod["type"] not in entries:
                    raise WorkspaceError(
                        f"{what}: modifier {mod['name']!r} has unknown type {mod['type']!r}"
                    )
                entries[mod["type"]].setdefault(mod["name"], []).append((c, s, mod.get("data")))
    for name, uses in entries["shapesys"].items():
        if len(uses) > 1:
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

    psets, staterror_bins = param_sets(entries, nominal, offsets, nbins, s_index, n_bins, where)
    configure(psets, config, where)
    names: list[str] = []
    start_of: dict[str, int] = {}
    for p in psets:
        start_of[p.name] = len(names)
        single = p.kind in ("histosys", "lumi", "normfactor", "normsys")
        names.extend([p.name] if single else [f"{p.name}[{i}]" for i in range(p.n)])
    K = len(names)
    poi = config.get("poi")
    if poi is not None and poi not in names:
        raise WorkspaceError(
            f"{where}: the measurement's POI {poi!r} is not a parameter of the model"
        )
    check_normsys(entries, where)
    terms = modifier_terms(
        entries, psets, start_of, nominal, offsets, nbins, s_index, staterror_bins, where
    )
    terms.settings = settings
    terms.hs_code = settings["histosys"]["interpcode"]
    ns_kind = ELEMENT_KINDS[settings["normsys"]["interpcode"]]
    terms.use_kind = np.where(terms.use_kind == ELEMENT_KINDS["code1"], ns_kind, terms.use_kind)
    return TermsInput(
        channels=[Channel(c, offsets[c].start, nbins[c]) for c in channels],
        processes=list(samples),
        signal=np.zeros(P, dtype=bool),
        data=observed,
        nominal=nominal.T.copy(),
        parameters=names,
        constraints=np.where(terms.constrained, "gaussian", "none"),
        groups=np.array([GROUPS[p.kind] for p in psets for _ in range(p.n)], dtype=object),
        logk_up=sp.csr_array((n_bins * P, K)),
        pois=[POI(poi, kind="nuisance")] if poi is not None else [],
        meta={"path": where} if not isinstance(ws, Mapping) else {},
        terms=terms,
    )


def simple_workspace(
    signal: Sequence[float],
    background: Sequence[float],
    observed: Sequence[float],
    *,
    poi: str = "mu",
) -> dict[str, Any]:
    """A one-channel signal + background workspace (no systematics): for docs and examples.

    >>> from fit import fit
    >>> r = fit(read_workspace(simple_workspace([5.0, 10.0], [50.0, 60.0], [55, 70])))
    >>> round(float(r.pois["mu"]["value"]), 4)
    1.0
    """
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
