"""The fit's own figures of a run: the impact ranking per POI, likelihood scans, pulls
against N(0,1), correlations of the POIs and the leading nuisances (:func:`fit_plots`), the
signal's mass templates over its nominal (:func:`template_plots`) and m_W beside the published
measurements (:func:`mw_comparison`), each with its ``.log``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from analysis.report.bands import Bands
from analysis.report.entries import Plot, axis_edges, charge_values, poi_slug
from analysis.report.figures import (
    correlation_plot,
    impact_ranking_plot,
    mw_comparison_plot,
    pulls_histogram,
    scan_plot,
    template_ratio_plot,
    top_nuisances,
)
from analysis.report.files import safe_filename
from analysis.report.measurements import MW_EW_FIT, MW_MEASUREMENTS
from analysis.report.plots import project
from analysis.report.style import axis_label, charge_labels, fmt_edge, process_label

__all__ = ["fit_plots", "mw_comparison", "template_plots"]


def fit_plots(
    result: Any,
    plots_dir: Path,
    meta: Mapping[str, Any],
    inputs_meta: Mapping[str, Mapping[str, Any]],
    formats: Sequence[str],
    style: Mapping[str, Any] | None,
    label: Callable[[str], str] | None = None,
) -> list[Plot]:
    """Impact ranking per POI, likelihood scans, pulls against N(0,1), correlations.

    ``label``: a nuisance's display name with its physical ranges (default: the name); each
    figure's ``.log`` lists the raw names of the labels it shows."""
    drawn = {"formats": formats, "style": style}
    entry = partial(Plot.written, meta=meta, inputs_meta=inputs_meta)
    plots: list[Plot] = []
    params = list(result.parameters)
    nuis = np.array([p not in result.pois for p in params], dtype=bool)
    cons = nuis & np.asarray(result.constrained, dtype=bool)
    pulls, constraints = np.asarray(result.pulls), np.asarray(result.constraints)

    label = label or (lambda n: n)

    def add(paths: Sequence[Path], title: str, extra: str, shown: Sequence[int] = ()) -> None:
        names = [f"  {label(params[i])}  <-  {params[i]}" for i in shown]
        if names:
            extra += "\nLabels shown and the fit's parameter names:\n" + "\n".join(names)
        plots.append(entry(paths, title, "fit", "fit", extra=extra))

    for poi, d in result.pois.items():
        imp = result.impacts.get(poi)
        if imp is None or not nuis.any():
            continue
        idx = np.flatnonzero(nuis)
        slug = poi_slug(poi)
        paths = impact_ranking_plot(
            [label(params[i]) for i in idx],
            pulls[idx],
            constraints[idx],
            np.asarray(imp, float)[idx],
            poi=poi,
            unit=d.get("unit", ""),
            poi_value=d.get("value"),
            poi_error=d.get("error"),
            out=plots_dir / f"impacts_{slug}",
            **drawn,
        )
        shown = idx[top_nuisances(np.asarray(imp, float)[idx], np.ones(idx.size, bool), 30)]
        add(paths, f"impact ranking on {poi} (top 30)", f"Traditional impacts on {poi}", shown)
    for poi, sc in (result.scans or {}).items():
        d = result.pois.get(poi, {})
        slug = poi_slug(poi)
        paths = scan_plot(
            sc["values"],
            sc["dnll"],
            poi=poi,
            unit=d.get("unit", ""),
            value=d.get("value"),
            error=d.get("error"),
            out=plots_dir / f"scan_{slug}",
            **drawn,
        )
        add(paths, f"likelihood scan of {poi}", "-2 Delta ln L and the Hessian parabola")
    if cons.any():
        paths = pulls_histogram(pulls[cons], out=plots_dir / "pulls", **drawn)
        add(paths, "pulls of all nuisances", "pulls of the constrained nuisances against N(0,1)")
    poi_idx = [params.index(p) for p in result.pois if p in params]
    first = next(iter(result.impacts.values()), None)
    rank = np.abs(np.nan_to_num(first if first is not None else pulls))
    top = [int(i) for i in top_nuisances(rank, nuis, 30)]
    chosen = poi_idx + top
    if len(chosen) > 1:
        cov = np.asarray(result.covariance, float)[np.ix_(chosen, chosen)]
        paths = correlation_plot(
            [label(params[i]) for i in chosen],
            cov,
            out=plots_dir / "correlations",
            **drawn,
        )
        add(
            paths,
            "correlations of the POIs and the top 30 nuisances",
            "post-fit correlations",
            chosen,
        )
    return plots


def template_plots(
    bands: Bands,
    result: Any,
    plots_dir: Path,
    meta: Mapping[str, Any],
    inputs_meta: Mapping[str, Mapping[str, Any]],
    formats: Sequence[str],
    style: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[Plot]:
    """The signal's templates at each mass-like POI's +-1 step (m_W +- 100 MeV) over the
    nominal, projected on muon pT per charge: the model's own prediction at ``x_POI = +-1``,
    every other parameter at its pre-fit value, summed over the processes the POI changes."""
    labels = labels or {}
    fi, model = bands.fi, bands.model
    x0 = bands.points["prefit"][0]
    nominal = model.yields(x0)
    drawn = {"formats": formats, "style": style}
    entry = partial(Plot.written, meta=meta, inputs_meta=inputs_meta)
    plots: list[Plot] = []
    for poi in fi.pois:
        if poi.kind == "norm":
            continue  # a signal strength scales, it does not shape
        i = fi.index(poi.name)
        shifted = {}
        for sign in (1.0, -1.0):
            x = x0.copy()
            x[i] = sign
            shifted[sign] = model.yields(x)
        changed = np.any(np.abs(shifted[1.0] - nominal) > 1e-12 * (np.abs(nominal) + 1), axis=0)
        # the signal: the processes the POI shapes that are signal (the nonprompt background,
        # data minus prompt, moves the other way and is no template of the mass)
        signal = changed & np.asarray(fi.signal, dtype=bool)
        changed = signal if signal.any() else changed
        if not changed.any():
            continue
        procs = [p for p, c in zip(fi.processes, changed, strict=True) if c]
        shift = f"{abs(poi.scale):g} {poi.unit}".strip()
        for ch in fi.channels:
            names = [str(a.get("name")) for a in ch.axes]
            if "pt" not in names or len(names) != len(ch.shape):
                continue
            keep = [names.index("pt")] + ([names.index("charge")] if "charge" in names else [])
            nom = project(nominal[ch.slice][:, changed].sum(axis=1), ch.shape, keep)
            up = project(shifted[1.0][ch.slice][:, changed].sum(axis=1), ch.shape, keep)
            down = project(shifted[-1.0][ch.slice][:, changed].sum(axis=1), ch.shape, keep)
            npt = len(ch.axes[keep[0]]["edges"]) - 1
            nq = nom.size // npt
            # project() keeps the axes in the channel's order: charge may come before pT
            charge_first = len(keep) > 1 and keep[1] < keep[0]
            nom, up, down = (
                a.reshape(nq, npt).T if charge_first else a.reshape(npt, nq)
                for a in (nom, up, down)
            )
            qlabels = charge_labels(charge_values(ch.axes[keep[1]])) if nq > 1 else ["all"]
            ratios = {
                q: (
                    np.divide(up[:, k], nom[:, k], out=np.full(npt, np.nan), where=nom[:, k] > 0),
                    np.divide(down[:, k], nom[:, k], out=np.full(npt, np.nan), where=nom[:, k] > 0),
                )
                for k, q in enumerate(qlabels)
            }
            edges, _ = axis_edges(ch.axes[keep[0]])
            title = f"{ch.name}: {poi.name} +-{shift} templates of {' + '.join(procs)}"
            paths = template_ratio_plot(
                edges,
                ratios,
                xlabel=axis_label("pt", labels.get("pt")),
                shift=shift,
                title=f"{ch.name.replace('$', chr(92) + '$')}: "
                + " + ".join(process_label(p) for p in procs),
                out=plots_dir / f"{safe_filename(ch.name)}_templates_{poi_slug(poi.name)}",
                **drawn,
            )
            extra = (
                f"Channel {ch.name}: the prediction of {', '.join(procs)} at {poi.name} = "
                f"+-{shift} (fit parameter +-1, the others pre-fit) over the nominal, projected "
                "on pT per charge\n" + _ratio_table(edges, ratios)
            )
            plots.append(entry(paths, title, "templates", "templates", extra=extra))
    return plots


def _ratio_table(edges: np.ndarray, ratios: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """The ratios of a template plot as text: one line per bin, up and down per charge."""
    head = "pT bin".ljust(16) + "".join(f"{q + ' up':>16}{q + ' down':>16}" for q in ratios)
    lines = [head]
    for i in range(len(edges) - 1):
        cells = "".join(f"{r[0][i]:16.6f}{r[1][i]:16.6f}" for r in ratios.values())
        lines.append(f"{fmt_edge(edges[i])}..{fmt_edge(edges[i + 1])}".ljust(16) + cells)
    return "\n".join(lines)


def mw_comparison(
    result: Any,
    plots_dir: Path,
    meta: Mapping[str, Any],
    inputs_meta: Mapping[str, Mapping[str, Any]],
    formats: Sequence[str],
    style: Mapping[str, Any] | None = None,
) -> list[Plot]:
    """This run's m_W beside the published measurements and the electroweak fit
    (:mod:`analysis.report.measurements`); nothing for a fit without an ``mW`` POI in MeV."""
    mw = result.pois.get("mW")
    if not mw or str(mw.get("unit", "")) != "MeV" or not mw.get("error"):
        return []
    what = "this fit" if str(result.data) == "observed" else f"this fit ({result.data})"
    paths = mw_comparison_plot(
        MW_MEASUREMENTS,
        this=(what, float(mw["value"]), float(mw["error"])),
        prediction=MW_EW_FIT,
        out=plots_dir / "mw_comparison",
        formats=formats,
        style=style,
    )
    refs = "\n".join(
        f"  {m.label}: {m.value:g} +- {m.error:g} MeV, {m.reference}"
        for m in (*MW_MEASUREMENTS, MW_EW_FIT)
    )
    title = "m_W: this fit and the published measurements"
    extra = f"m_W of this fit against the published measurements:\n{refs}"
    return [
        Plot.written(paths, title, "fit", "fit", meta=meta, inputs_meta=inputs_meta, extra=extra)
    ]
