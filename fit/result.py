"""The fit result, ``fitresult.h5``, and :func:`describe` (the JSON of ``wmass inspect``).

``fitresult.h5`` layout, ``format_version = 1`` (root attributes ``kind="fitresult"``,
``format_version``, ``status``, ``nll``, ``edm``, ``n_iter``, ``minimizer``, ``data``
(``"observed"`` | ``"asimov"`` | ``"toys"``), ``time_s``)::

    meta/                          provenance
    parameters/names, values, errors, constrained, group, pulls, constraints     [K]
    covariance                     [K, K]
    pois/<name>                    attrs: value, error (reported, e.g. MeV), unit, kind, offset,
                                   scale, index, x, x_error (fit parameter)
    impacts/<poi>                  [K] traditional impact of each parameter: cov[poi,k]/sqrt(cov[k,k])
    group_impacts/<poi>            attrs: group -> impact (reported units)
    global_impacts/<poi>           attrs: "data_stat", each group, "mc_stat", "total"
    gof                            attrs: chi2, ndf, p_value
    yields/<channel>/              processes, prefit [nb, P], postfit [nb, P], prefit_err [nb],
                                   postfit_err [nb], data [nb] (absent when masked);
                                   proc_prefit/proc_postfit [P] and their *_err [P]; attrs axes, masked
    toys/                          values [N, K], errors [N, K], nll [N], status [N] (utf-8)
    scan/<poi>                     x [S] (fit parameter), values [S] (reported), dnll [S]

All impacts are in the POI's reported units (MeV for ``mW``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .errors import FitInputError
from .h5file import open_fit_file, strings
from .provenance import atomic_h5, provenance, read_meta

__all__ = ["FORMAT_VERSION", "FitResult", "describe", "rounded"]

FORMAT_VERSION = 1


def rounded(value: float, error: float) -> tuple[str, str]:
    """``value`` and ``error`` as a person reads them, by the PDG rule: the three leading digits
    of the error decide 2 significant digits (100-354), 1 (355-949), or rounding up to 1000 and
    2 digits (950-999); the value to the same decimal place. The one rounding of the chain (the
    report, ``wmass inspect`` and the demo use it).

    >>> rounded(80529.4, 138.1)
    ('80530', '140')
    >>> rounded(80.3862, 0.0276)
    ('80.386', '0.028')
    >>> rounded(80301.3, 64.11), rounded(1.2345, 0.0456), rounded(5.0, 0.0972)
    (('80300', '60'), ('1.23', '0.05'), ('5.00', '0.10'))
    """
    value, error = float(value), float(error)
    if not (math.isfinite(error) and error > 0):
        return f"{value:.6g}", f"{error:.3g}"
    exp = math.floor(math.log10(error))
    three = round(error / 10 ** (exp - 2))
    if three >= 1000:
        three, exp = three // 10, exp + 1
    if three < 355:
        digits = 2
    elif three < 950:
        digits = 1
    else:
        error, exp, digits = 10.0 ** (exp + 1), exp + 1, 2
    decimals = digits - 1 - exp
    err, val = round(error, decimals), round(value, decimals)
    if decimals > 0:
        return f"{val:.{decimals}f}", f"{err:.{decimals}f}"
    return f"{val:.0f}", f"{err:.0f}"


#: characters an HDF5 link name cannot hold as they are, and their escapes (``%`` first)
_H5_ESCAPES = (("%", "%25"), ("/", "%2F"))


def h5_name(name: str) -> str:
    """``name`` (a POI, channel, group: any string from the input) as an HDF5 link name:
    ``%`` and ``/`` percent-escaped, ``.`` alone escaped; :func:`name_of` undoes it.

    >>> h5_name("eta/charge"), h5_name("."), h5_name("mW")
    ('eta%2Fcharge', '%2E', 'mW')
    >>> name_of(h5_name("50%/b")) == "50%/b"
    True
    """
    for char, escape in _H5_ESCAPES:
        name = name.replace(char, escape)
    return "%2E" if name == "." else name


def name_of(link: str) -> str:
    """The name written as HDF5 link ``link`` by :func:`h5_name`."""
    if link == "%2E":
        return "."
    for char, escape in reversed(_H5_ESCAPES):
        link = link.replace(escape, char)
    return link


@dataclass
class FitResult:
    """Everything a fit produces; ``pois[name]`` holds ``value`` and ``error`` in reported units."""

    parameters: list[str]
    values: np.ndarray
    errors: np.ndarray
    covariance: np.ndarray
    constrained: np.ndarray
    groups: np.ndarray
    pois: dict[str, dict[str, Any]]
    nll: float
    edm: float
    status: str = "converged"
    n_iter: int = 0
    minimizer: str = "trust"
    data: str = "observed"
    time: float = 0.0
    theta0: np.ndarray | None = None
    impacts: dict[str, np.ndarray] = field(default_factory=dict)
    group_impacts: dict[str, dict[str, float]] = field(default_factory=dict)
    global_impacts: dict[str, dict[str, float]] = field(default_factory=dict)
    gof: dict[str, float] = field(default_factory=dict)
    yields: dict[str, dict[str, Any]] = field(default_factory=dict)
    toys: dict[str, np.ndarray] = field(default_factory=dict)
    scans: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def pulls(self) -> np.ndarray:
        """``(x - x0) / 1`` for constrained parameters (prefit width 1), NaN for the others."""
        x0 = np.zeros_like(self.values) if self.theta0 is None else self.theta0
        return np.where(self.constrained, self.values - x0, np.nan)

    @property
    def constraints(self) -> np.ndarray:
        """Post-fit over pre-fit width (``error / 1``) for constrained parameters, NaN otherwise."""
        return np.where(self.constrained, self.errors, np.nan)

    def value(self, name: str) -> float:
        return float(self.values[self.parameters.index(name)])

    def error(self, name: str) -> float:
        return float(self.errors[self.parameters.index(name)])

    def summary(self) -> str:
        """A few lines: POIs with errors (rounded by the PDG rule, :func:`rounded`; the stored
        numbers keep full precision), NLL, EDM, status, time.

        >>> one = np.ones(1)
        >>> r = FitResult(["mW"], one, one, one, one, np.array(["POI"]), nll=1.5, edm=1e-9,
        ...               pois={"mW": {"value": 80529.4, "error": 138.1, "unit": "MeV"}})
        >>> print(r.summary().splitlines()[0])
        mW = 80530 +- 140 MeV
        """
        lines = []
        for name, p in self.pois.items():
            unit = f" {p.get('unit', '')}" if p.get("unit") else ""
            value, error = rounded(p["value"], p["error"])
            lines.append(f"{name} = {value} +- {error}{unit}")
        lines.append(
            f"nll = {self.nll:.6f}  edm = {self.edm:.3g}  status = {self.status}  "
            f"parameters = {len(self.parameters)}  time = {self.time:.2f} s ({self.minimizer})"
        )
        if self.gof:
            lines.append(
                f"saturated gof: chi2 = {self.gof['chi2']:.2f} / ndf = {self.gof['ndf']}"
                f"  p = {self.gof['p_value']:.3g}"
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------ I/O
    def write(self, path: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> Path:
        """Write ``fitresult.h5`` (layout in the module docstring), atomically, with provenance."""
        meta = dict(meta) if meta is not None else (self.meta or provenance())
        sdt = h5py.string_dtype()
        with atomic_h5(path, meta) as f:
            f.attrs.update(
                kind="fitresult",
                format_version=FORMAT_VERSION,
                status=self.status,
                nll=float(self.nll),
                edm=float(self.edm),
                n_iter=int(self.n_iter),
                minimizer=self.minimizer,
                data=self.data,
                time_s=float(self.time),
                timings=json.dumps(self.timings),
            )
            g = f.create_group("parameters")
            g.create_dataset("names", data=np.array(self.parameters, dtype=object), dtype=sdt)
            g.create_dataset("values", data=self.values)
            g.create_dataset("errors", data=self.errors)
            g.create_dataset("constrained", data=np.asarray(self.constrained, dtype=bool))
            g.create_dataset("group", data=np.asarray(self.groups).astype(object), dtype=sdt)
            g.create_dataset("pulls", data=self.pulls)
            g.create_dataset("constraints", data=self.constraints)
            if self.theta0 is not None:
                g.create_dataset("theta0", data=self.theta0)
            f.create_dataset("covariance", data=self.covariance)
            pg = f.create_group("pois")
            for name, p in self.pois.items():
                pg.create_group(h5_name(name)).attrs.update(
                    {k: v for k, v in p.items() if v is not None}
                )
            for key in ("impacts",):
                ig = f.create_group(key)
                for name, arr in getattr(self, key).items():
                    ig.create_dataset(h5_name(name), data=arr)
            for key in ("group_impacts", "global_impacts"):
                ig = f.create_group(key)
                for name, d in getattr(self, key).items():
                    ig.create_group(h5_name(name)).attrs.update({k: float(v) for k, v in d.items()})
            f.create_group("gof").attrs.update(self.gof)
            yg = f.create_group("yields")
            for ch, d in self.yields.items():
                cg = yg.create_group(h5_name(ch))
                for k, v in d.items():
                    if k in ("axes", "masked"):
                        cg.attrs[k] = json.dumps(v) if k == "axes" else bool(v)
                    elif k == "processes":
                        cg.create_dataset(k, data=np.array(v, dtype=object), dtype=sdt)
                    elif v is not None:
                        cg.create_dataset(k, data=np.asarray(v))
            if self.toys:
                tg = f.create_group("toys")
                for k, v in self.toys.items():
                    if k == "status":
                        tg.create_dataset(k, data=np.array(v, dtype=object), dtype=sdt)
                    else:
                        tg.create_dataset(k, data=np.asarray(v))
            sg = f.create_group("scan")
            for name, d in self.scans.items():
                g = sg.create_group(h5_name(name))
                for k, v in d.items():
                    g.create_dataset(k, data=np.asarray(v))
        return Path(path)

    @classmethod
    def read(cls, path: str | os.PathLike) -> FitResult:
        """Read ``fitresult.h5``; a file that is not one raises :class:`FitInputError`."""
        with open_fit_file(path, "fitresult") as f:
            return cls._read_open(f)

    @classmethod
    def _read_open(cls, f: h5py.File) -> FitResult:
        def attrs(g) -> dict[str, Any]:
            return {k: (v.item() if hasattr(v, "item") else v) for k, v in g.attrs.items()}

        g = f["parameters"]
        yields = {}
        for ch, cg in f["yields"].items():
            d: dict[str, Any] = {k: cg[k][()] for k in cg if k != "processes"}
            d["processes"] = strings(cg["processes"])
            d["axes"] = json.loads(cg.attrs["axes"]) if "axes" in cg.attrs else []
            d["masked"] = bool(cg.attrs.get("masked", False))
            yields[name_of(ch)] = d
        toys: dict[str, Any] = {}
        if "toys" in f:
            toys = {k: (strings(v) if k == "status" else v[()]) for k, v in f["toys"].items()}
        return cls(
            parameters=strings(g["names"]),
            values=g["values"][()],
            errors=g["errors"][()],
            covariance=f["covariance"][()],
            constrained=g["constrained"][()],
            groups=np.array(strings(g["group"])),
            pois={name_of(name): attrs(pg) for name, pg in f["pois"].items()},
            nll=float(f.attrs["nll"]),
            edm=float(f.attrs["edm"]),
            status=str(f.attrs["status"]),
            n_iter=int(f.attrs["n_iter"]),
            minimizer=str(f.attrs["minimizer"]),
            data=str(f.attrs["data"]),
            time=float(f.attrs["time_s"]),
            theta0=g["theta0"][()] if "theta0" in g else None,
            impacts={name_of(k): v[()] for k, v in f["impacts"].items()},
            group_impacts={name_of(k): attrs(v) for k, v in f["group_impacts"].items()},
            global_impacts={name_of(k): attrs(v) for k, v in f["global_impacts"].items()},
            gof=attrs(f["gof"]),
            yields=yields,
            toys=toys,
            scans={name_of(k): {n: v[n][()] for n in v} for k, v in f["scan"].items()},
            timings=json.loads(f.attrs.get("timings", "{}")),
            meta=read_meta(f),
        )


def describe(h5file: str | os.PathLike | h5py.File) -> dict[str, Any]:
    """The ``wmass inspect --json`` dictionary of a ``fitresult`` or ``fitinput`` file.

    Fit results follow ``analysis/schemas/inspect-fitresult.schema.json`` (``pois.mW.value`` in
    MeV); fit inputs list channels (bins, masked), processes, POIs and the systematics per group.
    ``fit`` stands alone, so it describes its own files; ``analysis.inspect.describe`` is the
    entry point for any wmass output and hands the open file here.
    """
    if not isinstance(h5file, h5py.File):
        try:
            with h5py.File(h5file, "r") as f:
                return describe(f)
        except (OSError, ValueError) as err:
            raise FitInputError(f"cannot open as HDF5: {err}", where=str(h5file)) from None
    f = h5file
    kind = f.attrs.get("kind")
    if kind == "fitresult":
        out: dict[str, Any] = {
            "kind": "fitresult",
            "meta": read_meta(f),
            "status": str(f.attrs["status"]),
            "nll": float(f.attrs["nll"]),
            "edm": float(f.attrs["edm"]),
            "data": str(f.attrs["data"]),
            "minimizer": str(f.attrs["minimizer"]),
            "time_s": float(f.attrs["time_s"]),
            "n_parameters": int(f["parameters/names"].shape[0]),
            "pois": {
                name: {
                    "value": float(g.attrs["value"]),
                    "error": float(g.attrs["error"]),
                    "unit": str(g.attrs.get("unit", "")),
                }
                for name, g in f["pois"].items()
            },
        }
        out["pois"] = {name_of(k): v for k, v in out["pois"].items()}
        if "chi2" in f["gof"].attrs:
            gof = f["gof"].attrs
            out["gof"] = {
                "chi2": float(gof["chi2"]),
                "ndf": int(gof["ndf"]),
                "p_value": float(gof["p_value"]),
            }
        out["global_impacts"] = {
            name_of(k): {n: float(v) for n, v in g.attrs.items()}
            for k, g in f["global_impacts"].items()
        }
        return out
    if kind == "fitinput":
        groups = strings(f["parameters/group"])
        counts: dict[str, int] = {}
        for grp in groups:
            counts[grp] = counts.get(grp, 0) + 1
        return {
            "kind": "fitinput",
            "meta": read_meta(f),
            "format_version": int(f.attrs["format_version"]),
            "logk_storage": str(f.attrs["logk_storage"]),
            "channels": {
                name: {"bins": int(g.attrs["nbins"]), "masked": bool(g.attrs["masked"])}
                for name, g in f["channels"].items()
            },
            "processes": strings(f["processes"]),
            "pois": json.loads(f.attrs["pois"]),
            "n_parameters": len(groups),
            "systematics_per_group": counts,
        }
    raise FitInputError(f"root attribute kind is {kind!r}, not 'fitresult' or 'fitinput'")
