"""The fit input: an in-memory binned model and ``fitinput.h5`` (its builder: :mod:`fit.builder`).

The model (combinetf's, see the seminar) predicts in bin ``b`` of an unmasked channel

    n_b(x) = sum_p nominal[b, p] * exp( sum_k logk_k[b, p](x_k) )

with Poisson data, Gaussian constraints ``(x_k - x0_k)^2 / 2`` on constrained parameters and an
optional Barlow-Beeston-lite parameter per bin (from ``sumw2``). Every parameter (signal strength,
W-mass shift, nuisance) enters through one column ``k`` of the log-kappa matrix:

- a symmetric variation: ``logk_k = x_k * u`` with ``u = log(up / nominal)``;
- an asymmetric variation (``logk_down`` given, ``d = log(down / nominal)``): combinetf's smooth
  interpolation ``logk_k = x_k * (a + alpha(x_k) * h)``, ``a = (u - d) / 2``, ``h = (u + d) / 2``,
  ``alpha`` a quintic step from -1 (x <= -1/2) to +1 (x >= 1/2), so ``x = +-1`` gives exactly the
  up / down templates;
- a signal strength ``mu`` of kind ``"norm"``: column ``1`` on its processes and ``x = log(mu)``
  (so ``mu > 0``; the reported value is ``exp(x)``).

POIs are parameters with a reporting transform: ``value = offset + scale * f(x)`` with ``f = exp``
for ``kind="norm"`` and ``f = identity`` for ``kind="nuisance"`` (the W mass: an unconstrained
nuisance on the +-100 MeV variation, ``offset=80379, scale=100, unit="MeV"``).

Masked channels contribute no likelihood term, only predictions (their data is ignored).

``fitinput.h5`` layout, ``format_version = 1`` (root attributes ``kind="fitinput"``,
``format_version``, ``logk_storage`` = ``"dense"`` | ``"sparse"``, ``symmetric``)::

    meta/                       provenance (fit.provenance.write_meta)
    channels/<name>             attrs: index, masked, first_bin, nbins, axes (JSON list of
                                {"name", "edges" or "categories"}); dataset data [nbins]
                                (absent for a masked channel)
    processes                   [P] names (utf-8); signal [P] bool
    nominal                     [B, P] float64   (B = all bins of all channels, in channel order)
    sumw2                       [B, P] float64   (optional: enables Barlow-Beeston-lite)
    parameters/names            [K] names; constraint [K] ("gaussian" | "none"); group [K]
    pois                        attr "pois": JSON list of {"name", "kind", "offset", "scale", "unit"}
    logk                        dense: [B, P, K] (symmetric) or [B, P, 2, K] (0 = up, 1 = down)
    logk_sparse/{row,col,up[,down]}  sparse: COO with row = b * P + p

>>> import tempfile
>>> import numpy as np
>>> from fit.builder import FitInputBuilder
>>> b = FitInputBuilder()
>>> b.add_channel("sr", np.array([12.0, 20.0]))
>>> b.add_process("sr", "sig", np.array([10.0, 20.0]), signal=True)
>>> b.add_poi("mu")
>>> path = b.build().write(Path(tempfile.mkdtemp()) / "fitinput.h5", meta={})
>>> back = FitInput.read(path)
>>> back.parameters, back.nominal.tolist(), back.data.tolist()
(['mu'], [[10.0], [20.0]], [12.0, 20.0])
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.sparse as sp

from .errors import FitInputError
from .h5file import open_fit_file, strings
from .provenance import atomic_h5, provenance, read_meta

__all__ = [
    "FORMAT_VERSION",
    "POI",
    "Channel",
    "FitInput",
]

FORMAT_VERSION = 1
CONSTRAINTS = ("gaussian", "none")


@dataclass(frozen=True)
class Channel:
    """A channel: a contiguous range of bins of the model, with its axes for reshaping."""

    name: str
    first_bin: int
    nbins: int
    masked: bool = False
    axes: tuple[dict, ...] = ()

    @property
    def slice(self) -> slice:
        return slice(self.first_bin, self.first_bin + self.nbins)

    @property
    def shape(self) -> tuple[int, ...]:
        """The histogram shape of the channel (``(nbins,)`` when the axes are unknown)."""
        dims = []
        for ax in self.axes:
            dims.append(len(ax["edges"]) - 1 if "edges" in ax else len(ax["categories"]))
        return tuple(dims) if dims and int(np.prod(dims)) == self.nbins else (self.nbins,)


@dataclass(frozen=True)
class POI:
    """A parameter of interest and how it is reported: ``offset + scale * f(x)``.

    ``kind="norm"``: a signal strength, ``f = exp`` (the fit parameter is ``log(mu)``);
    ``kind="nuisance"``: an unconstrained parameter, ``f = identity`` (e.g. the W mass in MeV).
    """

    name: str
    kind: str = "norm"
    offset: float = 0.0
    scale: float = 1.0
    unit: str = ""

    def report(self, x: float, sigma_x: float) -> tuple[float, float]:
        """The reported value and its (linearised) error from the fit parameter ``x``."""
        if self.kind == "norm":
            mu = float(np.exp(x))
            return self.offset + self.scale * mu, abs(self.scale) * mu * sigma_x
        return self.offset + self.scale * x, abs(self.scale) * sigma_x

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "offset": self.offset,
            "scale": self.scale,
            "unit": self.unit,
        }


@dataclass
class FitInput:
    """A binned profile-likelihood model (see the module docstring for the formulas).

    ``logk_up`` / ``logk_down``: ``scipy.sparse.csr_array`` of shape ``[B * P, K]`` (row
    ``b * P + p``); ``logk_down is None`` means symmetric (down = -up).
    """

    channels: list[Channel]
    processes: list[str]
    signal: np.ndarray
    data: np.ndarray
    nominal: np.ndarray
    parameters: list[str]
    constraints: np.ndarray
    groups: np.ndarray
    logk_up: sp.csr_array
    logk_down: sp.csr_array | None = None
    sumw2: np.ndarray | None = None
    pois: list[POI] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    storage: str = "sparse"

    def __post_init__(self) -> None:
        self.signal = np.asarray(self.signal, dtype=bool)
        self.data = np.asarray(self.data, dtype=np.float64)
        self.nominal = np.asarray(self.nominal, dtype=np.float64)
        self.constraints = np.asarray(self.constraints, dtype=object).astype(str)
        self.groups = np.asarray(self.groups, dtype=object).astype(str)
        self.logk_up = sp.csr_array(self.logk_up, dtype=np.float64)
        if self.logk_down is not None:
            self.logk_down = sp.csr_array(self.logk_down, dtype=np.float64)
        if self.sumw2 is not None:
            self.sumw2 = np.asarray(self.sumw2, dtype=np.float64)
        self.validate()

    # ------------------------------------------------------------------ shape
    @property
    def nbins(self) -> int:
        return int(self.nominal.shape[0])

    @property
    def nprocs(self) -> int:
        return int(self.nominal.shape[1])

    @property
    def nparams(self) -> int:
        return len(self.parameters)

    @property
    def symmetric(self) -> bool:
        return self.logk_down is None

    @property
    def bin_mask(self) -> np.ndarray:
        """True for bins that enter the likelihood (bins of unmasked channels)."""
        mask = np.zeros(self.nbins, dtype=bool)
        for ch in self.channels:
            mask[ch.slice] = not ch.masked
        return mask

    def channel(self, name: str) -> Channel:
        for ch in self.channels:
            if ch.name == name:
                return ch
        raise FitInputError(f"no channel {name!r}; channels: {[c.name for c in self.channels]}")

    def index(self, parameter: str) -> int:
        """The column of ``parameter``."""
        try:
            return self.parameters.index(parameter)
        except ValueError:
            raise FitInputError(f"no parameter {parameter!r}") from None

    def poi(self, name: str) -> POI:
        for p in self.pois:
            if p.name == name:
                return p
        raise FitInputError(f"no POI {name!r}; POIs: {[p.name for p in self.pois]}")

    def where(self, b: int, p: int | None = None) -> str:
        """A human name for global bin ``b`` (and process ``p``): channel, local bin, indices."""
        for ch in self.channels:
            if ch.first_bin <= b < ch.first_bin + ch.nbins:
                local = b - ch.first_bin
                idx = np.unravel_index(local, ch.shape)
                names = [a.get("name", f"axis{i}") for i, a in enumerate(ch.axes)]
                coords = (
                    ", ".join(f"{n}={int(i)}" for n, i in zip(names, idx, strict=True))
                    if len(names) == len(idx)
                    else ""
                )
                proc = f" process {self.processes[p]!r}" if p is not None else ""
                return f"channel {ch.name!r}{proc} bin {local}" + (f" ({coords})" if coords else "")
        return f"bin {b}"

    def logk_dense(self) -> np.ndarray:
        """Dense log-kappa ``[B, P, K]`` (symmetric) or ``[B, P, 2, K]``; for small models."""
        up = self.logk_up.toarray().reshape(self.nbins, self.nprocs, self.nparams)
        if self.symmetric:
            return up
        down = self.logk_down.toarray().reshape(self.nbins, self.nprocs, self.nparams)
        return np.stack([up, down], axis=2)

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`FitInputError` naming the culprit if the model is unusable."""
        B, P, K = self.nbins, self.nprocs, self.nparams
        if self.nominal.ndim != 2 or len(self.processes) != P:
            raise FitInputError(f"nominal has shape {self.nominal.shape}, expected [bins, {P}]")
        if self.data.shape != (B,):
            raise FitInputError(f"data has shape {self.data.shape}, expected ({B},)")
        if sum(ch.nbins for ch in self.channels) != B:
            raise FitInputError("channel bin counts do not add up to the nominal's bins")
        if self.logk_up.shape != (B * P, K):
            raise FitInputError(f"logk has shape {self.logk_up.shape}, expected ({B * P}, {K})")
        if self.logk_down is not None and self.logk_down.shape != (B * P, K):
            raise FitInputError(f"logk_down has shape {self.logk_down.shape}")
        if len(set(self.parameters)) != K:
            dup = sorted({n for n in self.parameters if self.parameters.count(n) > 1})
            raise FitInputError(f"duplicate parameter names {dup}")
        for arr, what in ((self.constraints, "constraints"), (self.groups, "groups")):
            if arr.shape != (K,):
                raise FitInputError(f"{what} has shape {arr.shape}, expected ({K},)")
        for k, c in enumerate(self.constraints):
            if c not in CONSTRAINTS:
                raise FitInputError(
                    f"unknown constraint {c!r} (choose {CONSTRAINTS})",
                    where=f"parameter {self.parameters[k]!r}",
                )
        bad = ~np.isfinite(self.nominal) | (self.nominal < 0)
        if bad.any():
            b, p = np.argwhere(bad)[0]
            raise FitInputError(
                f"nominal yield is {self.nominal[b, p]!r} (must be finite and >= 0)",
                where=self.where(b, p),
            )
        mask = self.bin_mask
        bad = mask & (~np.isfinite(self.data) | (self.data < 0))
        if bad.any():
            b = int(np.flatnonzero(bad)[0])
            raise FitInputError(
                f"data is {self.data[b]!r} (must be finite and >= 0)", where=self.where(b)
            )
        empty = mask & (self.nominal.sum(axis=1) <= 0) & (self.data > 0)
        if empty.any():
            b = int(np.flatnonzero(empty)[0])
            raise FitInputError(
                f"data {self.data[b]:g} but the prediction is 0 (no process has a yield)",
                where=self.where(b),
            )
        if self.sumw2 is not None:
            if self.sumw2.shape != (B, P):
                raise FitInputError(f"sumw2 has shape {self.sumw2.shape}, expected ({B}, {P})")
            bad = ~np.isfinite(self.sumw2) | (self.sumw2 < 0)
            if bad.any():
                b, p = np.argwhere(bad)[0]
                raise FitInputError(f"sumw2 is {self.sumw2[b, p]!r}", where=self.where(b, p))
        for mat, what in ((self.logk_up, "up"), (self.logk_down, "down")):
            if mat is None:
                continue
            coo = mat.tocoo()
            bad = ~np.isfinite(coo.data)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                b, p = divmod(int(coo.row[i]), P)
                raise FitInputError(
                    f"log-kappa ({what}) is {coo.data[i]!r}",
                    where=f"parameter {self.parameters[int(coo.col[i])]!r}, {self.where(b, p)}",
                )
        # a parameter with no effect on the likelihood is singular unless constrained
        active = np.repeat(mask, P)
        up_eff = abs(self.logk_up[active]).sum(axis=0)
        if self.logk_down is not None:
            up_eff = up_eff + abs(self.logk_down[active]).sum(axis=0)
        for k in np.flatnonzero((np.asarray(up_eff).ravel() == 0) & (self.constraints == "none")):
            raise FitInputError(
                "has no effect on any unmasked bin and no constraint: the model is singular",
                where=f"parameter {self.parameters[k]!r}",
            )
        for poi in self.pois:
            if poi.name not in self.parameters:
                raise FitInputError(f"POI {poi.name!r} is not a parameter")
            if poi.kind not in ("norm", "nuisance"):
                raise FitInputError(f"POI kind {poi.kind!r} (choose 'norm' or 'nuisance')")

    # ------------------------------------------------------------------ I/O
    def write(
        self,
        path: str | os.PathLike,
        *,
        storage: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> Path:
        """Write ``fitinput.h5`` (layout in the module docstring), atomically, with provenance."""
        storage = storage or self.storage
        if storage not in ("dense", "sparse"):
            raise FitInputError(f"storage {storage!r}: choose 'dense' or 'sparse'")
        meta = dict(meta) if meta is not None else provenance(args={"storage": storage})
        str_dt = h5py.string_dtype()
        with atomic_h5(path, meta) as f:
            f.attrs.update(
                kind="fitinput",
                format_version=FORMAT_VERSION,
                logk_storage=storage,
                symmetric=self.symmetric,
            )
            chans = f.create_group("channels")
            for i, ch in enumerate(self.channels):
                g = chans.create_group(ch.name)
                g.attrs.update(
                    index=i,
                    masked=ch.masked,
                    first_bin=ch.first_bin,
                    nbins=ch.nbins,
                    axes=json.dumps(list(ch.axes)),
                )
                if not ch.masked:
                    g.create_dataset("data", data=self.data[ch.slice])
            f.create_dataset("processes", data=np.array(self.processes, dtype=object), dtype=str_dt)
            f.create_dataset("signal", data=self.signal)
            f.create_dataset("nominal", data=self.nominal, compression="gzip", shuffle=True)
            if self.sumw2 is not None:
                f.create_dataset("sumw2", data=self.sumw2, compression="gzip", shuffle=True)
            pg = f.create_group("parameters")
            pg.create_dataset("names", data=np.array(self.parameters, dtype=object), dtype=str_dt)
            pg.create_dataset("constraint", data=self.constraints.astype(object), dtype=str_dt)
            pg.create_dataset("group", data=self.groups.astype(object), dtype=str_dt)
            f.attrs["pois"] = json.dumps([p.to_dict() for p in self.pois])
            if storage == "dense":
                f.create_dataset(
                    "logk",
                    data=self.logk_dense(),
                    compression="gzip",
                    shuffle=True,
                    chunks=True,
                )
            else:
                g = f.create_group("logk_sparse")
                up = self.logk_up.tocoo()
                g.create_dataset("row", data=up.row.astype(np.int64), compression="gzip")
                g.create_dataset("col", data=up.col.astype(np.int32), compression="gzip")
                g.create_dataset("up", data=up.data, compression="gzip")
                if not self.symmetric:
                    # same pattern for up and down: take down's values on up's pattern (+ extras)
                    down = self.logk_down.tocoo()
                    g.create_dataset("down_row", data=down.row.astype(np.int64), compression="gzip")
                    g.create_dataset("down_col", data=down.col.astype(np.int32), compression="gzip")
                    g.create_dataset("down", data=down.data, compression="gzip")
        return Path(path)

    @classmethod
    def read(cls, path: str | os.PathLike) -> FitInput:
        """Read ``fitinput.h5``; a file that is not one raises :class:`FitInputError`."""
        with open_fit_file(path, "fitinput") as f:
            version = int(f.attrs.get("format_version", -1))
            if version != FORMAT_VERSION:
                raise FitInputError(
                    f"format_version {version} (this code reads {FORMAT_VERSION})", where=str(path)
                )
            return cls._read_open(f)

    @classmethod
    def _read_open(cls, f: h5py.File) -> FitInput:
        processes = strings(f["processes"])
        nominal = f["nominal"][()]
        B, P = nominal.shape
        chans = sorted(f["channels"].items(), key=lambda kv: int(kv[1].attrs["index"]))
        channels, data = [], np.zeros(B)
        for name, g in chans:
            ch = Channel(
                name=name,
                first_bin=int(g.attrs["first_bin"]),
                nbins=int(g.attrs["nbins"]),
                masked=bool(g.attrs["masked"]),
                axes=tuple(json.loads(g.attrs["axes"])),
            )
            channels.append(ch)
            if not ch.masked:
                data[ch.slice] = g["data"][()]
        names = strings(f["parameters/names"])
        K = len(names)
        storage = str(f.attrs["logk_storage"])
        if storage == "dense":
            dense = f["logk"][()]
            if f.attrs["symmetric"]:
                up, down = sp.csr_array(dense.reshape(B * P, K)), None
            else:
                up = sp.csr_array(dense[:, :, 0, :].reshape(B * P, K))
                down = sp.csr_array(dense[:, :, 1, :].reshape(B * P, K))
        else:
            g = f["logk_sparse"]
            up = sp.csr_array((g["up"][()], (g["row"][()], g["col"][()])), shape=(B * P, K))
            down = None
            if "down" in g:
                down = sp.csr_array(
                    (g["down"][()], (g["down_row"][()], g["down_col"][()])), shape=(B * P, K)
                )
        return cls(
            channels=channels,
            processes=processes,
            signal=f["signal"][()],
            data=data,
            nominal=nominal,
            parameters=names,
            constraints=np.array(strings(f["parameters/constraint"])),
            groups=np.array(strings(f["parameters/group"])),
            logk_up=up,
            logk_down=down,
            sumw2=f["sumw2"][()] if "sumw2" in f else None,
            pois=[POI(**d) for d in json.loads(f.attrs["pois"])],
            meta=read_meta(f),
            storage=storage,
        )
