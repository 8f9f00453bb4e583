"""The HTML of the site: the run page, the index of runs and their sections, rendered from the
jinja2 templates in ``analysis/report/templates/`` with autoescape (:mod:`analysis.report.render`):
every string that comes from an input is escaped where it lands. This module only gathers the
values (numbers formatted and rounded here, as strings) and the plotly figures."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analysis.report.errors import ReportError
from analysis.report.files import safe_filename
from analysis.report.plots import PLOTLY_JS
from analysis.report.render import TEMPLATES, Markup, render, render_page
from analysis.report.runplots import Plot
from analysis.report.style import pdg_round
from processors.errors import WMassError

__all__ = [
    "CSS",
    "index_page",
    "num",
    "plotly_text",
    "rounded_pair",
    "run_page",
    "samples_section",
]

#: the site's style sheet (``templates/style.css``, included by ``templates/base.html``)
CSS = (TEMPLATES / "style.css").read_text(encoding="utf-8").rstrip("\n")


def plotly_text(x: Any) -> str:
    """``x`` as plotly text (titles, tick labels): plotly reads a few HTML tags and entities in
    them, so ``<``, ``>`` and ``&`` are escaped and a name from an input is drawn literally."""
    return html.escape(str(x), quote=False)


def num(x: Any, fmt: str = ".6g") -> str:
    """``x`` formatted with ``fmt`` (not escaped: the templates escape); ``""`` for None."""
    if x is None:
        return ""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return format(v, fmt) if np.isfinite(v) else str(v)


def rounded_pair(value: Any, error: Any) -> list[str]:
    """``[value, error]`` rounded by the PDG rule (full precision stays in runs.json)."""
    try:
        return list(pdg_round(float(value), float(error)))
    except (TypeError, ValueError):
        return [num(value), num(error)]


def error_text(x: Any) -> str:
    """An uncertainty as a person reads it: rounded by the PDG rule (``64.11`` -> ``60``,
    ``0.4881`` -> ``0.5``, ``157.2`` -> ``160``)."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return num(x)
    if not np.isfinite(v) or v <= 0:
        return num(v, ".3g")
    return pdg_round(v, v)[1]


def plotly_div(fig: Any, div_id: str) -> Markup:
    """A plotly figure as a ``<div>`` (its data as plotly's own escaped JSON). ``div_id`` must be
    safe as it is (:func:`analysis.report.files.safe_filename` of any name in it)."""
    return Markup(fig.to_html(include_plotlyjs=False, full_html=False, div_id=div_id))


def _global_impacts(result: Any) -> list[dict[str, Any]]:
    """Per POI: its unit, the table rows (group, global, traditional) and the bar chart."""
    import plotly.graph_objects as go

    out = []
    for poi, glob in result.global_impacts.items():
        unit = result.pois.get(poi, {}).get("unit", "")
        trad = result.group_impacts.get(poi, {})
        names = [k for k in glob if k != "total"]
        names.sort(key=lambda k: -abs(float(glob[k])))
        rows = [
            [k, error_text(glob[k]), error_text(trad.get(k)) if k in trad else ""]
            for k in [*names, "total"]
            if k in glob
        ]
        fig = go.Figure(
            go.Bar(
                x=[float(glob[k]) for k in names][::-1],
                y=[plotly_text(k) for k in names][::-1],
                orientation="h",
                marker_color="#1f77b4",
            )
        )
        fig.update_layout(
            height=max(250, 28 * len(names) + 100),
            margin={"l": 160, "r": 20, "t": 30, "b": 40},
            xaxis_title=plotly_text(f"global impact on {poi} ({unit})"),
        )
        div = plotly_div(fig, f"global-{safe_filename(poi)}")
        out.append({"poi": poi, "unit": unit, "rows": rows, "div": div})
    return out


def _scans(result: Any) -> list[Markup]:
    """A plotly figure of -2 Delta ln L per scanned POI."""
    if not result.scans:
        return []
    import plotly.graph_objects as go

    divs = []
    for poi, s in result.scans.items():
        unit = result.pois.get(poi, {}).get("unit", "")
        fig = go.Figure(go.Scatter(x=np.asarray(s["values"]), y=2 * np.asarray(s["dnll"])))
        fig.update_layout(
            height=350,
            xaxis_title=plotly_text(f"{poi} ({unit})"),
            yaxis_title="-2 Δ ln L",
            margin={"l": 60, "r": 20, "t": 30, "b": 50},
        )
        divs.append(plotly_div(fig, f"scan-{safe_filename(poi)}"))
    return divs


def _toys(result: Any) -> dict[str, Any] | None:
    """Pseudo-experiments (``wmass fit --toys N``): the POI's spread against its fitted error;
    None without toys."""
    toys = result.toys or {}
    if "values" not in toys:
        return None
    import plotly.graph_objects as go

    status = list(toys.get("status", []))
    rows, divs = [], []
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
                poi,
                str(int(good.sum())),
                num(np.mean(vals), ".6g"),
                num(np.std(vals, ddof=1), ".4g"),
                num(np.median(errs), ".4g"),
                num(np.std(vals, ddof=1) / np.median(errs), ".3f"),
                num(np.std(pulls, ddof=1), ".3f"),
                unit,
            ]
        )
        fig = go.Figure(go.Histogram(x=vals, nbinsx=max(10, int(np.sqrt(vals.size)) * 2)))
        fig.update_layout(
            height=320,
            xaxis_title=plotly_text(f"{poi} in toys ({unit})"),
            yaxis_title="toys",
            margin={"l": 60, "r": 20, "t": 30, "b": 50},
        )
        divs.append(plotly_div(fig, f"toys-{safe_filename(poi)}"))
    converged = sum(1 for s in status if s == "converged")
    return {"converged": converged, "total": len(status), "rows": rows, "divs": divs}


def _yields(totals: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per channel: a row per process (pre- and post-fit with errors), the total, the data."""
    out = []
    for channel, t in totals.items():
        rows = [
            [
                p,
                num(t["prefit"][i], ".2f"),
                num(t["prefit_err"].get(p), ".2f"),
                num(t["postfit"][i], ".2f"),
                num(t["postfit_err"].get(p), ".2f"),
            ]
            for i, p in enumerate(t["processes"])
        ]
        total = [
            num(np.sum(t["prefit"]), ".2f"),
            num(t.get("prefit_total_err"), ".2f"),
            num(np.sum(t["postfit"]), ".2f"),
            num(t.get("postfit_total_err"), ".2f"),
        ]
        data = None
        if t.get("data") is not None:
            d = float(t["data"])
            data = [num(d, ".0f"), num(np.sqrt(d), ".2f"), "", ""]
        out.append({"channel": channel, "rows": rows, "total": total, "data": data})
    return out


def samples_section(hists: Sequence[Path]) -> tuple[str, dict[str, dict[str, Any]]]:
    """The samples table of each histograms file (HTML, ``""`` without any) and their
    provenance records by file name."""
    if not hists:
        return "", {}
    from analysis.io import describe

    files, metas = [], {}
    for path in hists:
        try:
            d = describe(path)
        except WMassError as err:
            raise ReportError(f"{path}: not a histograms file: {err}") from None
        metas[path.name] = d.get("meta", {})
        rows = [
            [
                name,
                "data" if ds["is_data"] else "MC",
                num(ds.get("xsec_pb"), ".6g"),
                f"{ds['events_read']:,}",
                f"{ds['events_selected']:,}",
                num(ds["sumw"], ".6g"),
                num(ds.get("lumi_pb"), ".6g"),
                str(len(ds["files_processed"])),
                str(len(ds["files_failed"])),
            ]
            for name, ds in d["datasets"].items()
        ]
        files.append({"name": path.name, "rows": rows})
    return render("samples.html", files=files), metas


def run_page(
    name: str,
    result: Any,
    fitresult: Path,
    plots: Sequence[Plot],
    totals: Mapping[str, Any],
    samples_html: str,
    impact_pages: Mapping[str, str],
    bands_note: str,
    flags_html: str = "",
    gof_html: str = "",
) -> str:
    """The page of one run (``templates/run.html``): flags, POIs, goodness of fit, impacts,
    figures, yields, samples, logs and provenance. ``samples_html``, ``flags_html`` and
    ``gof_html``: the samples table (:func:`samples_section`), the flags box and the
    goodness-of-fit section (:mod:`analysis.report.flags`), HTML already escaped."""
    meta = dict(result.meta)
    diff = meta.pop("git_diff", "")
    by_channel: dict[str, list[Plot]] = {}
    for p in plots:
        by_channel.setdefault(p.channel, []).append(p)
    return render_page(
        "run.html",
        title=f"wmass run {name}",
        plotly_src=f"../{PLOTLY_JS}",
        name=name,
        fitresult=str(fitresult),
        command=meta.get("command", ""),
        time=meta.get("time", ""),
        git_hash=str(meta.get("git_hash", ""))[:12],
        flags_html=Markup(flags_html),
        gof_html=Markup(gof_html),
        samples_html=Markup(samples_html),
        blinding=str(result.meta.get("blinding", "")),
        pois=[
            [
                f"{p} (blinded)" if d.get("blinded") else p,
                *rounded_pair(d.get("value"), d.get("error")),
                d.get("unit", ""),
            ]
            for p, d in result.pois.items()
        ],
        status=[
            ["status", result.status],
            ["NLL", num(result.nll, ".2f")],
            ["EDM", num(result.edm, ".3g")],
            ["parameters", str(len(result.parameters))],
            ["minimizer", result.minimizer],
            ["fit time (s)", num(result.time, ".3g")],
            ["data", result.data],
        ],
        impact_links=[{"poi": poi, "page": page} for poi, page in impact_pages.items()],
        n_nuisances=len(result.parameters) - len(result.pois),
        global_impacts=_global_impacts(result),
        scans=_scans(result),
        toys=_toys(result),
        bands_note=bands_note,
        plot_groups=[{"channel": c, "plots": ps} for c, ps in by_channel.items()],
        yields=_yields(totals),
        plots=list(plots),
        meta_json=json.dumps(meta, indent=2),
        diff=diff or "(clean)",
    )


def index_page(runs: Sequence[Mapping[str, Any]]) -> str:
    """The index of runs (``templates/index.html``): each POI over the runs, a table of runs."""
    rows = []
    for r in runs:
        gof = r.get("gof") or {}
        pois = []
        for p, d in r.get("pois", {}).items():
            value, error = rounded_pair(d.get("value"), d.get("error"))
            pois.append(
                {
                    "name": p,
                    "value": value,
                    "error": error,
                    "unit": d.get("unit", ""),
                    "blinded": bool(d.get("blinded")),
                }
            )
        rows.append(
            {
                "name": r["name"],
                "href": f"{r['name']}/index.html",
                "time": r.get("time", ""),
                "pois": pois,
                "status": r.get("status", ""),
                "gof_p": num(gof.get("p_value"), ".3g"),
                "n_parameters": str(r.get("n_parameters", "")),
                "command": r.get("command", ""),
            }
        )
    return render_page(
        "index.html",
        title="wmass fit results",
        plotly_src=PLOTLY_JS,
        runs=rows,
        history=_history(runs),
    )


def _history(runs: Sequence[Mapping[str, Any]]) -> list[Markup]:
    """Each POI over the runs, oldest first, with its error bar (a plotly div per POI)."""
    import plotly.graph_objects as go

    names = sorted({p for r in runs for p in r.get("pois", {})})
    divs = []
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
            yaxis_title=plotly_text(f"{poi} ({unit})"),
            margin={"l": 70, "r": 20, "t": 20, "b": 80},
        )
        divs.append(plotly_div(fig, f"history-{safe_filename(poi)}"))
    return divs
