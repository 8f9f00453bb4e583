"""Nuisance names as a physicist reads them: bin indices become the physical ranges.

The fit names a nuisance after the bin it acts in (``nonprompt_eta16_q1_eig1``: eta bin 16 and
charge bin 1 of the fit channel; ``effStat_eta3_idip_eig0``: eta bin 3 of the efficiency
payload). :func:`display_name` maps such a name to ``nonprompt η -0.8..-0.7, μ+, eig 1`` using
the binning where it is stored: the fit channel's axes (``fitresult.h5`` ``yields/<channel>``
attribute ``axes``, the same as the fit input's ``channels/<name>``) for the nonprompt and
per-charge nuisances, and the correctionlib payload the histograms were filled with (named in
the ``hists.h5`` provenance, ``args.corrections``) for efficiency, prefiring and momentum-scale
nuisances. A name whose binning is unknown, or that matches no pattern, is returned unchanged;
the raw name stays the key (search, tooltips, ``runs.json``).

>>> b = NuisanceBinning(eta=[-2.4, -1.2, 0.0, 1.2, 2.4], charge=[-2.0, 0.0, 2.0])
>>> display_name("nonprompt_eta1_q1_eig1", b)
'nonprompt η -1.2..0, μ+, eig 1'
>>> display_name("qcdScaleW_muR_q0", b)
'qcdScaleW muR, μ-'
>>> display_name("pdf12", b)
'pdf12'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis.report.style import fmt_edge

__all__ = ["NuisanceBinning", "binning_of", "display_name", "display_names"]

#: efficiency kinds of the payload (processors.variations.EfficiencyModel) as people say them
_EFF_KINDS = {"idip": "ID+IP", "trigger": "trigger", "iso": "isolation", "tracking": "tracking"}


@dataclass
class NuisanceBinning:
    """Bin edges that nuisance names index: the fit channel's ``eta`` and ``charge`` axes and
    the eta binnings of the corrections (``efficiency``, ``prefiring``, ``scale``)."""

    eta: Sequence[float] | None = None
    charge: Sequence[Any] | None = None
    corrections: dict[str, Sequence[float]] = field(default_factory=dict)


def _range(edges: Sequence[float] | None, i: int) -> str | None:
    if edges is None or not 0 <= i < len(edges) - 1:
        return None
    return f"{fmt_edge(round(float(edges[i]), 9))}..{fmt_edge(round(float(edges[i + 1]), 9))}"


def _charge(charge: Sequence[Any] | None, q: int) -> str | None:
    """``μ-`` / ``μ+`` for charge bin ``q`` of a charge axis (edges or categories)."""
    if charge is None:
        return None
    values = list(charge)
    try:
        nums = [float(v) for v in values]
    except (TypeError, ValueError):
        return str(values[q]) if 0 <= q < len(values) else None
    # edges (one more than bins) or numeric categories
    centres = [0.5 * (a + b) for a, b in zip(nums[:-1], nums[1:], strict=True)]
    if len(nums) == 2 and nums[0] < 0 < nums[1] and q in (0, 1):  # categories [-1, 1]
        centres = nums
    if not 0 <= q < len(centres):
        return None
    return "μ-" if centres[q] < 0 else "μ+"


_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"nonprompt_eta(\d+)_q(\d+)_(eig)(\d+)"), "nonprompt"),
    (re.compile(r"nonprompt_eta(\d+)_q(\d+)_(norm)()"), "nonprompt"),
    (re.compile(r"effStat_eta(\d+)_([A-Za-z]+)_eig(\d+)"), "efficiency"),
    (re.compile(r"effSyst_eta(\d+)_([A-Za-z]+)_(syst)()"), "efficiency"),
    (re.compile(r"prefiringStat_eta(\d+)"), "prefiring"),
    (re.compile(r"muonScale_eta(\d+)"), "scale"),
    (re.compile(r"(.+)_q(\d+)"), "charge"),
]


def display_name(name: str, binning: NuisanceBinning | None) -> str:
    """The label of nuisance ``name`` with its physical ranges (module doc); ``name`` itself
    when no pattern applies or the binning it indexes is not known."""
    if binning is None:
        return name
    for pattern, kind in _PATTERNS:
        m = pattern.fullmatch(name)
        if not m:
            continue
        if kind == "nonprompt":
            eta, q = _range(binning.eta, int(m.group(1))), _charge(binning.charge, int(m.group(2)))
            if eta is None or q is None:
                return name
            what = "norm" if m.group(3) == "norm" else f"eig {m.group(4)}"
            return f"nonprompt η {eta}, {q}, {what}"
        if kind == "efficiency":
            eta = _range(binning.corrections.get("efficiency"), int(m.group(1)))
            if eta is None:
                return name
            kindname = _EFF_KINDS.get(m.group(2), m.group(2))
            if m.group(3) == "syst":
                return f"eff. syst. {kindname} η {eta} (tag-and-probe)"
            return f"eff. stat. {kindname} η {eta}, eig {m.group(3)}"
        if kind in ("prefiring", "scale"):
            eta = _range(binning.corrections.get(kind), int(m.group(1)))
            if eta is None:
                return name
            return f"{'prefiring stat.' if kind == 'prefiring' else 'muon scale'} η {eta}"
        if kind == "charge":
            q = _charge(binning.charge, int(m.group(2)))
            if q is None:
                return name
            return f"{m.group(1).replace('_', ' ')}, {q}"
    return name


def display_names(names: Sequence[str], binning: NuisanceBinning | None) -> list[str]:
    """:func:`display_name` of each name."""
    return [display_name(str(n), binning) for n in names]


def _channel_axes(yields: Mapping[str, Mapping[str, Any]]) -> tuple[Any, Any]:
    eta = charge = None
    for y in yields.values():
        for ax in y.get("axes") or []:
            name = str(ax.get("name", ""))
            values = ax.get("edges", ax.get("categories"))
            if name == "eta" and eta is None and "edges" in ax:
                eta = [float(e) for e in ax["edges"]]
            elif name == "charge" and charge is None and values is not None:
                charge = list(values)
    return eta, charge


def _correction_edges(path: Path) -> dict[str, list[float]]:
    """The eta binnings of the efficiency, prefiring and scale corrections of a payload."""
    from corrections.evaluate import Corrections

    corr = Corrections.from_file(path)
    out: dict[str, list[float]] = {}
    for key, cname in (
        ("efficiency", corr.names.idip),
        ("prefiring", corr.names.prefiring),
        ("scale", corr.names.scale_uncertainty),
    ):
        if cname in corr:
            try:
                out[key] = [float(e) for e in corr.edges(cname, "eta")]
            except KeyError:
                continue
    return out


def binning_of(result: Any, hists: Sequence[str | os.PathLike] = ()) -> NuisanceBinning:
    """The binning of a fit result's nuisance names: its channels' axes, and the corrections
    payload named in the provenance of the histograms files ``hists`` (missing pieces stay
    unknown: their names are shown raw)."""
    import h5py

    from fit.provenance import read_meta

    eta, charge = _channel_axes(getattr(result, "yields", {}) or {})
    corrections: dict[str, list[float]] = {}
    for h in hists:
        try:
            with h5py.File(h, "r") as f:
                args = read_meta(f).get("args", {}) or {}
        except (OSError, ValueError, KeyError):
            continue
        path = args.get("corrections") if isinstance(args, Mapping) else None
        candidates = [Path(path), Path(h).parent / Path(path).name] if path else []
        for cand in candidates:
            if cand.is_file():
                try:
                    corrections = _correction_edges(cand)
                except Exception:  # a payload we cannot read: names stay raw
                    corrections = {}
                break
        if corrections:
            break
    return NuisanceBinning(
        eta=None if eta is None else np.asarray(eta, float).tolist(),
        charge=charge,
        corrections=corrections,
    )
