"""HistFactory's modifiers as the structured engine's terms: parameter sets and their terms.

:func:`param_sets` lays out pyhf's parameters (order, names, initial values, bounds, fixed flags,
constraints, auxiliary data), :func:`configure` applies a measurement's ``config.parameters``,
and :func:`modifier_terms` turns the modifiers of every (channel, sample) into the element and
additive terms and per-parameter constraints of :class:`fit.terms.ModelTerms`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import FitInputError
from ..terms import ELEMENT_KINDS, ModelTerms, code4_coefficients

__all__ = [
    "DEFAULT_MODIFIER_SETTINGS",
    "GROUPS",
    "MODIFIER_TYPES",
    "WorkspaceError",
    "check_normsys",
    "check_yields",
    "configure",
    "modifier_terms",
    "param_sets",
]

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


class WorkspaceError(FitInputError):
    """A pyhf workspace that cannot be read: names the channel, sample or modifier at fault."""


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


def check_yields(
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


def param_sets(entries, nominal, offsets, nbins, s_index, n_bins, where):
    """pyhf's parameter sets in its order (modifier type, then first appearance)."""
    psets: list[_ParamSet] = []
    gauss = ("normal", [0.0], [1.0])
    for name in entries["histosys"]:
        psets.append(_ParamSet(name, "histosys", 1, [0.0], [(-5.0, 5.0)], [False], *gauss))
    for name in entries["lumi"]:
        psets.append(_ParamSet(name, "lumi", 1, [], [], [False], "normal"))
    for name in entries["normfactor"]:
        psets.append(_ParamSet(name, "normfactor", 1, [1.0], [(0.0, 10.0)], [False], None))
    for name in entries["normsys"]:
        psets.append(_ParamSet(name, "normsys", 1, [0.0], [(-5.0, 5.0)], [False], *gauss))
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
    for name, uses in entries["shapesys"].items():
        c, s, data = uses[0]
        nom = nominal[s_index[s], offsets[c]]
        unc = check_yields(data, f"{where}: channel {c!r} sample {s!r} shapesys {name!r}", nbins[c])
        valid = (nom > 0) & (unc > 0)
        tau = np.where(valid, nom**2 / np.where(valid, unc, 1.0) ** 2, 1.0)
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
            )  # fmt: skip
        )
    staterror_bins: dict[str, np.ndarray] = {}
    for name, uses in entries["staterror"].items():
        mask = np.zeros(n_bins, dtype=bool)
        nom_sum, var = np.zeros(n_bins), np.zeros(n_bins)
        for c, s, data in uses:
            unc = check_yields(
                data, f"{where}: channel {c!r} sample {s!r} staterror {name!r}", nbins[c]
            )
            mask[offsets[c]] = True
            var[offsets[c]] += unc**2
        for s in {s for _, s, _ in uses}:
            nom_sum += nominal[s_index[s]]
        safe = np.where(nom_sum > 0, nom_sum, 1.0)
        rel = np.where(nom_sum > 0, np.sqrt(var) / safe, 0.0)[mask]
        fixed = rel == 0
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
                list(np.where(fixed, 1.0, rel)),
            )  # fmt: skip
        )
    return psets, staterror_bins


def configure(psets: list[_ParamSet], config: Mapping[str, Any], where: str) -> None:
    """The measurement's parameter configuration overrides the defaults."""
    by_name = {p.name: p for p in psets}
    configured = [user["name"] for user in config.get("parameters", [])]
    for name in configured:
        if configured.count(name) > 1:
            raise WorkspaceError(f"{where}: measurement parameter {name!r} is configured twice")
    attrs = {"inits": "init", "bounds": "bounds", "auxdata": "auxdata", "sigmas": "sigmas"}
    for user in config.get("parameters", []):
        p = by_name.get(user["name"])
        if p is None:
            continue  # pyhf ignores configurations of parameters the model does not have
        for key, attr in attrs.items():
            if key in user:
                values = [tuple(v) if key == "bounds" else float(v) for v in user[key]]
                if len(values) != p.n:
                    raise WorkspaceError(
                        f"{where}: measurement parameter {p.name!r}: {len(values)} {key} for "
                        f"{p.n} parameters"
                    )
                setattr(p, attr, values)
        if "fixed" in user:
            p.fixed = [bool(user["fixed"])] * p.n
    for p in psets:
        if p.kind == "lumi" and not (p.init and p.bounds and p.auxdata and p.sigmas):
            raise WorkspaceError(
                f"{where}: lumi modifier {p.name!r} needs inits, bounds, auxdata and sigmas in "
                f"the measurement's parameters"
            )


def check_normsys(entries, where: str) -> None:
    for name, uses in entries["normsys"].items():
        for c, s, data in uses:
            hi, lo = float(data["hi"]), float(data["lo"])
            if not (hi > 0 and lo > 0 and math.isfinite(hi) and math.isfinite(lo)):
                raise WorkspaceError(
                    f"{where}: channel {c!r} sample {s!r} normsys {name!r}: hi={hi}, lo={lo} "
                    "must be positive and finite"
                )


def modifier_terms(
    entries, psets, start_of, nominal, offsets, nbins, s_index, staterror_bins, where
) -> ModelTerms:
    """The element and additive terms and the per-parameter constraints (:mod:`fit.terms`)."""
    P, n_bins = nominal.shape
    K = sum(p.n for p in psets)
    # the linear factors: one use per parameter, made up front
    linear = ("lumi", "normfactor", "shapefactor", "shapesys", "staterror")
    log_cols = [start_of[p.name] + i for p in psets if p.kind in linear for i in range(p.n)]
    log_use = np.full(K, -1, dtype=np.int64)
    log_use[log_cols] = np.arange(len(log_cols))
    kind = [ELEMENT_KINDS["log"]] * len(log_cols)
    col_of, a, h = list(log_cols), [0.0] * len(log_cols), [0.0] * len(log_cols)
    coeff = [np.zeros(6)] * len(log_cols)
    rows, use = [], []

    def add(bins, s, col, k, av=0.0, hv=0.0, c=None):
        r = np.asarray(bins) * P + s_index[s]
        cols = np.broadcast_to(np.asarray(col, dtype=np.int64), r.shape)
        if k == ELEMENT_KINDS["log"]:
            u = log_use[cols]
        else:
            u = np.full(r.size, len(kind), dtype=np.int64)
            kind.append(k), col_of.append(int(cols[0])), a.append(av), h.append(hv)
            coeff.append(np.asarray(c, dtype=np.float64))
        rows.append(r)
        use.append(u)

    for name, uses in entries["normsys"].items():
        for c, s, data in uses:
            hi, lo = float(data["hi"]), float(data["lo"])
            lh, ll = math.log(hi), math.log(lo)
            bins = np.arange(offsets[c].start, offsets[c].stop)
            c4 = code4_coefficients(np.array(hi), np.array(lo))
            add(
                bins,
                s,
                start_of[name],
                ELEMENT_KINDS["code1"],
                0.5 * (lh - ll),
                0.5 * (lh + ll),
                c4,
            )
    for t in ("lumi", "normfactor", "shapefactor", "shapesys"):
        for name, uses in entries[t].items():
            for c, s, _ in uses:
                bins = np.arange(offsets[c].start, offsets[c].stop)
                i0 = start_of[name]
                col = i0 if t in ("lumi", "normfactor") else i0 + np.arange(nbins[c])
                add(bins, s, col, ELEMENT_KINDS["log"])
    for name, uses in entries["staterror"].items():
        pos = np.full(n_bins, -1, dtype=np.int64)
        pos[staterror_bins[name]] = start_of[name] + np.arange(staterror_bins[name].size)
        for c, s, _ in uses:
            bins = np.arange(offsets[c].start, offsets[c].stop)
            add(bins, s, pos[bins], ELEMENT_KINDS["log"])

    hs_rows, hs_cols, hs_sum, hs_diff = [], [], [], []
    for name, uses in entries["histosys"].items():
        for c, s, data in uses:
            what = f"{where}: channel {c!r} sample {s!r} histosys {name!r}"
            # a stretched template may go negative: pyhf only adds the differences
            hi = check_yields(data["hi_data"], what + " hi_data", nbins[c], negative=True)
            lo = check_yields(data["lo_data"], what + " lo_data", nbins[c], negative=True)
            nom = nominal[s_index[s], offsets[c]]
            up, down = hi - nom, nom - lo
            ssum, sdiff = 0.5 * (up + down), 0.5 * (up - down)
            on = np.flatnonzero((ssum != 0) | (sdiff != 0))
            hs_rows.append((offsets[c].start + on) * P + s_index[s])
            hs_cols.append(np.full(on.size, start_of[name], dtype=np.int64))
            hs_sum.append(ssum[on])
            hs_diff.append(sdiff[on])

    def cat(parts, dtype=np.float64, width=None):
        if not parts:
            return np.zeros((0,) if width is None else (0, width), dtype=dtype)
        return np.concatenate(parts).astype(dtype)

    sigma, tau, aux = np.full(K, np.nan), np.full(K, np.nan), np.full(K, np.nan)
    for p in psets:
        sl = slice(start_of[p.name], start_of[p.name] + p.n)
        if p.constraint == "normal":
            sigma[sl], aux[sl] = p.sigmas, p.auxdata
        elif p.constraint == "poisson":
            tau[sl], aux[sl] = p.factors, p.auxdata
    bounds = np.array([b for p in psets for b in p.bounds], dtype=np.float64).reshape(K, 2)
    return ModelTerms(
        rows=cat(rows, np.int64),
        use=cat(use, np.int64),
        use_kind=np.array(kind, dtype=np.int8),
        use_col=np.array(col_of, dtype=np.int64),
        use_a=np.array(a, dtype=np.float64),
        use_h=np.array(h, dtype=np.float64),
        use_coeff=np.array(coeff, dtype=np.float64).reshape(len(coeff), 6),
        hs_rows=cat(hs_rows, np.int64),
        hs_cols=cat(hs_cols, np.int64),
        hs_sum=cat(hs_sum),
        hs_diff=cat(hs_diff),
        hs_code="code4p",
        sigma=sigma,
        tau=tau,
        aux=aux,
        init=np.array([v for p in psets for v in p.init], dtype=np.float64),
        lo=bounds[:, 0].copy(),
        hi=bounds[:, 1].copy(),
        fixed=np.array([v for p in psets for v in p.fixed], dtype=bool),
    )
