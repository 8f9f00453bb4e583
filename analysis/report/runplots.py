"""The figures of one run of the site: distributions pre- and post-fit (stacks with the
covariance band, pull maps), the nonprompt closure, the m_W templates, the fit's own figures
(impact ranking, scans, pulls, correlations) and the m_W comparison with the published
measurements. Each figure is written as PNG and PDF with its ``.log``; the pages
(:mod:`analysis.report.pages`) list them as :class:`Plot` entries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.report.errors import ReportError
from analysis.report.files import safe_filename
from analysis.report.plots import (
    band_from_covariance,
    closure_plot,
    project,
    stack_plot,
    write_plot_log,
    yields_table,
)
from analysis.report.style import axis_label, charge_labels, fmt_edge, process_label

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


def _axis_edges(ax: Mapping[str, Any]) -> tuple[np.ndarray, str]:
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


def _ticks(ax: Mapping[str, Any]) -> list[str] | None:
    """Tick labels of a categorical axis (charge: ``$\\mu^-$``, ``$\\mu^+$``), else None."""
    name = str(ax.get("name", ""))
    if name == "charge":
        if "categories" in ax:
            return charge_labels(ax["categories"])
        edges = np.asarray(ax["edges"], dtype=float)
        return charge_labels(0.5 * (edges[1:] + edges[:-1]))
    if "categories" in ax:
        return [str(c) for c in ax["categories"]]
    return None


def _channel_shape(axes: Sequence[Mapping[str, Any]], nbins: int) -> tuple[int, ...]:
    dims = [len(a["edges"]) - 1 if "edges" in a else len(a["categories"]) for a in axes]
    return tuple(dims) if dims and int(np.prod(dims)) == nbins else (nbins,)


class Bands:
    """Projected pre-/post-fit uncertainties from the model's Jacobian and a covariance."""

    def __init__(self, fit_input: Any, result: Any) -> None:
        from fit.model import Model

        self.fi = fit_input
        self.model = Model(fit_input)
        k = self.model.K
        if k != len(result.parameters):
            raise ReportError(
                f"fit input has {k} parameters, fit result {len(result.parameters)}: not its input"
            )
        x0 = np.zeros(k) if result.theta0 is None else np.asarray(result.theta0, dtype=float)
        cons = np.asarray(result.constrained, dtype=bool)
        self.points = {
            # the priors: unit widths of the constrained parameters (a diagonal, as a vector)
            "prefit": (np.where(cons, x0, 0.0), cons.astype(float)),
            "postfit": (np.asarray(result.values, float), np.asarray(result.covariance, float)),
        }
        self._jac: dict[str, Any] = {}
        self._bands: dict[tuple, np.ndarray] = {}

    def jacobian(self, stage: str) -> Any:
        if stage not in self._jac:
            x, _ = self.points[stage]
            self._jac[stage] = self.model.bin_jacobian(x).tocsr()
        return self._jac[stage]

    def process_errors(self, stage: str, channel: str) -> np.ndarray:
        """Uncertainty of each process's total yield in ``channel``, ``[P]``."""
        x, cov = self.points[stage]
        ch = self.fi.channel(channel)
        P = self.model.P
        e = self.model.yields(x)[ch.slice]  # [nb, P]
        jac = self.model.jacobian(x)[ch.first_bin * P : (ch.first_bin + ch.nbins) * P]
        # d(sum_b n_bp)/dx = sum_b e_bp J[b*P + p]: a [P, nb*P] selection-and-weight matrix
        import scipy.sparse as sp

        rows = np.tile(np.arange(P), ch.nbins)
        w = sp.csr_array((e.ravel(), (rows, np.arange(ch.nbins * P))), shape=(P, ch.nbins * P))
        return band_from_covariance((w @ jac).toarray(), cov)

    def band(self, stage: str, channel: str, shape: Sequence[int], keep: Sequence[int]):
        """Uncertainty of the channel's total yield projected onto axes ``keep``."""
        key = (stage, channel, tuple(shape), tuple(keep))
        if key not in self._bands:
            ch = self.fi.channel(channel)
            # project the sparse Jacobian first: [n_proj, K] dense, never [nbins, K]
            pj = (projector(shape, keep) @ self.jacobian(stage)[ch.slice]).toarray()
            self._bands[key] = band_from_covariance(pj, self.points[stage][1])
        return self._bands[key]


def projector(shape: Sequence[int], keep: Sequence[int]) -> Any:
    """The sparse matrix that sums flat bins (C order over ``shape``) onto the axes ``keep``
    (``[]``: the total), as :func:`~analysis.report.plots.project` does."""
    import scipy.sparse as sp

    shape = tuple(int(n) for n in shape)
    nb = int(np.prod(shape))
    idx = np.unravel_index(np.arange(nb), shape)
    kept = sorted(keep)
    if kept:
        rows = np.ravel_multi_index(tuple(idx[i] for i in kept), tuple(shape[i] for i in kept))
        n = int(np.prod([shape[i] for i in kept]))
    else:
        rows, n = np.zeros(nb, dtype=int), 1
    return sp.csr_array((np.ones(nb), (rows, np.arange(nb))), shape=(n, nb))


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
    from analysis.report.figures import pull_maps

    labels = labels or {}
    plots: list[Plot] = []
    totals: dict[str, dict[str, Any]] = {}
    for channel, y in result.yields.items():
        processes = list(y["processes"])
        axes = list(y.get("axes") or [])
        nbins = int(np.asarray(y["prefit"]).shape[0])
        shape = _channel_shape(axes, nbins)
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
                    formats=formats,
                    style=style,
                    labels={n: axis_label(n, labels.get(n)) for n in names},
                )
                log = write_plot_log(
                    paths[0],
                    meta=meta,
                    inputs_meta=inputs_meta,
                    extra=f"Channel {channel}, {stage}: (data - prediction) / sqrt(prediction) "
                    "per bin, eta x pT per charge",
                )
                plots.append(Plot.of(paths, log, f"{title}, pulls per bin", channel, stage))
                views = [v for v in views if v[0] != "unrolled"]
            for view, keep in views:
                proj = project(values, shape, keep)  # [n, P]
                dproj = None if data is None else project(data, shape, keep)
                ticks = None
                if view == "unrolled":
                    edges = np.arange(proj.shape[0] + 1, dtype=float)
                    if len(shape) == 1 and axes:
                        edges = _axis_edges(axes[0])[0]
                        ticks = _ticks(axes[0])
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
                        edges, axname = _axis_edges(axes[keep[0]])
                        xlabel = axis_label(axname, labels.get(axname))
                        ticks = _ticks(axes[keep[0]])
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
                    formats=formats,
                    xticklabels=ticks,
                    style=style,
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
                log = write_plot_log(
                    paths[0],
                    meta=meta,
                    yields=yields_table(stack, errors, data=dproj),
                    inputs_meta=inputs_meta,
                    extra=extra,
                )
                plots.append(Plot.of(paths, log, title, channel, stage))
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
    for channel, projections in (fit_meta.get("nonprompt_closure") or {}).items():
        axes = {str(a.get("name")): a for a in result.yields.get(channel, {}).get("axes") or []}
        for axis, p in projections.items():
            if axis not in axes:
                continue
            edges, _ = _axis_edges(axes[axis])
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
                formats=formats,
                style=style,
            )
            log = write_plot_log(
                paths[0],
                meta=meta,
                inputs_meta=inputs_meta,
                extra=f"Channel {channel}: the nonprompt estimate (data-driven) against the QCD "
                f"simulation in the signal region, projected on {axis}; band and pulls: the "
                "simulation's and the estimate's statistical uncertainties in quadrature",
            )
            group = f"{channel}: nonprompt closure on the QCD simulation"
            plots.append(Plot.of(paths, log, title, group, "closure"))
    return plots


def hists_candidates(hists: Sequence[Path], fi_path: Path | None) -> list[Path]:
    """The histograms files of a run: those given, then the inputs named in the provenance of
    the fit input (found where it names them or beside it)."""
    import h5py

    candidates = list(hists)
    if fi_path is not None:
        try:
            from fit.provenance import read_meta

            with h5py.File(fi_path, "r") as f:
                inputs = read_meta(f).get("inputs", []) or []
        except Exception:  # provenance is optional for the style
            inputs = []
        for name in inputs:
            for cand in (Path(name), fi_path.parent / Path(name).name):
                if cand.is_file():
                    candidates.append(cand)
                    break
    return candidates


def style_context(
    result: Any, hists: Sequence[Path], fi_path: Path | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The experiment label's arguments (``data``: observed or simulated; ``lumi_pb``) and the
    stored axis labels (``muon pT [GeV]``) from the histograms files: those given, else the
    fit input's inputs."""
    import h5py

    candidates = hists_candidates(hists, fi_path)
    lumi, labels = None, {}
    for path in candidates:
        try:
            with h5py.File(path, "r") as f:
                if f.attrs.get("kind") != "histograms":
                    continue
                if lumi is None and f.attrs.get("lumi_pb") is not None:
                    lumi = float(f.attrs["lumi_pb"])
                labels.update(_stored_labels(f))
        except (OSError, ValueError, KeyError):
            continue
    data = str(getattr(result, "data", "observed")) == "observed"
    return {"data": data, "lumi_pb": lumi}, labels


def _stored_labels(f: Any) -> dict[str, str]:
    """``{axis name: label}`` of the first histogram of each dataset of a hists.h5."""
    import uhi.io.hdf5

    out: dict[str, str] = {}
    for g in f["datasets"].values():
        for hg in g["histograms"].values():
            for ref in hg["axes"]:
                md = uhi.io.hdf5._convert_axes(hg["ref_axes"][ref]).get("metadata", {})
                name, label = md.get("name"), md.get("label")
                if name and label and label != name:
                    out.setdefault(str(name), str(label))
            break
    return out


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
    from analysis.report.figures import (
        correlation_plot,
        impact_ranking_plot,
        pulls_histogram,
        scan_plot,
        top_nuisances,
    )

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
        log = write_plot_log(paths[0], meta=meta, inputs_meta=inputs_meta, extra=extra)
        plots.append(Plot.of(paths, log, title, "fit", "fit"))

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
            formats=formats,
            style=style,
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
            formats=formats,
            style=style,
        )
        add(paths, f"likelihood scan of {poi}", "-2 Delta ln L and the Hessian parabola")
    if cons.any():
        paths = pulls_histogram(pulls[cons], out=plots_dir / "pulls", formats=formats, style=style)
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
            formats=formats,
            style=style,
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
    from analysis.report.figures import template_ratio_plot

    labels = labels or {}
    fi, model = bands.fi, bands.model
    x0 = bands.points["prefit"][0]
    nominal = model.yields(x0)
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
            qlabels = charge_labels(_charge_values(ch.axes[keep[1]])) if nq > 1 else ["all"]
            ratios = {
                q: (
                    np.divide(up[:, k], nom[:, k], out=np.full(npt, np.nan), where=nom[:, k] > 0),
                    np.divide(down[:, k], nom[:, k], out=np.full(npt, np.nan), where=nom[:, k] > 0),
                )
                for k, q in enumerate(qlabels)
            }
            edges, _ = _axis_edges(ch.axes[keep[0]])
            title = f"{ch.name}: {poi.name} +-{shift} templates of {' + '.join(procs)}"
            paths = template_ratio_plot(
                edges,
                ratios,
                xlabel=axis_label("pt", labels.get("pt")),
                shift=shift,
                title=f"{ch.name.replace('$', chr(92) + '$')}: "
                + " + ".join(process_label(p) for p in procs),
                out=plots_dir / f"{safe_filename(ch.name)}_templates_{poi_slug(poi.name)}",
                formats=formats,
                style=style,
            )
            log = write_plot_log(
                paths[0],
                meta=meta,
                inputs_meta=inputs_meta,
                extra=f"Channel {ch.name}: the prediction of {', '.join(procs)} at "
                f"{poi.name} = +-{shift} (fit parameter +-1, the others pre-fit) over the "
                "nominal, projected on pT per charge\n" + _ratio_table(edges, ratios),
            )
            plots.append(Plot.of(paths, log, title, "templates", "templates"))
    return plots


def _ratio_table(edges: np.ndarray, ratios: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> str:
    """The ratios of a template plot as text: one line per bin, up and down per charge."""
    head = "pT bin".ljust(16) + "".join(f"{q + ' up':>16}{q + ' down':>16}" for q in ratios)
    lines = [head]
    for i in range(len(edges) - 1):
        cells = "".join(f"{r[0][i]:16.6f}{r[1][i]:16.6f}" for r in ratios.values())
        lines.append(f"{fmt_edge(edges[i])}..{fmt_edge(edges[i + 1])}".ljust(16) + cells)
    return "\n".join(lines)


def _charge_values(ax: Mapping[str, Any]) -> list[Any]:
    if "categories" in ax:
        return list(ax["categories"])
    edges = np.asarray(ax["edges"], dtype=float)
    return list(0.5 * (edges[1:] + edges[:-1]))


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
    from analysis.report.figures import mw_comparison_plot
    from analysis.report.measurements import MW_EW_FIT, MW_MEASUREMENTS

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
    log = write_plot_log(
        paths[0],
        meta=meta,
        inputs_meta=inputs_meta,
        extra=f"m_W of this fit against the published measurements:\n{refs}",
    )
    return [Plot.of(paths, log, "m_W: this fit and the published measurements", "fit", "fit")]
