"""The entry of one figure on a run's pages (:class:`Plot`: its PNG, PDF and ``.log``, written
with :meth:`Plot.written`) and what the run's figures read from a channel's stored axes:
bin edges (an open last bin drawn one bin wide), tick labels of categorical and charge axes,
and the channel's shape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.report.files import safe_filename
from analysis.report.plots import write_plot_log
from analysis.report.style import charge_labels

__all__ = ["Plot", "axis_edges", "axis_ticks", "channel_shape", "charge_values", "poi_slug"]


def poi_slug(poi: str) -> str:
    """A POI's name as a file-name part and element id (its impact page, figures, plotly
    divs): :func:`analysis.report.files.safe_filename`."""
    return safe_filename(poi)


@dataclass
class Plot:
    title: str
    png: str
    pdf: str | None
    log: str
    channel: str
    stage: str

    @classmethod
    def of(cls, paths: Sequence[Path], log: Path, title: str, channel: str, stage: str) -> Plot:
        """The entry of a figure written as ``paths`` (PNG and/or PDF) with its ``.log``."""
        by_suffix = {p.suffix: p.name for p in paths}
        png = by_suffix.get(".png", paths[0].name)
        return cls(title, png, by_suffix.get(".pdf"), log.name, channel, stage)

    @classmethod
    def written(
        cls,
        paths: Sequence[Path],
        title: str,
        channel: str,
        stage: str,
        *,
        meta: Mapping[str, Any],
        inputs_meta: Mapping[str, Mapping[str, Any]],
        extra: str,
        yields: list[dict[str, Any]] | None = None,
    ) -> Plot:
        """The entry of a figure written as ``paths``, once its ``.log`` is written beside it
        (:func:`~analysis.report.plots.write_plot_log`: the command, ``yields``, ``extra``
        and the inputs' provenance)."""
        log = write_plot_log(
            paths[0], meta=meta, yields=yields, inputs_meta=inputs_meta, extra=extra
        )
        return cls.of(paths, log, title, channel, stage)


def axis_edges(ax: Mapping[str, Any]) -> tuple[np.ndarray, str]:
    """The bin edges and name of a stored axis (``edges`` or ``categories``, one unit wide)."""
    name = str(ax.get("name", "bin"))
    if "edges" in ax:
        edges = np.asarray(ax["edges"], dtype=float)
        if not np.all(np.isfinite(edges)):  # an open last bin ([40, inf)): draw it one bin wide
            finite = edges[np.isfinite(edges)]
            width = np.diff(finite)[-1] if finite.size > 1 else 1.0
            edges = np.where(np.isposinf(edges), finite.max() + width, edges)
            edges = np.where(np.isneginf(edges), finite.min() - width, edges)
        return edges, name
    n = len(ax["categories"])
    return np.arange(n + 1, dtype=float) - 0.5, name


def charge_values(ax: Mapping[str, Any]) -> list[Any]:
    """The bins of a stored axis as values: its categories, or the centres of its edges."""
    if "categories" in ax:
        return list(ax["categories"])
    edges = np.asarray(ax["edges"], dtype=float)
    return list(0.5 * (edges[1:] + edges[:-1]))


def axis_ticks(ax: Mapping[str, Any]) -> list[str] | None:
    """Tick labels of a categorical axis (charge: ``$\\mu^-$``, ``$\\mu^+$``), else None."""
    name = str(ax.get("name", ""))
    if name == "charge":
        return charge_labels(charge_values(ax))
    if "categories" in ax:
        return [str(c) for c in ax["categories"]]
    return None


def channel_shape(axes: Sequence[Mapping[str, Any]], nbins: int) -> tuple[int, ...]:
    """The shape of a channel's bins from its stored axes (``(nbins,)`` when they disagree)."""
    dims = [len(a["edges"]) - 1 if "edges" in a else len(a["categories"]) for a in axes]
    return tuple(dims) if dims and int(np.prod(dims)) == nbins else (nbins,)
