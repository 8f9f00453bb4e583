"""``wmass report``: a static, offline HTML site of fit results that people can browse.

``wmass report fitresult.h5 [hists.h5 ...] --out site/`` adds one *run* to the site::

    site/index.html            every run written into this --out, newest first (runs.json)
    site/runs.json             the index, machine-readable
    site/plotly.min.js         plotly's bundle, served from the site itself (no CDN)
    site/<run>/index.html      POIs, goodness of fit, global impacts per group, likelihood
                               scans, pre- and post-fit distributions, yields, samples, logs
    site/<run>/impacts_<poi>.html   pulls, constraints and impacts of every nuisance
    site/<run>/plots/*.png|pdf|log  every plot with its .log (command, yields, provenance)

Pre- and post-fit distributions are drawn for each channel unrolled and projected on each of
its axes. Their uncertainty bands come from the covariance through the model's Jacobian
(``sqrt(diag(J C J^T))`` of the projected yields), so correlations are right in every
projection; this needs the fit input, found in the fit result's provenance or given with
``--fitinput``. Without it, the unrolled plots use the per-bin bands stored by the fit.

>>> from analysis.report import write_report
>>> page = write_report("fitresult.h5", ["hists.h5"], out="site")  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import fcntl
import html
import json
import os
import re
import shlex
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.report.plots import (
    PLOTLY_JS,
    band_from_covariance,
    closure_plot,
    nuisance_page,
    project,
    stack_plot,
    write_plot_log,
    write_plotly_js,
    yields_table,
)
from analysis.report.style import axis_label, charge_labels, pdg_round
from fit.provenance import atomic_write_text, provenance
from processors.errors import WMassError

__all__ = ["ReportError", "add_arguments", "main", "run_name", "write_report"]

RUNS_JSON = "runs.json"


class ReportError(WMassError):
    """A report cannot be written from these inputs (names the file or the key)."""


# ----------------------------------------------------------------------------- inputs


def _load_result(path: Path):
    from fit.result import FitResult

    try:
        return FitResult.read(path)
    except WMassError as err:
        raise ReportError(f"{path}: not a fit result: {err}") from None
    except Exception as err:  # a fit helper's error type outside our hierarchy
        raise ReportError(f"{path}: not a fit result: {err}") from None


def _find_fitinput(result: Any, explicit: Path | None, fitresult: Path) -> Path | None:
    """The fit input of ``result``: ``explicit``, else an input named in its provenance."""
    if explicit is not None:
        if not explicit.is_file():
            raise ReportError(f"{explicit}: --fitinput does not exist")
        return explicit
    import h5py

    for name in result.meta.get("inputs", []) or []:
        for cand in (Path(name), fitresult.parent / Path(name).name):
            try:
                with h5py.File(cand, "r") as f:
                    if f.attrs.get("kind") == "fitinput":
                        return cand
            except (OSError, ValueError):
                continue
    return None


def _read_fitinput(path: Path):
    from fit.writer import FitInput

    try:
        return FitInput.read(path)
    except Exception as err:
        raise ReportError(f"{path}: not a fit input: {err}") from None


def _poi_slug(poi: str) -> str:
    """A POI's name as a file-name part (its impact page and figures)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", poi)


def run_name(result: Any, fitresult: Path) -> str:
    """A stable, URL-safe name of a run: the fit's time and the file's stem.

    Reporting the same fit result again into the same site replaces its run, never doubles it.
    """
    stamp = str(result.meta.get("time", "")) or "unknown-time"
    stamp = stamp.replace("+00:00", "Z")
    raw = f"{stamp}-{fitresult.stem}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw).strip("-")


# ----------------------------------------------------------------------------- plots


@dataclass
class _Plot:
    title: str
    png: str
    pdf: str | None
    log: str
    channel: str
    stage: str

    @classmethod
    def of(cls, paths: Sequence[Path], log: Path, title: str, channel: str, stage: str) -> _Plot:
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


class _Bands:
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
            "prefit": (np.where(cons, x0, 0.0), np.diag(cons.astype(float))),
            "postfit": (np.asarray(result.values, float), np.asarray(result.covariance, float)),
        }
        self._jac: dict[str, Any] = {}

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
        ch = self.fi.channel(channel)
        jac = self.jacobian(stage)[ch.slice].toarray()
        pj = project(jac, shape, keep)  # [n_proj, K]
        return band_from_covariance(pj, self.points[stage][1])


def _proc_errors(y: Mapping[str, Any], stage: str, processes: Sequence[str]) -> dict:
    err = y.get(f"proc_{stage}_err")
    if err is None:
        return {}
    return {p: float(e) for p, e in zip(processes, np.asarray(err), strict=False)}


def _make_plots(
    result: Any,
    bands: _Bands | None,
    plots_dir: Path,
    meta: Mapping[str, Any],
    inputs_meta: Mapping[str, Mapping[str, Any]],
    formats: Sequence[str],
    projections: Sequence[str] | None = None,
    style: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> tuple[list[_Plot], dict[str, dict[str, Any]]]:
    """Every channel, pre- and post-fit, unrolled and projected; the yields.

    ``projections``: axis-name specs like ``"pt"`` or ``"eta-pt"`` (several axes: unrolled,
    the last fastest); default one per axis. A channel without one of the named axes skips it.
    """
    from analysis.report.figures import pull_maps

    labels = labels or {}
    plots: list[_Plot] = []
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
                stem = f"{channel}_{stage}_pullmap"
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
                plots.append(_Plot.of(paths, log, f"{title}, pulls per bin", channel, stage))
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
                stem = f"{channel}_{stage}_{view}"
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
                plots.append(_Plot.of(paths, log, title, channel, stage))
    return plots, totals


def _closure_plots(
    fit_meta: Mapping[str, Any],
    result: Any,
    plots_dir: Path,
    meta: Mapping[str, Any],
    inputs_meta: Mapping[str, Mapping[str, Any]],
    formats: Sequence[str],
    style: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> list[_Plot]:
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
                out=plots_dir / f"{channel}_nonprompt_closure_{axis}",
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
            plots.append(_Plot.of(paths, log, title, group, "closure"))
    return plots


def _style_context(
    result: Any, hists: Sequence[Path], fi_path: Path | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The experiment label's arguments (``data``: observed or simulated; ``lumi_pb``) and the
    stored axis labels (``muon pT [GeV]``) from the histograms files: those given, else the
    fit input's inputs."""
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


def _fit_plots(
    result: Any,
    plots_dir: Path,
    meta: Mapping[str, Any],
    inputs_meta: Mapping[str, Mapping[str, Any]],
    formats: Sequence[str],
    style: Mapping[str, Any] | None,
) -> list[_Plot]:
    """Impact ranking per POI, likelihood scans, pulls against N(0,1), correlations."""
    from analysis.report.figures import (
        correlation_plot,
        impact_ranking_plot,
        pulls_histogram,
        scan_plot,
        top_nuisances,
    )

    plots: list[_Plot] = []
    params = list(result.parameters)
    nuis = np.array([p not in result.pois for p in params], dtype=bool)
    cons = nuis & np.asarray(result.constrained, dtype=bool)
    pulls, constraints = np.asarray(result.pulls), np.asarray(result.constraints)

    def add(paths: Sequence[Path], title: str, extra: str) -> None:
        log = write_plot_log(paths[0], meta=meta, inputs_meta=inputs_meta, extra=extra)
        plots.append(_Plot.of(paths, log, title, "fit", "fit"))

    for poi, d in result.pois.items():
        imp = result.impacts.get(poi)
        if imp is None or not nuis.any():
            continue
        idx = np.flatnonzero(nuis)
        slug = _poi_slug(poi)
        paths = impact_ranking_plot(
            [params[i] for i in idx],
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
        add(paths, f"impact ranking on {poi} (top 30)", f"Traditional impacts on {poi}")
    for poi, sc in (result.scans or {}).items():
        d = result.pois.get(poi, {})
        slug = _poi_slug(poi)
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
            [params[i] for i in chosen],
            cov,
            out=plots_dir / "correlations",
            formats=formats,
            style=style,
        )
        add(paths, "correlations of the POIs and the top 30 nuisances", "post-fit correlations")
    return plots


def _flags_section(result: Any) -> str:
    """What a physicist checks first: status, EDM, large pulls, over- and strong constraints,
    and why the global-impact total differs from the Hessian error."""
    items: list[tuple[str, str]] = []  # (level, html)
    ok = str(result.status) == "converged"
    items.append(("ok" if ok else "bad", f"fit status: {_e(result.status)}"))
    edm = float(result.edm) if result.edm is not None else float("nan")
    items.append(("ok" if edm < 1e-3 else "warn", f"EDM = {_num(edm, '.2g')}"))
    params = list(result.parameters)
    nuis = np.array([p not in result.pois for p in params], dtype=bool)
    cons = nuis & np.asarray(result.constrained, dtype=bool)
    pulls, constr = np.asarray(result.pulls), np.asarray(result.constraints)

    def listing(mask: np.ndarray, what: str, key: np.ndarray) -> str:
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(-np.abs(key[idx]))]
        shown = ", ".join(
            f"<code>{_e(params[i])}</code> (pull {pulls[i]:+.2f}, constraint {constr[i]:.2f})"
            for i in idx[:10]
        )
        more = f" and {len(idx) - 10} more" if len(idx) > 10 else ""
        return f"{len(idx)} {what}: {shown}{more}"

    big = cons & (np.abs(np.nan_to_num(pulls)) > 2)
    over = cons & (np.nan_to_num(constr, nan=1.0) > 1.0 + 1e-6)
    strong = cons & (np.nan_to_num(constr, nan=1.0) < 0.3)
    for mask, what, key in (
        (big, "nuisances pulled beyond 2", pulls),
        (over, "post-fit constraints above 1 (wider than the prior: check the model)", constr),
        (strong, "post-fit constraints below 0.3 (the data measure them)", 1 / constr),
    ):
        if mask.any():
            items.append(("warn", listing(mask, what, np.nan_to_num(key))))
        else:
            items.append(("ok", f"no {what.split(' (')[0]}"))
    gof = result.gof or {}
    if gof:
        p = gof.get("p_value")
        level = "ok" if p is None or float(p) > 0.01 else "warn"
        items.append(
            (
                level,
                f"saturated GOF: χ²/ndf = {_num(gof.get('chi2'), '.1f')}/"
                f"{_num(gof.get('ndf'), '.0f')}, p = {_num(p, '.2g')}",
            )
        )
    for poi, glob in (result.global_impacts or {}).items():
        if "total" not in glob or poi not in result.pois:
            continue
        tot, err = float(glob["total"]), float(result.pois[poi].get("error") or 0)
        unit = result.pois[poi].get("unit", "")
        items.append(
            (
                "info",
                f"{_e(poi)}: global-impact total {_num(tot, '.3g')} {_e(unit)} vs Hessian "
                f"error {_num(err, '.3g')} {_e(unit)}: the global total adds in quadrature the "
                "linear responses to every random input (data, auxiliary measurements, MC "
                "statistics) and equals the Hessian error only on Asimov data; on real data the "
                "Hessian is taken at the fitted, pulled point, so they differ.",
            )
        )
    icon = {"ok": "✔", "warn": "⚠", "bad": "✖", "info": "ℹ"}
    lis = "".join(f'<li class="{lv}">{icon[lv]} {text}</li>' for lv, text in items)
    return f'<div class="flags"><h2>Flags</h2><ul>{lis}</ul></div>'


# ----------------------------------------------------------------------------- HTML

_CSS = """body{font-family:sans-serif;margin:1.2em;max-width:1400px}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#eee} td:first-child,th:first-child{text-align:left}
.plots{display:flex;flex-wrap:wrap;gap:12px}
.plot{width:440px;font-size:12px} .plot img{width:100%;border:1px solid #ddd}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:12px}
nav a{margin-right:1em}
.flags{border:1px solid #bbb;background:#fafafa;padding:.3em 1em;margin:.8em 0}
.flags ul{list-style:none;padding-left:0;font-size:14px} .flags li{margin:.25em 0}
.flags .warn{color:#9a5b00} .flags .bad{color:#b00020} .flags .ok{color:#1b6e20}"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _num(x: Any, fmt: str = ".6g") -> str:
    if x is None:
        return ""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return _e(x)
    return format(v, fmt) if np.isfinite(v) else str(v)


def _rounded(value: Any, error: Any) -> list[str]:
    """``[value, error]`` rounded by the PDG rule (full precision stays in runs.json)."""
    try:
        return list(pdg_round(float(value), float(error)))
    except (TypeError, ValueError):
        return [_num(value), _num(error)]


def _page(title: str, body: str, plotly_src: str | None) -> str:
    script = f'<script src="{_e(plotly_src)}"></script>' if plotly_src else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title>{script}<style>{_CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _plotly_div(fig: Any, div_id: str) -> str:
    return fig.to_html(include_plotlyjs=False, full_html=False, div_id=div_id)


def _global_impacts_section(result: Any) -> str:
    import plotly.graph_objects as go

    parts = []
    for poi, glob in result.global_impacts.items():
        unit = result.pois.get(poi, {}).get("unit", "")
        trad = result.group_impacts.get(poi, {})
        names = [k for k in glob if k != "total"]
        names.sort(key=lambda k: -abs(float(glob[k])))
        rows = [
            [_e(k), _num(glob[k], ".4g"), _num(trad.get(k), ".4g") if k in trad else ""]
            for k in [*names, "total"]
            if k in glob
        ]
        parts.append(f"<h3>Global impacts on {_e(poi)} ({_e(unit)})</h3>")
        parts.append(
            _table(["group", f"global impact ({unit})", f"traditional impact ({unit})"], rows)
        )
        fig = go.Figure(
            go.Bar(
                x=[float(glob[k]) for k in names][::-1],
                y=names[::-1],
                orientation="h",
                marker_color="#1f77b4",
            )
        )
        fig.update_layout(
            height=max(250, 28 * len(names) + 100),
            margin={"l": 160, "r": 20, "t": 30, "b": 40},
            xaxis_title=f"global impact on {poi} ({unit})",
        )
        parts.append(_plotly_div(fig, f"global-{poi}"))
    if not parts:
        return "<p>No global impacts in this fit result (run <code>wmass fit --global-impacts</code>).</p>"
    return "\n".join(parts)


def _scans_section(result: Any) -> str:
    if not result.scans:
        return ""
    import plotly.graph_objects as go

    parts = ["<h2>Likelihood scans</h2>"]
    for poi, s in result.scans.items():
        unit = result.pois.get(poi, {}).get("unit", "")
        fig = go.Figure(go.Scatter(x=np.asarray(s["values"]), y=2 * np.asarray(s["dnll"])))
        fig.update_layout(
            height=350,
            xaxis_title=f"{poi} ({unit})",
            yaxis_title="-2 Δ ln L",
            margin={"l": 60, "r": 20, "t": 30, "b": 50},
        )
        parts.append(_plotly_div(fig, f"scan-{poi}"))
    return "\n".join(parts)


def _toys_section(result: Any) -> str:
    """Pseudo-experiments (``wmass fit --toys N``): the POI's spread against its fitted error."""
    toys = result.toys or {}
    if "values" not in toys:
        return ""
    import plotly.graph_objects as go

    status = list(toys.get("status", []))
    ok = sum(1 for s in status if s == "converged")
    parts = [f"<h2>Pseudo-experiments</h2><p>{ok} of {len(status)} toys converged.</p>"]
    rows = []
    for poi, d in result.pois.items():
        rep = toys.get(f"poi_{poi}")
        if rep is None:
            continue
        rep = np.asarray(rep, dtype=float)
        good = np.isfinite(rep[:, 0])
        if good.sum() < 2:
            continue
        vals, errs = rep[good, 0], rep[good, 1]
        pulls = (vals - np.mean(vals)) / errs
        unit = d.get("unit", "")
        rows.append(
            [
                _e(poi),
                str(int(good.sum())),
                _num(np.mean(vals), ".6g"),
                _num(np.std(vals, ddof=1), ".4g"),
                _num(np.median(errs), ".4g"),
                _num(np.std(vals, ddof=1) / np.median(errs), ".3f"),
                _num(np.std(pulls, ddof=1), ".3f"),
                _e(unit),
            ]
        )
        fig = go.Figure(go.Histogram(x=vals, nbinsx=max(10, int(np.sqrt(vals.size)) * 2)))
        fig.update_layout(
            height=320,
            xaxis_title=f"{poi} in toys ({unit})",
            yaxis_title="toys",
            margin={"l": 60, "r": 20, "t": 30, "b": 50},
        )
        parts.append(_plotly_div(fig, f"toys-{poi}"))
    header = ["POI", "toys", "mean", "spread", "median error", "spread / error"]
    header += ["pull width", "unit"]
    parts.insert(1, _table(header, rows, cls="toys"))
    return "\n".join(parts)


def _yields_section(totals: Mapping[str, Mapping[str, Any]]) -> str:
    parts = []
    for channel, t in totals.items():
        rows = []
        for i, p in enumerate(t["processes"]):
            pre_e = t["prefit_err"].get(p)
            post_e = t["postfit_err"].get(p)
            rows.append(
                [
                    _e(p),
                    _num(t["prefit"][i], ".2f"),
                    _num(pre_e, ".2f"),
                    _num(t["postfit"][i], ".2f"),
                    _num(post_e, ".2f"),
                ]
            )
        rows.append(
            [
                "<b>Total</b>",
                _num(np.sum(t["prefit"]), ".2f"),
                _num(t.get("prefit_total_err"), ".2f"),
                _num(np.sum(t["postfit"]), ".2f"),
                _num(t.get("postfit_total_err"), ".2f"),
            ]
        )
        if t.get("data") is not None:
            d = float(t["data"])
            rows.append(["<b>Data</b>", _num(d, ".0f"), _num(np.sqrt(d), ".2f"), "", ""])
        parts.append(f"<h3>{_e(channel)}</h3>")
        parts.append(_table(["process", "pre-fit", "±", "post-fit", "±"], rows, cls="yields"))
    return "\n".join(parts)


def _samples_section(hists: Sequence[Path]) -> tuple[str, dict[str, dict[str, Any]]]:
    if not hists:
        return "", {}
    from analysis.io import describe

    parts, metas = ["<h2>Samples</h2>"], {}
    for path in hists:
        try:
            d = describe(path)
        except WMassError as err:
            raise ReportError(f"{path}: not a histograms file: {err}") from None
        metas[path.name] = d.get("meta", {})
        rows = []
        for name, ds in d["datasets"].items():
            rows.append(
                [
                    _e(name),
                    "data" if ds["is_data"] else "MC",
                    _num(ds.get("xsec_pb"), ".6g"),
                    f"{ds['events_read']:,}",
                    f"{ds['events_selected']:,}",
                    _num(ds["sumw"], ".6g"),
                    _num(ds.get("lumi_pb"), ".6g"),
                    str(len(ds["files_processed"])),
                    str(len(ds["files_failed"])),
                ]
            )
        parts.append(f"<h3>{_e(path.name)}</h3>")
        header = ["dataset", "kind", "xsec (pb)", "events read", "selected", "sum w"]
        header += ["lumi (pb⁻¹)", "files", "failed files"]
        parts.append(_table(header, rows))
    return "\n".join(parts), metas


def _run_page(
    name: str,
    result: Any,
    fitresult: Path,
    plots: Sequence[_Plot],
    totals: Mapping[str, Any],
    samples_html: str,
    impact_pages: Mapping[str, str],
    bands_note: str,
) -> str:
    pois = [
        [_e(p), *_rounded(d.get("value"), d.get("error")), _e(d.get("unit", ""))]
        for p, d in result.pois.items()
    ]
    gof = result.gof or {}
    gof_html = (
        f"<p>Saturated-model goodness of fit: χ² = {_num(gof.get('chi2'), '.2f')} / "
        f"ndf = {_num(gof.get('ndf'), '.0f')}, p-value = {_num(gof.get('p_value'), '.3g')}</p>"
        if gof
        else "<p>No goodness-of-fit in this fit result.</p>"
    )
    status = [
        ["status", _e(result.status)],
        ["NLL", _num(result.nll, ".2f")],
        ["EDM", _num(result.edm, ".3g")],
        ["parameters", str(len(result.parameters))],
        ["minimizer", _e(result.minimizer)],
        ["fit time (s)", _num(result.time, ".3g")],
        ["data", _e(result.data)],
    ]
    links = "".join(
        f'<li><a href="{_e(page)}">pulls, constraints and impacts on {_e(poi)}</a> '
        f"({len(result.parameters) - len(result.pois)} nuisances, searchable)</li>"
        for poi, page in impact_pages.items()
    )
    by_channel: dict[str, list[_Plot]] = {}
    for p in plots:
        by_channel.setdefault(p.channel, []).append(p)
    plot_html = []
    for channel, ps in by_channel.items():
        plot_html.append(f"<h3>{_e(channel)}</h3><div class='plots'>")
        for p in ps:
            pdf = f' · <a href="plots/{_e(p.pdf)}">pdf</a>' if p.pdf else ""
            plot_html.append(
                f'<div class="plot"><a href="plots/{_e(p.png)}"><img src="plots/{_e(p.png)}" '
                f'alt="{_e(p.title)}" loading="lazy"></a><br>{_e(p.title)} · '
                f'<a href="plots/{_e(p.log)}">log</a>{pdf}</div>'
            )
        plot_html.append("</div>")
    meta = dict(result.meta)
    diff = meta.pop("git_diff", "")
    logs = "".join(f'<li><a href="plots/{_e(p.log)}">{_e(p.log)}</a></li>' for p in plots)
    body = f"""<nav><a href="../index.html">all runs</a></nav>
<h1>Fit result {_e(name)}</h1>
<p>From <code>{_e(fitresult)}</code>, made by <code>{_e(meta.get("command", ""))}</code>
at {_e(meta.get("time", ""))}, git {_e(str(meta.get("git_hash", ""))[:12])}.</p>
{_flags_section(result)}
<h2>Parameters of interest</h2>
{_table(["POI", "value", "uncertainty", "unit"], pois, cls="pois")}
{gof_html}
{_table(["fit", ""], status)}
<h2>Impacts</h2>
<ul>{links}</ul>
{_global_impacts_section(result)}
{_scans_section(result)}
{_toys_section(result)}
<h2>Distributions</h2>
<p>{_e(bands_note)}</p>
{"".join(plot_html)}
<h2>Yields</h2>
{_yields_section(totals)}
{samples_html}
<h2>Logs</h2>
<ul>{logs}</ul>
<h2>Provenance of the fit result</h2>
<details><summary>meta</summary><pre>{_e(json.dumps(meta, indent=2))}</pre></details>
<details><summary>git diff</summary><pre>{_e(diff or "(clean)")}</pre></details>"""
    return _page(f"wmass run {name}", body, f"../{PLOTLY_JS}")


def _index_page(runs: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for r in runs:
        pois = "<br>".join(
            f"{_e(p)} = {' ± '.join(_rounded(d.get('value'), d.get('error')))} "
            f"{_e(d.get('unit', ''))}"
            for p, d in r.get("pois", {}).items()
        )
        gof = r.get("gof") or {}
        rows.append(
            [
                f'<a href="{_e(r["name"])}/index.html">{_e(r["name"])}</a>',
                _e(r.get("time", "")),
                pois,
                _e(r.get("status", "")),
                _num(gof.get("p_value"), ".3g"),
                str(r.get("n_parameters", "")),
                f"<code>{_e(r.get('command', ''))}</code>",
            ]
        )
    body = (
        "<h1>wmass fit results</h1>"
        f"<p>{len(runs)} run(s). Each run links to its POIs, impacts, plots and logs.</p>"
        + _history(runs)
        + _table(
            ["run", "fit time", "POIs", "status", "GOF p", "parameters", "command"],
            rows,
            cls="runs",
        )
    )
    return _page("wmass fit results", body, PLOTLY_JS)


def _history(runs: Sequence[Mapping[str, Any]]) -> str:
    """Each POI over the runs, oldest first, with its error bar (a plotly div)."""
    import plotly.graph_objects as go

    names = sorted({p for r in runs for p in r.get("pois", {})})
    parts = []
    for poi in names:
        pts = [r for r in reversed(runs) if poi in r.get("pois", {})]
        unit = pts[0]["pois"][poi].get("unit", "")
        fig = go.Figure(
            go.Scatter(
                x=[r["name"] for r in pts],
                y=[r["pois"][poi].get("value") for r in pts],
                error_y={"type": "data", "array": [r["pois"][poi].get("error") for r in pts]},
                mode="markers",
            )
        )
        fig.update_layout(
            height=300,
            yaxis_title=f"{poi} ({unit})",
            margin={"l": 70, "r": 20, "t": 20, "b": 80},
        )
        parts.append(_plotly_div(fig, f"history-{poi}"))
    return "".join(parts)


@contextlib.contextmanager
def _site_lock(out: Path) -> Iterator[None]:
    """An exclusive lock on the site (``out/.lock``) while its index is read, changed and
    written: two reports into one site at once both land in ``runs.json``."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _update_index(out: Path, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    with _site_lock(out):
        return _update_index_locked(out, entry)


def _update_index_locked(out: Path, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    path = out / RUNS_JSON
    runs: list[dict[str, Any]] = []
    if path.exists():
        try:
            runs = json.loads(path.read_text())["runs"]
        except (ValueError, KeyError, TypeError) as err:
            raise ReportError(f"{path}: not a wmass site index: {err}") from None
    runs = [r for r in runs if r.get("name") != entry["name"]]
    runs.append(dict(entry))
    runs.sort(key=lambda r: (str(r.get("time", "")), r["name"]), reverse=True)
    atomic_write_text(path, json.dumps({"runs": runs}, indent=1))
    atomic_write_text(out / "index.html", _index_page(runs))
    return runs


# ----------------------------------------------------------------------------- API


def write_report(
    fitresult: str | os.PathLike,
    hists: Sequence[str | os.PathLike] = (),
    *,
    out: str | os.PathLike = "site",
    fitinput: str | os.PathLike | None = None,
    name: str | None = None,
    formats: Sequence[str] = ("png", "pdf"),
    command: str | None = None,
    projections: Sequence[str] | None = None,
) -> Path:
    """Add the run of ``fitresult`` to the site in ``out``; return its page ``out/<run>/index.html``.

    ``projections``: which projections of each channel to draw besides the unrolled one, as
    axis names joined by ``-`` (``["pt", "eta-pt"]``); default: one per axis.
    """
    fitresult = Path(fitresult)
    out = Path(out)
    hists = [Path(h) for h in hists]
    for h in hists:
        if not h.is_file():
            raise ReportError(f"{h}: no such histograms file")
    if not fitresult.is_file():
        raise ReportError(f"{fitresult}: no such fit result")
    result = _load_result(fitresult)
    fi_path = _find_fitinput(result, Path(fitinput) if fitinput else None, fitresult)
    bands = None
    if fi_path is not None:
        bands = _Bands(_read_fitinput(fi_path), result)
        note = (
            f"Bands: uncertainty of the total prediction from the covariance propagated through "
            f"the model of {fi_path.name} (pre-fit: unit prior widths; post-fit: the fit's "
            "covariance), exact in every projection."
        )
    else:
        note = (
            "Bands: per-bin uncertainties stored by the fit (unrolled plots only); give "
            "--fitinput for bands on the projections."
        )
    name = name or run_name(result, fitresult)
    run_dir = out / name
    plots_dir = run_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    write_plotly_js(out)
    inputs = [str(fitresult), *(str(h) for h in hists)] + ([str(fi_path)] if fi_path else [])
    meta = provenance(
        args={"fitresult": str(fitresult), "hists": [str(h) for h in hists], "out": str(out)},
        inputs=inputs,
        command=command,
    )
    samples_html, hist_metas = _samples_section(hists)
    inputs_meta = {fitresult.name: result.meta, **hist_metas}
    if projections is not None:
        known = {str(a.get("name")) for y in result.yields.values() for a in y.get("axes") or []}
        for spec in projections:
            missing = [a for a in spec.split("-") if a and a not in known]
            if missing:
                raise ReportError(
                    f"--project {spec}: no channel has axis {missing[0]!r}; axes: {sorted(known)}"
                )
    style, labels = _style_context(result, hists, fi_path)
    plots, totals = _make_plots(
        result, bands, plots_dir, meta, inputs_meta, formats, projections, style, labels
    )
    if fi_path is not None:
        plots += _closure_plots(
            _read_fitinput(fi_path).meta,
            result,
            plots_dir,
            meta,
            inputs_meta,
            formats,
            style,
            labels,
        )
    plots = _fit_plots(result, plots_dir, meta, inputs_meta, formats, style) + plots
    impact_pages = {}
    # one row per nuisance: every parameter but the POIs themselves
    nuis = np.array([p not in result.pois for p in result.parameters], dtype=bool)
    for poi in result.pois:
        imp = result.impacts.get(poi)
        page = f"impacts_{_poi_slug(poi)}.html"
        unit = result.pois[poi].get("unit", "")
        nuisance_page(
            [p for p, keep in zip(result.parameters, nuis, strict=True) if keep],
            np.asarray(result.pulls)[nuis],
            np.asarray(result.constraints)[nuis],
            None if imp is None else np.asarray(imp)[nuis],
            groups=[str(g) for g, keep in zip(result.groups, nuis, strict=True) if keep],
            poi=poi,
            unit=unit or "",
            title=f"{name}: pulls, constraints and impacts on {poi}",
            out=run_dir / page,
            plotly_js=f"../{PLOTLY_JS}",
            header='<nav><a href="index.html">run</a> <a href="../index.html">all runs</a></nav>',
        )
        impact_pages[poi] = page
    page = run_dir / "index.html"
    atomic_write_text(
        page,
        _run_page(name, result, fitresult, plots, totals, samples_html, impact_pages, note),
    )
    atomic_write_text(run_dir / "meta.json", json.dumps(meta, indent=1))
    _update_index(
        out,
        {
            "name": name,
            "time": result.meta.get("time", ""),
            "reported": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "fitresult": str(fitresult),
            "command": result.meta.get("command", ""),
            "status": result.status,
            "pois": {
                p: {"value": d.get("value"), "error": d.get("error"), "unit": d.get("unit", "")}
                for p, d in result.pois.items()
            },
            "gof": {k: float(v) for k, v in (result.gof or {}).items()},
            "n_parameters": len(result.parameters),
        },
    )
    return page


# ----------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("fitresult", type=Path, help="fitresult.h5 written by wmass fit")
    parser.add_argument(
        "hists", type=Path, nargs="*", help="hists.h5 files: sample table and provenance"
    )
    parser.add_argument("--out", type=Path, default=Path("site"), help="the site directory")
    parser.add_argument(
        "--fitinput",
        type=Path,
        default=None,
        help="fitinput.h5 for exact bands on projections; None: the one the fit names",
    )
    parser.add_argument("--name", default=None, help="run name; None: fit time + file stem")
    parser.add_argument(
        "--formats", default="png,pdf", help="comma-separated plot formats (png first)"
    )
    parser.add_argument(
        "--project",
        nargs="+",
        default=None,
        metavar="AXES",
        help="projections besides the unrolled one, axis names joined by '-' "
        "(e.g. pt eta-pt); None: one per axis",
    )


def main(args: argparse.Namespace) -> int:
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    page = write_report(
        args.fitresult,
        args.hists,
        out=args.out,
        fitinput=args.fitinput,
        name=args.name,
        formats=formats or ("png",),
        projections=args.project,
        command="wmass " + shlex.join(sys.argv[1:]) if sys.argv[1:] else None,
    )
    print(f"[report] wrote {page}")
    print(f"[report] index {Path(args.out) / 'index.html'}")
    return 0
