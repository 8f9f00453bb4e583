"""Export a :class:`fit.FitInput` as a pyhf workspace (:func:`to_workspace`, :func:`write_workspace`).

See :func:`to_workspace` for what is exact and what is approximated; :func:`workspace_parameters`
maps our parameters to the point of the exported workspace's model.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["to_workspace", "workspace_parameters", "write_workspace"]


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
    fit_input: Any, x: Sequence[float], model: Any, *, unconstrained_width: float = 100.0
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
    from ..provenance import atomic_write_text, provenance

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spec = to_workspace(fit_input, **options)
    meta = dict(meta) if meta is not None else provenance(args=options)
    for target, payload in ((path, spec), (path.with_name(path.name + ".provenance.json"), meta)):
        atomic_write_text(target, json.dumps(payload))
    return path
