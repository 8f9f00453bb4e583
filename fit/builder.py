"""Build a :class:`fit.writer.FitInput` from ``hist`` objects (or arrays), channel by channel.

The builder checks every template as it comes (shape, finiteness, sign) and names the
channel, process and variation at fault; :meth:`FitInputBuilder.build` assembles the sparse
log-kappa matrices (see :mod:`fit.writer` for the model they define).

>>> import hist, numpy as np
>>> ax = hist.axis.Regular(4, 0, 4, name="x")
>>> b = FitInputBuilder()
>>> b.add_channel("sr", hist.Hist(ax, data=np.array([10.0, 20, 30, 40])))
>>> b.add_process("sr", "sig", hist.Hist(ax, data=np.array([10.0, 20, 30, 40])), signal=True)
>>> b.add_poi("mu")
>>> b.add_norm("lumi", ["sig"], 1.02, group="luminosity")
>>> fi = b.build()
>>> fi.parameters, fi.nbins, fi.nprocs
(['mu', 'lumi'], 4, 1)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from .errors import FitInputError
from .writer import POI, Channel, FitInput

__all__ = ["FitInputBuilder"]


def _values(h: Any, what: str) -> np.ndarray:
    """Flat float64 bin contents of a ``hist.Hist`` (no flow) or of an array."""
    vals = h.values(flow=False) if hasattr(h, "values") else np.asarray(h)
    return np.asarray(vals, dtype=np.float64).ravel()


def _sumw2(h: Any) -> np.ndarray | None:
    """Sum of squared weights of a hist with ``Weight`` storage, else None."""
    if getattr(getattr(h, "storage_type", None), "__name__", "") != "Weight":
        return None
    var = h.variances(flow=False)
    return None if var is None else np.asarray(var, dtype=np.float64).ravel()


def _axes(h: Any) -> tuple[dict, ...]:
    if not hasattr(h, "axes"):
        return ()
    out = []
    for i, ax in enumerate(h.axes):
        name = getattr(ax, "name", "") or f"axis{i}"
        if getattr(ax, "traits", None) is not None and ax.traits.discrete:
            out.append({"name": name, "categories": [str(c) for c in ax]})
        else:
            out.append({"name": name, "edges": [float(e) for e in ax.edges]})
    return tuple(out)


class FitInputBuilder:
    """Build a :class:`FitInput` from ``hist`` objects (or arrays), channel by channel.

    Order of calls: channels, then processes, then POIs and systematics in any order.
    ``variations`` map ``(channel, process)`` to an up template, or ``(up, down)``; for
    ``kind="lnN"`` to a kappa or ``(kappa_up, kappa_down)`` (``down`` meaning the yield at
    ``theta = -1`` is ``kappa_down * nominal``). Up/down ratios are clipped to
    ``[1/kappa_clip, kappa_clip]`` (non-positive variations to the floor); bins with a zero
    nominal carry no variation.
    """

    def __init__(self, kappa_clip: float = 10.0) -> None:
        self.kappa_clip = float(kappa_clip)
        self._channels: dict[str, dict[str, Any]] = {}
        self._processes: list[str] = []
        self._signal: dict[str, bool] = {}
        self._params: list[dict[str, Any]] = []
        self._pois: list[POI] = []

    # -------------------------------------------------------------- structure
    def add_channel(
        self, name: str, data: Any | None, *, masked: bool = False, nbins: int | None = None
    ) -> None:
        """A channel with its observed histogram (``None`` for a masked channel)."""
        if name in self._channels:
            raise FitInputError(f"channel {name!r} added twice")
        if data is None and not masked:
            raise FitInputError("an unmasked channel needs data", where=f"channel {name!r}")
        values = None if data is None else _values(data, "data")
        n = nbins if nbins is not None else (None if values is None else values.size)
        self._channels[name] = {
            "data": values,
            "masked": masked,
            "nbins": n,
            "axes": _axes(data) if data is not None else (),
            "nominal": {},
            "sumw2": {},
        }

    def add_process(self, channel: str, name: str, nominal: Any, *, signal: bool = False) -> None:
        """The nominal template of process ``name`` in ``channel`` (sumw2 from Weight storage)."""
        ch = self._chan(channel)
        vals = _values(nominal, "nominal")
        if ch["nbins"] is None:
            ch["nbins"] = vals.size
            ch["axes"] = _axes(nominal)
        if vals.size != ch["nbins"]:
            raise FitInputError(
                f"has {vals.size} bins, the channel has {ch['nbins']}",
                where=f"channel {channel!r} process {name!r}",
            )
        ch["nominal"][name] = vals
        w2 = _sumw2(nominal)
        if w2 is not None:
            ch["sumw2"][name] = w2
        if name not in self._processes:
            self._processes.append(name)
        self._signal[name] = self._signal.get(name, False) or signal

    def add_poi(
        self,
        name: str,
        *,
        processes: Sequence[str] | None = None,
        variations: Mapping[tuple[str, str], Any] | None = None,
        offset: float = 0.0,
        scale: float = 1.0,
        unit: str = "",
    ) -> None:
        """A POI: a signal strength on ``processes`` (default: the signal processes), or, with
        ``variations``, an unconstrained shape parameter reported as ``offset + scale * x``.

        >>> b = FitInputBuilder()  # the W mass from the +-100 MeV templates:
        >>> # b.add_poi("mW", variations={("sr", "Wmunu"): (h_up, h_down)},
        >>> #           offset=80379.0, scale=100.0, unit="MeV")
        """
        if variations is not None:
            self._params.append(
                dict(name=name, variations=variations, kind="shape", constraint="none", group="POI")
            )
            self._pois.append(POI(name, "nuisance", float(offset), float(scale), unit))
        else:
            procs = list(processes) if processes is not None else None
            self._params.append(
                dict(name=name, processes=procs, kind="norm", constraint="none", group="POI")
            )
            self._pois.append(POI(name, "norm", float(offset), float(scale), unit))

    def add_systematic(
        self,
        name: str,
        variations: Mapping[tuple[str, str], Any],
        *,
        group: str | None = None,
        constraint: str = "gaussian",
        kind: str = "shape",
    ) -> None:
        """A nuisance from up (or up, down) templates per (channel, process); see the class doc."""
        if kind not in ("shape", "lnN"):
            raise FitInputError(
                f"kind {kind!r}: choose 'shape' or 'lnN'", where=f"parameter {name!r}"
            )
        self._params.append(
            dict(
                name=name,
                variations=variations,
                kind=kind,
                constraint=constraint,
                group=group or name,
            )
        )

    def add_norm(
        self,
        name: str,
        processes: Sequence[str],
        kappa: float | tuple[float, float],
        *,
        channels: Sequence[str] | None = None,
        group: str | None = None,
        constraint: str = "gaussian",
    ) -> None:
        """A log-normal normalisation ``kappa^theta`` on ``processes`` in all (or ``channels``)."""
        chans = list(channels) if channels is not None else list(self._channels)
        variations = {
            (c, p): kappa for c in chans for p in processes if p in self._channels[c]["nominal"]
        }
        if not variations:
            raise FitInputError(
                f"none of {list(processes)} is in {chans}", where=f"parameter {name!r}"
            )
        self.add_systematic(name, variations, group=group, constraint=constraint, kind="lnN")

    # -------------------------------------------------------------- build
    def _chan(self, channel: str) -> dict[str, Any]:
        try:
            return self._channels[channel]
        except KeyError:
            raise FitInputError(f"unknown channel {channel!r}; add_channel first") from None

    def build(self, *, storage: str = "sparse") -> FitInput:
        """Assemble and validate the :class:`FitInput` (errors name the culprit)."""
        if not self._channels:
            raise FitInputError("no channels")
        procs = self._processes
        P = len(procs)
        channels, first = [], 0
        for name, ch in self._channels.items():
            if ch["nbins"] is None:
                raise FitInputError("has no data and no process", where=f"channel {name!r}")
            channels.append(Channel(name, first, ch["nbins"], ch["masked"], tuple(ch["axes"])))
            first += ch["nbins"]
        B = first
        nominal = np.zeros((B, P))
        data = np.zeros(B)
        have_w2 = any(ch["sumw2"] for ch in self._channels.values())
        sumw2 = np.zeros((B, P)) if have_w2 else None
        for c, (name, ch) in zip(channels, self._channels.items(), strict=True):
            if ch["data"] is not None and not ch["masked"]:
                if ch["data"].size != c.nbins:
                    raise FitInputError(
                        f"data has {ch['data'].size} bins, processes {c.nbins}",
                        where=f"channel {name!r}",
                    )
                data[c.slice] = ch["data"]
            for p, vals in ch["nominal"].items():
                nominal[c.slice, procs.index(p)] = vals
            for p, w2 in ch["sumw2"].items():
                sumw2[c.slice, procs.index(p)] = w2

        rows_u, cols_u, vals_u = [], [], []
        rows_d, cols_d, vals_d = [], [], []
        asymmetric = False
        names, constraints, groups = [], [], []
        cmap = {c.name: c for c in channels}
        lo, hi = -np.log(self.kappa_clip), np.log(self.kappa_clip)
        for k, par in enumerate(self._params):
            names.append(par["name"])
            constraints.append(par["constraint"])
            groups.append(par["group"])
            where = f"parameter {par['name']!r}"
            if par["kind"] == "norm":
                sel = par["processes"] or [p for p in procs if self._signal[p]]
                if not sel:
                    raise FitInputError(
                        "no processes (and no signal process) to scale", where=where
                    )
                for p in sel:
                    if p not in procs:
                        raise FitInputError(f"unknown process {p!r}", where=where)
                    j = procs.index(p)
                    b = np.flatnonzero(nominal[:, j] > 0)
                    rows_u.append(b * P + j)
                    cols_u.append(np.full(b.size, k))
                    vals_u.append(np.ones(b.size))
                continue
            for key, var in par["variations"].items():
                try:
                    cname, p = key
                except (TypeError, ValueError):
                    raise FitInputError(
                        f"variation key {key!r} is not (channel, process)", where=where
                    ) from None
                if cname not in cmap:
                    raise FitInputError(f"unknown channel {cname!r}", where=where)
                if p not in procs:
                    raise FitInputError(f"unknown process {p!r}", where=where)
                c, j = cmap[cname], procs.index(p)
                nom = nominal[c.slice, j]
                up, down = var if isinstance(var, tuple) else (var, None)
                if par["kind"] == "lnN":
                    u = np.full(c.nbins, float(up))
                    d = None if down is None else np.full(c.nbins, float(down))
                    u_ratio, d_ratio = u, d
                else:
                    u_ratio = self._ratio(_values(up, "up"), nom, c, where + f" process {p!r} (up)")
                    d_ratio = (
                        None
                        if down is None
                        else self._ratio(
                            _values(down, "down"), nom, c, where + f" process {p!r} (down)"
                        )
                    )
                for r, what in ((u_ratio, "up"), (d_ratio, "down")):
                    if r is not None and (~np.isfinite(r)).any():
                        raise FitInputError(
                            f"{what} variation is not finite", where=where + f" process {p!r}"
                        )
                u = np.clip(np.log(np.maximum(u_ratio, 1.0 / self.kappa_clip)), lo, hi)
                d = None
                if d_ratio is not None:
                    d = np.clip(np.log(np.maximum(d_ratio, 1.0 / self.kappa_clip)), lo, hi)
                    asymmetric = True
                on = nom > 0
                b = np.flatnonzero(on)
                rows = (c.first_bin + b) * P + j
                rows_u.append(rows)
                cols_u.append(np.full(b.size, k))
                vals_u.append(u[on])
                rows_d.append(rows)
                cols_d.append(np.full(b.size, k))
                vals_d.append(-u[on] if d is None else d[on])
        K = len(names)

        def csr(rows, cols, vals):
            if not rows:
                return sp.csr_array((B * P, K))
            m = sp.coo_array(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                shape=(B * P, K),
            ).tocsr()
            m.sum_duplicates()
            return m

        up = csr(rows_u, cols_u, vals_u)
        down = None
        if asymmetric:
            # norm columns are symmetric: their down is -up
            norm_cols = [k for k, par in enumerate(self._params) if par["kind"] == "norm"]
            down = csr(rows_d, cols_d, vals_d)
            if norm_cols:
                down = down + _select_cols(-up, norm_cols)
        return FitInput(
            channels=channels,
            processes=list(procs),
            signal=np.array([self._signal[p] for p in procs]),
            data=data,
            nominal=nominal,
            parameters=names,
            constraints=np.array(constraints),
            groups=np.array(groups),
            logk_up=up,
            logk_down=down,
            sumw2=sumw2,
            pois=list(self._pois),
            storage=storage,
        )

    def _ratio(self, var: np.ndarray, nom: np.ndarray, c: Channel, where: str) -> np.ndarray:
        if var.size != nom.size:
            raise FitInputError(
                f"has {var.size} bins, the channel {c.name!r} has {nom.size}", where=where
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(nom > 0, var / np.where(nom > 0, nom, 1.0), 1.0)


def _select_cols(m: sp.csr_array, cols: list[int]) -> sp.csr_array:
    """``m`` with every column outside ``cols`` zeroed."""
    keep = np.zeros(m.shape[1])
    keep[cols] = 1.0
    return sp.csr_array(m @ sp.diags_array(keep))
