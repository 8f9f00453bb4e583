"""The HTML of the site: the run page, the index of runs and their sections; small helpers
that escape every string that comes from an input (:func:`esc`)."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analysis.report.errors import ReportError
from analysis.report.plots import PLOTLY_JS
from analysis.report.runplots import Plot
from analysis.report.style import pdg_round
from processors.errors import WMassError

__all__ = [
    "CSS",
    "esc",
    "html_page",
    "index_page",
    "num",
    "rounded_pair",
    "run_page",
    "samples_section",
    "table",
]

CSS = """body{font-family:sans-serif;margin:1.2em;max-width:1400px}
table{border-collapse:collapse;font-size:13px;margin:.5em 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#eee} td:first-child,th:first-child{text-align:left}
.plots{display:flex;flex-wrap:wrap;gap:12px}
.plot{width:440px;font-size:12px} .plot img{width:100%;border:1px solid #ddd}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:12px}
nav a{margin-right:1em}
.flags{border:1px solid #bbb;background:#fafafa;padding:.3em 1em;margin:.8em 0}
.flags ul{list-style:none;padding-left:0;font-size:14px} .flags li{margin:.25em 0}
.flags ul.gof{padding-left:1.6em;margin:.2em 0}
.flags .warn{color:#9a5b00} .flags .bad{color:#b00020} .flags .ok{color:#1b6e20}"""


def esc(x: Any) -> str:
    return html.escape(str(x))


def num(x: Any, fmt: str = ".6g") -> str:
    if x is None:
        return ""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return esc(x)
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


def html_page(title: str, body: str, plotly_src: str | None) -> str:
    script = f'<script src="{esc(plotly_src)}"></script>' if plotly_src else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title>{script}<style>{CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def plotly_div(fig: Any, div_id: str) -> str:
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
            [esc(k), error_text(glob[k]), error_text(trad.get(k)) if k in trad else ""]
            for k in [*names, "total"]
            if k in glob
        ]
        parts.append(f"<h3>Global impacts on {esc(poi)} ({esc(unit)})</h3>")
        parts.append(
            table(["group", f"global impact ({unit})", f"traditional impact ({unit})"], rows)
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
        parts.append(plotly_div(fig, f"global-{poi}"))
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
        parts.append(plotly_div(fig, f"scan-{poi}"))
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
                esc(poi),
                str(int(good.sum())),
                num(np.mean(vals), ".6g"),
                num(np.std(vals, ddof=1), ".4g"),
                num(np.median(errs), ".4g"),
                num(np.std(vals, ddof=1) / np.median(errs), ".3f"),
                num(np.std(pulls, ddof=1), ".3f"),
                esc(unit),
            ]
        )
        fig = go.Figure(go.Histogram(x=vals, nbinsx=max(10, int(np.sqrt(vals.size)) * 2)))
        fig.update_layout(
            height=320,
            xaxis_title=f"{poi} in toys ({unit})",
            yaxis_title="toys",
            margin={"l": 60, "r": 20, "t": 30, "b": 50},
        )
        parts.append(plotly_div(fig, f"toys-{poi}"))
    header = ["POI", "toys", "mean", "spread", "median error", "spread / error"]
    header += ["pull width", "unit"]
    parts.insert(1, table(header, rows, cls="toys"))
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
                    esc(p),
                    num(t["prefit"][i], ".2f"),
                    num(pre_e, ".2f"),
                    num(t["postfit"][i], ".2f"),
                    num(post_e, ".2f"),
                ]
            )
        rows.append(
            [
                "<b>Total</b>",
                num(np.sum(t["prefit"]), ".2f"),
                num(t.get("prefit_total_err"), ".2f"),
                num(np.sum(t["postfit"]), ".2f"),
                num(t.get("postfit_total_err"), ".2f"),
            ]
        )
        if t.get("data") is not None:
            d = float(t["data"])
            rows.append(["<b>Data</b>", num(d, ".0f"), num(np.sqrt(d), ".2f"), "", ""])
        parts.append(f"<h3>{esc(channel)}</h3>")
        parts.append(table(["process", "pre-fit", "±", "post-fit", "±"], rows, cls="yields"))
    return "\n".join(parts)


def samples_section(hists: Sequence[Path]) -> tuple[str, dict[str, dict[str, Any]]]:
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
                    esc(name),
                    "data" if ds["is_data"] else "MC",
                    num(ds.get("xsec_pb"), ".6g"),
                    f"{ds['events_read']:,}",
                    f"{ds['events_selected']:,}",
                    num(ds["sumw"], ".6g"),
                    num(ds.get("lumi_pb"), ".6g"),
                    str(len(ds["files_processed"])),
                    str(len(ds["files_failed"])),
                ]
            )
        parts.append(f"<h3>{esc(path.name)}</h3>")
        header = ["dataset", "kind", "xsec (pb)", "events read", "selected", "sum w"]
        header += ["lumi (pb⁻¹)", "files", "failed files"]
        parts.append(table(header, rows))
    return "\n".join(parts), metas


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
    """The page of one run: flags, POIs, goodness of fit, impacts, figures, yields, samples,
    logs and provenance. ``flags_html`` and ``gof_html``: the flags box and the goodness-of-fit
    section (:mod:`analysis.report.flags`), already escaped."""
    pois = [
        [esc(p), *rounded_pair(d.get("value"), d.get("error")), esc(d.get("unit", ""))]
        for p, d in result.pois.items()
    ]
    status = [
        ["status", esc(result.status)],
        ["NLL", num(result.nll, ".2f")],
        ["EDM", num(result.edm, ".3g")],
        ["parameters", str(len(result.parameters))],
        ["minimizer", esc(result.minimizer)],
        ["fit time (s)", num(result.time, ".3g")],
        ["data", esc(result.data)],
    ]
    links = "".join(
        f'<li><a href="{esc(page)}">pulls, constraints and impacts on {esc(poi)}</a> '
        f"({len(result.parameters) - len(result.pois)} nuisances, searchable)</li>"
        for poi, page in impact_pages.items()
    )
    by_channel: dict[str, list[Plot]] = {}
    for p in plots:
        by_channel.setdefault(p.channel, []).append(p)
    plot_html = []
    for channel, ps in by_channel.items():
        plot_html.append(f"<h3>{esc(channel)}</h3><div class='plots'>")
        for p in ps:
            pdf = f' · <a href="plots/{esc(p.pdf)}">pdf</a>' if p.pdf else ""
            plot_html.append(
                f'<div class="plot"><a href="plots/{esc(p.png)}"><img src="plots/{esc(p.png)}" '
                f'alt="{esc(p.title)}" loading="lazy"></a><br>{esc(p.title)} · '
                f'<a href="plots/{esc(p.log)}">log</a>{pdf}</div>'
            )
        plot_html.append("</div>")
    meta = dict(result.meta)
    diff = meta.pop("git_diff", "")
    logs = "".join(f'<li><a href="plots/{esc(p.log)}">{esc(p.log)}</a></li>' for p in plots)
    body = f"""<nav><a href="../index.html">all runs</a></nav>
<h1>Fit result {esc(name)}</h1>
<p>From <code>{esc(fitresult)}</code>, made by <code>{esc(meta.get("command", ""))}</code>
at {esc(meta.get("time", ""))}, git {esc(str(meta.get("git_hash", ""))[:12])}.</p>
{flags_html}
<h2>Parameters of interest</h2>
{table(["POI", "value", "uncertainty", "unit"], pois, cls="pois")}
{gof_html}
{table(["fit", ""], status)}
<h2>Impacts</h2>
<ul>{links}</ul>
{_global_impacts_section(result)}
{_scans_section(result)}
{_toys_section(result)}
<h2>Distributions</h2>
<p>{esc(bands_note)}</p>
{"".join(plot_html)}
<h2>Yields</h2>
{_yields_section(totals)}
{samples_html}
<h2>Logs</h2>
<ul>{logs}</ul>
<h2>Provenance of the fit result</h2>
<details><summary>meta</summary><pre>{esc(json.dumps(meta, indent=2))}</pre></details>
<details><summary>git diff</summary><pre>{esc(diff or "(clean)")}</pre></details>"""
    return html_page(f"wmass run {name}", body, f"../{PLOTLY_JS}")


def index_page(runs: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for r in runs:
        pois = "<br>".join(
            f"{esc(p)} = {' ± '.join(rounded_pair(d.get('value'), d.get('error')))} "
            f"{esc(d.get('unit', ''))}"
            for p, d in r.get("pois", {}).items()
        )
        gof = r.get("gof") or {}
        rows.append(
            [
                f'<a href="{esc(r["name"])}/index.html">{esc(r["name"])}</a>',
                esc(r.get("time", "")),
                pois,
                esc(r.get("status", "")),
                num(gof.get("p_value"), ".3g"),
                str(r.get("n_parameters", "")),
                f"<code>{esc(r.get('command', ''))}</code>",
            ]
        )
    body = (
        "<h1>wmass fit results</h1>"
        f"<p>{len(runs)} run(s). Each run links to its POIs, impacts, plots and logs.</p>"
        + _history(runs)
        + table(
            ["run", "fit time", "POIs", "status", "GOF p", "parameters", "command"],
            rows,
            cls="runs",
        )
    )
    return html_page("wmass fit results", body, PLOTLY_JS)


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
        parts.append(plotly_div(fig, f"history-{poi}"))
    return "".join(parts)
