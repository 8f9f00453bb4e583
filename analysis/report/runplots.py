"""The figures of one run of the site: distributions pre- and post-fit (stacks with the
covariance band, pull maps) and the nonprompt closure, here; the fit's own figures (impact
ranking, scans, pulls, correlations), the m_W templates and the m_W comparison with the
published measurements in :mod:`analysis.report.fitplots`; the bands in
:mod:`analysis.report.bands`, the label style in :mod:`analysis.report.runstyle`. Each figure
is written as PNG and PDF with its ``.log``; the pages (:mod:`analysis.report.pages`) list
them as :class:`~analysis.report.entries.Plot` entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from analysis.report.bands import Bands
from analysis.report.entries import (
    Plot,
    axis_edges,
    axis_ticks,
    channel_shape,
    poi_slug,
)
from analysis.report.figures import pull_maps
from analysis.report.files import safe_filename
from analysis.report.fitplots import fit_plots, mw_comparison, template_plots
from analysis.report.plots import closure_plot, project, stack_plot, yields_table
from analysis.report.runstyle import hists_candidates, style_context
from analysis.report.style import axis_label

__all__ = [
    "Bands",
    "Plot",
    "closure_plots",
    "fit_plots",
    "hists_candidates",
    "make_plots",
    "mw_comparison",
    "poi_slug",
    "style_context",
    "template_plots",
]


def _proc_errors(y: Mapping[str, Any], stage: str, processes: Sequence[str]) -> dict:
    err = y.get(f"proc_{stage}_err")
    if err is None:
        return {}
    return {p: float(e) for p, e in zip(processes, np.asarray(err), strict=False)}


def make_plots(
    result: Any,
    bands: Bands | None,
    plots_dir: Path,
    meta: Mapping[str, Any],
    inputs_meta: Mapping[str, Mapping[str, Any]],
    formats: Sequence[str],
    projections: Sequence[str] | None = None,
    style: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> tuple[list[Plot], dict[str, dict[str, Any]]]:
    """Every channel, pre- and post-fit, unrolled and projected; the yields.

    ``projections``: axis-name specs like ``"pt"`` or ``"eta-pt"`` (several axes: unrolled,
    the last fastest); default one per axis. A channel without one of the named axes skips it.
    """
    labels = labels or {}
    drawn = {"formats": formats, "style": style}
    entry = partial(Plot.written, meta=meta, inputs_meta=inputs_meta)
    plots: list[Plot] = []
    totals: dict[str, dict[str, Any]] = {}
    for channel, y in result.yields.items():
        processes = list(y["processes"])
        axes = list(y.get("axes") or [])
        nbins = int(np.asarray(y["prefit"]).shape[0])
        shape = channel_shape(axes, nbins)
        names = [str(a.get("name", f"axis{i}")) for i, a in enumerate(axes)] or ["bin"]
        data = None if y.get("masked") or y.get("data") is None else np.asarray(y["data"], float)
        totals[channel] = {"processes": processes, "data": None if data is None else data.sum()}
        views: list[tuple[str, list[int]]] = [("unrolled", list(range(len(shape))))]
        specs = projections if projections is not None else (names if len(shape) > 1 else [])
        for spec in specs:
            wanted = [a for a in spec.split("-") if a]
            if len(shape) > 1 and wanted and all(a in names for a in wanted):
                views.append(("-".join(wanted), sorted(names.index(a) for a in wanted)))
        for stage in ("prefit", "postfit"):
            values = np.asarray(y[stage], float)  # [nbins, P]
            stored_err = y.get(f"{stage}_err")
            tot_err = None
            if bands is not None:
                tot_err = float(bands.band(stage, channel, shape, [])[0])
            totals[channel][stage] = values.sum(axis=0)
            totals[channel][f"{stage}_err"] = (
                dict(zip(processes, bands.process_errors(stage, channel).tolist(), strict=True))
                if bands is not None
                else _proc_errors(y, stage, processes)
            )
            totals[channel][f"{stage}_total_err"] = tot_err
            if data is not None and len(shape) > 1 and {"pt", "eta"} <= set(names):
                # 2D pull maps (pT x eta per charge) instead of thousands of unrolled points
                stem = f"{safe_filename(channel)}_{stage}_pullmap"
                title = f"{channel}, {stage.replace('fit', '-fit')}"
                paths = pull_maps(
                    data,
                    values.sum(axis=1),
                    axes,
                    title=title,
                    out=plots_dir / stem,
                    **drawn,
                    labels={n: axis_label(n, labels.get(n)) for n in names},
                )
                extra = (
                    f"Channel {channel}, {stage}: (data - prediction) / sqrt(prediction) per "
                    "bin, eta x pT per charge"
                )
                title = f"{title}, pulls per bin"
                plots.append(entry(paths, title, channel, stage, extra=extra))
                views = [v for v in views if v[0] != "unrolled"]
            for view, keep in views:
                proj = project(values, shape, keep)  # [n, P]
                dproj = None if data is None else project(data, shape, keep)
                ticks = None
                if view == "unrolled":
                    edges = np.arange(proj.shape[0] + 1, dtype=float)
                    if len(shape) == 1 and axes:
                        edges = axis_edges(axes[0])[0]
                        ticks = axis_ticks(axes[0])
                    xlabel = (
                        axis_label(names[0], labels.get(names[0]))
                        if len(shape) == 1
                        else f"unrolled bin ({' x '.join(names)})"
                    )
                    # per bin, the fit stored the same sqrt(diag(J C J^T)) (tested): reuse it
                    if stored_err is not None:
                        band = np.asarray(stored_err, float)
                    elif bands is not None:
                        band = bands.band(stage, channel, shape, keep)
                    else:
                        band = None
                else:
                    if len(keep) == 1:
                        edges, axname = axis_edges(axes[keep[0]])
                        xlabel = axis_label(axname, labels.get(axname))
                        ticks = axis_ticks(axes[keep[0]])
                    else:
                        edges = np.arange(proj.shape[0] + 1, dtype=float)
                        xlabel = f"unrolled bin ({' x '.join(names[i] for i in keep)})"
                    band = bands.band(stage, channel, shape, keep) if bands is not None else None
                stack = {p: proj[:, i] for i, p in enumerate(processes)}
                stem = f"{safe_filename(channel)}_{stage}_{safe_filename(view)}"
                title = f"{channel}, {stage.replace('fit', '-fit')}, {view}"
                paths = stack_plot(
                    edges,
                    stack,
                    data=None if dproj is None else dproj.astype(float),
                    band=band,
                    xlabel=xlabel,
                    title=title,
                    out=plots_dir / stem,
                    xticklabels=ticks,
                    **drawn,
                )
                errors = dict(totals[channel][f"{stage}_err"])
                if tot_err is not None:
                    errors["Total"] = tot_err
                extra = f"Channel {channel}, {stage}, projection on {view}; band: " + (
                    "sqrt(diag(J C J^T)) of the projected yields"
                    if bands is not None
                    else "per-bin uncertainty stored by the fit"
                    if band is not None
                    else "none (no fit input)"
                )
                table = yields_table(stack, errors, data=dproj)
                plots.append(entry(paths, title, channel, stage, extra=extra, yields=table))
    return plots, totals


def closure_plots(
    fit_meta: Mapping[str, Any],
    result: Any,
    plots_dir: Path,
    meta: Mapping[str, Any],
    inputs_meta: Mapping[str, Mapping[str, Any]],
    formats: Sequence[str],
    style: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[Plot]:
    """The nonprompt estimate against the QCD simulation in each projection, as setup-fit
    measured it (the fit input's ``nonprompt_closure``), one plot per channel and axis."""
    plots = []
    labels = labels or {}
    drawn = {"formats": formats, "style": style}
    entry = partial(Plot.written, meta=meta, inputs_meta=inputs_meta)
    for channel, projections in (fit_meta.get("nonprompt_closure") or {}).items():
        axes = {str(a.get("name")): a for a in result.yields.get(channel, {}).get("axes") or []}
        for axis, p in projections.items():
            if axis not in axes:
                continue
            edges, _ = axis_edges(axes[axis])
            xlabel = axis_label(axis, axes[axis].get("label") or labels.get(axis))
            title = f"{channel}: nonprompt closure, {axis}"
            paths = closure_plot(
                edges,
                p["estimate"],
                p["truth"],
                p["variance"],
                xlabel=xlabel,
                title=title,
                out=plots_dir / f"{safe_filename(channel)}_nonprompt_closure_{safe_filename(axis)}",
                **drawn,
            )
            extra = (
                f"Channel {channel}: the nonprompt estimate (data-driven) against the QCD "
                f"simulation in the signal region, projected on {axis}; band and pulls: the "
                "simulation's and the estimate's statistical uncertainties in quadrature"
            )
            group = f"{channel}: nonprompt closure on the QCD simulation"
            plots.append(entry(paths, title, group, "closure", extra=extra))
    return plots
