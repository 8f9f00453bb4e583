"""The fit input of one or several channels: pseudo-data, processes, POIs and nuisances into
a :class:`fit.FitInput` (:func:`build_fit_input`), and the ``fitinput.log`` summary
(:func:`summary_text`); the channels come from
:func:`~analysis.postprocess.channel.channel_setup`.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import hist
import numpy as np

from analysis.postprocess.channel import ChannelSetup
from analysis.postprocess.groups import systematic_group
from processors.errors import ConfigError

__all__ = ["build_fit_input", "summary_text"]


def _pseudodata(setup: ChannelSetup, pseudodata: str | None) -> np.ndarray:
    if pseudodata in (None, "observed", "data"):
        return setup.data
    total = sum(setup.nominal.values())
    if pseudodata == "asimov":
        return total
    if pseudodata not in setup.variations:
        known = sorted(setup.variations)
        raise ConfigError(
            "--pseudodata",
            f"no variation {pseudodata!r}; choose asimov or a label, e.g. {known[:5]}",
        )
    for p, varied in setup.variations[pseudodata].items():
        total = total - setup.nominal[p] + varied
    return total


def _hist(axes: list[Any], values: np.ndarray, variance: np.ndarray | None = None) -> hist.Hist:
    h = hist.Hist(*axes, storage=hist.storage.Weight() if variance is not None else None)
    if variance is not None:
        h[...] = np.stack([values, variance], axis=-1)
    else:
        h[...] = values
    return h


def build_fit_input(
    setups: list[ChannelSetup],
    *,
    pseudodata: str | None = None,
    signal: tuple[str, ...] = ("Wmunu", "Zmumu"),
) -> tuple[Any, str]:
    """The :class:`fit.FitInput` of one or several channels and a text summary of it.

    ``pseudodata``: ``None`` (observed data), ``"asimov"`` (the sum of the nominal
    predictions) or a variation label (e.g. ``massShift50MeV``: the nominal with that
    variation applied to every process that has it).
    """
    from fit.builder import FitInputBuilder

    b = FitInputBuilder()
    for s in setups:
        b.add_channel(s.name, _hist(s.axes, _pseudodata(s, pseudodata)))
    for s in setups:
        for p, vals in s.nominal.items():
            b.add_process(s.name, p, _hist(s.axes, vals, s.sumw2.get(p)), signal=p in signal)
    pois: dict[str, tuple[float, float, str]] = {}
    for s in setups:
        pois.update(s.pois)
    shapes: dict[str, dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]] = {}
    for s in setups:
        for nname, per_proc in s.shapes.items():
            for p, (up, down) in per_proc.items():
                shapes.setdefault(nname, {})[(s.name, p)] = (up.ravel(), down.ravel())
    for poi, (offset, scale, unit) in pois.items():
        b.add_poi(poi, variations=shapes.pop(poi), offset=offset, scale=scale, unit=unit)
    for nname, variations in shapes.items():
        b.add_systematic(nname, variations, group=systematic_group(nname))
    norms: dict[str, tuple[dict[tuple[str, str], float], str]] = {}
    for s in setups:
        for nname, procs, kappa, constraint in s.norms:
            entry = norms.setdefault(nname, ({}, constraint))
            for p in procs:
                entry[0][(s.name, p)] = kappa
    for nname, (variations, constraint) in norms.items():
        b.add_systematic(
            nname, variations, group=_norm_group(nname), constraint=constraint, kind="lnN"
        )
    fit_input = b.build()
    return fit_input, summary_text(fit_input, setups, pseudodata)


def _norm_group(name: str) -> str:
    if name in ("norm_W", "norm_Z"):
        return "Signal normalisation"
    return systematic_group(name)


def summary_text(fit_input: Any, setups: list[ChannelSetup], pseudodata: str | None) -> str:
    """The ``.log`` summary: channels, processes and yields, nuisances per group."""
    lines = ["wmass setup-fit", "=" * 60]
    for s in setups:
        ch = fit_input.channel(s.name)
        lines.append(
            f"channel {s.name} ({s.analysis}): {ch.nbins} bins "
            f"[{' x '.join(f'{ax.name} {len(ax)}' for ax in s.axes)}], lumi {s.lumi_pb} /pb"
        )
        data = fit_input.data[ch.slice].sum()
        lines.append(f"  data ({pseudodata or 'observed'}): {data:14.1f}")
        total = 0.0
        for p, vals in s.nominal.items():
            lines.append(f"  {p:<12} {vals.sum():14.1f}")
            total += vals.sum()
        lines.append(f"  {'total':<12} {total:14.1f}")
        for note in s.notes:
            lines.append(f"  note: {note}")
        for k, v in s.closure.items():
            if k.startswith(("chi2_", "ndf_")):
                continue
            lines.append(f"  closure {k}: {v:.4g}")
        for k in [k[5:] for k in s.closure if k.startswith("chi2_")]:
            chi2, ndf = s.closure[f"chi2_{k}"], s.closure[f"ndf_{k}"]
            lines.append(
                f"  nonprompt closure vs QCD simulation in {k}: chi2/ndf = {chi2:.1f}/{ndf:.0f}"
            )
    lines.append("-" * 60)
    lines.append(f"{'systematic group':<32}{'nuisances':>10}")
    counts = Counter(str(g) for g in fit_input.groups)
    for group, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        lines.append(f"{group:<32}{n:>10}")
    lines.append(f"{'total parameters':<32}{fit_input.nparams:>10}")
    pois = ", ".join(
        f"{p.name} = {p.offset:g} + {p.scale:g} * theta {p.unit}" for p in fit_input.pois
    )
    lines.append(f"POIs: {pois}")
    return "\n".join(lines) + "\n"
