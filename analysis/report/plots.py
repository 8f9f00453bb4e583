"""Plots people would rather look at than read: stacks with a ratio panel, pulls and impacts.

Everything here works on plain arrays so it serves any projection of any fit: the report
(``analysis.report.site``) feeds it post-fit yields and covariance-based bands. Every plot is
written with a ``.log`` beside it (:func:`write_plot_log`): the command, a yields table with
uncertainties, the inputs' provenance, git hash and diff — so each plot can be reproduced.

>>> import numpy as np
>>> edges = np.linspace(26, 56, 31)
>>> stack = {"W": np.full(30, 100.0), "QCD": np.full(30, 10.0)}
>>> paths = stack_plot(edges, stack, data=np.full(30, 112.0), out="/tmp/x")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from analysis.report.canvas import pyplot
from analysis.report.render import Markup, render_page
from analysis.report.style import (
    Figure,
    exp_label,
    process_label,
    save_figure,
    style_kwargs,
)
from fit.provenance import atomic_write_text

__all__ = [
    "PALETTE",
    "PLOTLY_JS",
    "band_from_covariance",
    "closure_plot",
    "nuisance_page",
    "project",
    "stack_plot",
    "unroll",
    "write_plot_log",
    "write_plotly_js",
    "yields_table",
]

#: The CMS 10-colour palette (colour-blind safe), one colour per process in input order.
PALETTE = (
    "#3f90da",
    "#ffa90e",
    "#bd1f01",
    "#94a4a2",
    "#832db6",
    "#a96b59",
    "#e76300",
    "#b9ac70",
    "#717581",
    "#92dadd",
)

#: File name of the plotly bundle every HTML page loads from its own directory (no CDN).
PLOTLY_JS = "plotly.min.js"


def unroll(values: np.ndarray, axis_names: Sequence[str]) -> tuple[np.ndarray, str]:
    """Flatten an N-D array of bin contents (C order) into 1D, with an axis label saying how.

    >>> unroll(np.arange(6).reshape(2, 3), ["eta", "pt"])[1]
    'unrolled bin (eta x pt, pt fastest)'
    """
    values = np.asarray(values)
    if values.ndim == 1:
        return values, axis_names[0] if axis_names else "bin"
    label = f"unrolled bin ({' x '.join(axis_names)}, {axis_names[-1]} fastest)"
    return values.reshape(-1), label


def project(values: np.ndarray, shape: Sequence[int], keep: Sequence[int]) -> np.ndarray:
    """Sum flat bin contents ``values[nbins, ...]`` (C order over ``shape``) onto the axes ``keep``.

    Trailing dimensions of ``values`` (e.g. processes) are kept. ``keep=()`` gives the total.

    >>> project(np.arange(6.0), (2, 3), keep=[1]).tolist()
    [3.0, 5.0, 7.0]
    """
    values = np.asarray(values)
    tail = values.shape[1:]
    full = values.reshape(*shape, *tail)
    drop = tuple(i for i in range(len(shape)) if i not in set(keep))
    out = full.sum(axis=drop) if drop else full
    return out.reshape(-1, *tail) if keep else out.reshape(1, *tail)


def band_from_covariance(jacobian: Any, covariance: np.ndarray) -> np.ndarray:
    """Uncertainty per row of ``y = f(x)`` from the parameters' covariance, linearised.

    ``jacobian`` is ``dy/dx`` ``[n, K]`` (dense or scipy.sparse), ``covariance`` ``[K, K]``
    (or its diagonal ``[K]``, e.g. the priors): returns ``sqrt(diag(J C J^T))``, so
    correlations between nuisances (e.g. anticorrelated normalisations after the fit) shrink
    or grow the band of a sum of bins correctly.
    """
    jac = jacobian.toarray() if hasattr(jacobian, "toarray") else np.asarray(jacobian, float)
    cov = np.asarray(covariance, dtype=float)
    if cov.ndim == 1:
        var = np.einsum("ik,ik->i", jac * cov, jac)
    else:
        var = np.einsum("ik,ik->i", jac @ cov, jac)
    return np.sqrt(np.clip(var, 0.0, None))


def yields_table(
    stack: Mapping[str, np.ndarray],
    errors: Mapping[str, float] | None = None,
    data: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Per-process yields (sum over bins) with uncertainties, plus the total and data."""
    errors = errors or {}
    rows = [
        {"process": name, "yield": float(np.sum(v)), "uncertainty": errors.get(name)}
        for name, v in stack.items()
    ]
    total = float(sum(np.sum(v) for v in stack.values()))
    rows.append({"process": "Total", "yield": total, "uncertainty": errors.get("Total")})
    if data is not None:
        n = float(np.sum(data))
        rows.append({"process": "Data", "yield": n, "uncertainty": float(np.sqrt(max(n, 0)))})
    return rows


def _format_yields(rows: list[dict[str, Any]]) -> str:
    width = max(12, *(len(r["process"]) for r in rows))
    lines = [f"{'Process':<{width}} {'Yield':>16} {'Uncertainty':>14}"]
    for r in rows:
        unc = "" if r["uncertainty"] is None else f"{r['uncertainty']:14.2f}"
        lines.append(f"{r['process']:<{width}} {r['yield']:16.2f} {unc}")
    return "\n".join(lines)


def write_plot_log(
    plot: str | os.PathLike,
    *,
    meta: Mapping[str, Any],
    yields: list[dict[str, Any]] | None = None,
    inputs_meta: Mapping[str, Mapping[str, Any]] | None = None,
    extra: str = "",
) -> Path:
    """Write ``<plot>.log``: command, time, yields, git hash and diff, and the inputs' provenance."""
    plot = Path(plot)
    log = plot.with_suffix(".log")
    parts = [
        "-" * 72,
        f"Script called at {meta.get('time', '')}",
        f"The command was: {meta.get('command', '')}",
        f"Git commit: {meta.get('git_hash', '')}",
    ]
    if yields:
        parts += ["-" * 72, "Yields", "-" * 72, _format_yields(yields)]
    if extra:
        parts += ["-" * 72, extra]
    for name, m in (inputs_meta or {}).items():
        parts += ["-" * 72, f"Meta info from input file {name}", "-" * 72]
        parts.append(json.dumps({k: v for k, v in m.items() if k != "git_diff"}, indent=2))
    parts += ["-" * 72, "git diff of the code that made this plot:", meta.get("git_diff", "") or ""]
    atomic_write_text(log, "\n".join(parts) + "\n")
    return log


def stack_plot(
    edges: np.ndarray,
    stack: Mapping[str, np.ndarray],
    *,
    data: np.ndarray | None = None,
    band: np.ndarray | None = None,
    xlabel: str = "bin",
    ylabel: str = "Events / bin",
    title: str = "",
    out: str | os.PathLike,
    formats: Sequence[str] = ("png", "pdf"),
    logy: bool = False,
    xticklabels: Sequence[str] | None = None,
    style: Mapping[str, Any] | None = None,
) -> Figure:
    """A stacked distribution with data points and a data/prediction ratio panel.

    ``band`` is the absolute uncertainty of the total prediction per bin (e.g. post-fit, from
    the covariance); it is drawn as a hatched band on the stack and on the ratio.
    ``xticklabels``: a categorical axis (one label per bin, e.g. ``$\\mu^-$``, ``$\\mu^+$``).
    ``style``: the experiment label's ``data`` (False: simulation) and ``lumi_pb``.
    Process names are drawn in LaTeX (:func:`~analysis.report.style.process_label`).
    Returns the written paths; ``.figure`` is the matplotlib figure.
    """
    import mplhep

    plt = pyplot()
    edges = np.asarray(edges, dtype=float)
    names = list(stack)
    values = [np.asarray(stack[n], dtype=float) for n in names]
    total = np.sum(values, axis=0) if values else np.zeros(len(edges) - 1)
    fig, (ax, rax) = plt.subplots(
        2, 1, figsize=(10, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
    )
    order = np.argsort([v.sum() for v in values])  # smallest at the bottom of the legend
    mplhep.histplot(
        [values[i] for i in order],
        edges,
        stack=True,
        histtype="fill",
        label=[process_label(names[i]) for i in order],
        color=[PALETTE[i % len(PALETTE)] for i in order],
        ax=ax,
    )
    ratio_ref = np.where(total > 0, total, np.nan)
    if band is not None:
        band = np.asarray(band, dtype=float)
        kw = {"step": "post", "facecolor": "none", "edgecolor": "grey", "hatch": "////", "lw": 0}
        if len(edges) > 300:  # hatching thousands of unrolled bins is slow and unreadable
            kw = {"step": "post", "facecolor": "grey", "alpha": 0.35, "lw": 0}
        ax.fill_between(edges, np.r_[total - band, 0], np.r_[total + band, 0], label="Unc.", **kw)
        rel = band / ratio_ref
        rax.fill_between(edges, np.r_[1 - rel, 1], np.r_[1 + rel, 1], **kw)
    if data is not None:
        data = np.asarray(data, dtype=float)
        centres = 0.5 * (edges[1:] + edges[:-1])
        err = np.sqrt(np.clip(data, 0, None))
        many = len(centres) > 300  # unrolled 2D: points only, error bars would be a black wall
        ms = 1.5 if many else 3
        ax.errorbar(centres, data, yerr=None if many else err, fmt="ko", ms=ms, label="Data")
        ratio = data / ratio_ref
        rax.errorbar(centres, ratio, yerr=None if many else err / ratio_ref, fmt="ko", ms=ms)
        # the ratio range follows the bulk of the points, not a bin with a tiny prediction
        lo, hi = np.nanpercentile(ratio, [2, 98]) if np.isfinite(ratio).any() else (1, 1)
        half = float(np.clip(1.3 * max(abs(1 - lo), abs(hi - 1)), 0.02, 1.5))
        rax.set_ylim(max(1 - half, 0.0), 1 + half)
    rax.axhline(1.0, color="k", lw=0.8)
    rax.set_ylabel("Data / Pred.")
    rax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    entries = len(names) + (band is not None) + (data is not None)
    ncol = 3 if entries > 6 else 2
    legend_rows = -(-entries // ncol)
    if logy:
        ax.set_yscale("log")
    else:  # room for the legend above the tallest bin
        top = max(float(np.max(total + (band if band is not None else 0), initial=0)), 1.0)
        if data is not None:
            top = max(top, float(np.max(data + np.sqrt(np.clip(data, 0, None)), initial=0)))
        ax.set_ylim(0, top * (1.3 + 0.12 * legend_rows))
    ax.legend(
        ncol=ncol, fontsize="small", loc="upper right", title=title or None, title_fontsize="small"
    )
    if xticklabels is not None:
        centres = 0.5 * (edges[1:] + edges[:-1])
        rax.set_xticks(centres, list(xticklabels))
        rax.minorticks_off()
        ax.minorticks_off()
    exp_label(ax, **style_kwargs(style))
    return Figure.of(fig, save_figure(fig, out, formats))


def closure_plot(
    edges: np.ndarray,
    estimate: np.ndarray,
    truth: np.ndarray,
    variance: np.ndarray,
    *,
    xlabel: str,
    title: str = "",
    ylabel: str = "Events / bin",
    out: str | os.PathLike,
    formats: Sequence[str] = ("png", "pdf"),
    style: Mapping[str, Any] | None = None,
) -> Figure:
    """An estimate against the truth it should reproduce (e.g. the nonprompt background
    against the QCD simulation), with the pull ``(estimate - truth) / sqrt(variance)`` per
    bin below and the chi2/ndf in the legend."""
    import mplhep

    plt = pyplot()
    edges = np.asarray(edges, dtype=float)
    est, tru, var = (np.asarray(a, dtype=float) for a in (estimate, truth, variance))
    sigma = np.sqrt(np.clip(var, 0, None))
    pull = np.divide(est - tru, sigma, out=np.zeros_like(est), where=sigma > 0)
    used = sigma > 0
    fig, (ax, rax) = plt.subplots(
        2, 1, figsize=(10, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
    )
    centres = 0.5 * (edges[1:] + edges[:-1])
    mplhep.histplot(est, edges, ax=ax, color=PALETTE[0], label="Estimate (from data)")
    kw = {"step": "post", "facecolor": PALETTE[0], "alpha": 0.3, "lw": 0}
    ax.fill_between(
        edges,
        np.r_[est - sigma, 0],
        np.r_[est + sigma, 0],
        label="Unc. (estimate $\\oplus$ simulation)",
        **kw,
    )
    ax.errorbar(centres, tru, fmt="ko", ms=3, label="QCD simulation")
    chi2 = float(np.sum(pull[used] ** 2))
    ax.plot([], [], " ", label=f"$\\chi^2$/ndf = {chi2:.1f}/{int(used.sum())}")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, max(float(np.max(np.r_[est + sigma, tru], initial=0)), 1.0) * 1.8)
    ax.legend(fontsize="small", loc="upper right", title=title or None, title_fontsize="small")
    exp_label(ax, **style_kwargs(style))
    rax.bar(centres, pull, width=np.diff(edges), color="grey")
    for y in (-2, 0, 2):
        rax.axhline(y, color="k", lw=0.8, ls="-" if y == 0 else ":")
    rax.set_ylim(-4, 4)
    rax.set_ylabel("Pull")
    rax.set_xlabel(xlabel)
    return Figure.of(fig, save_figure(fig, out, formats))


def write_plotly_js(directory: str | os.PathLike) -> Path:
    """Copy plotly's JavaScript bundle into ``directory`` so pages work offline (no CDN)."""
    from plotly.offline import get_plotlyjs

    path = Path(directory) / PLOTLY_JS
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, get_plotlyjs())
    return path


def nuisance_page(
    names: Sequence[str],
    pulls: np.ndarray,
    constraints: np.ndarray,
    impacts: np.ndarray | None = None,
    *,
    groups: Sequence[str] | None = None,
    labels: Sequence[str] | None = None,
    poi: str = "mW",
    unit: str = "MeV",
    title: str = "Nuisance parameters",
    out: str | os.PathLike,
    plotly_js: str | None = None,
    header: str = "",
) -> Path:
    """An interactive page of all nuisances: pull, constraint and impact, searchable and sortable.

    Usable with thousands of rows: the plot shows one page at a time (sorted by impact by
    default), the search box and the group selector filter it, and the table below lists every
    row; column headers sort. Plotly is loaded from ``plotly.min.js`` beside the page, or
    from ``plotly_js`` (a relative URL, e.g. ``"../plotly.min.js"``: the caller serves it).
    ``header`` is HTML put above the controls (e.g. a link back to the run page).
    ``labels``: what a person reads for each nuisance (its physical ranges,
    :func:`analysis.report.names.display_name`); the raw name stays the tooltip and is
    searchable too. Default: the names. The page is ``templates/nuisances.html`` (autoescape;
    the rows reach its script as JSON with ``<``, ``>`` and ``&`` escaped).
    """
    n = len(names)
    groups = list(groups) if groups is not None else [""] * n
    impacts_arr = np.full(n, np.nan) if impacts is None else np.asarray(impacts, dtype=float)

    def _num(x: float) -> float | None:
        return None if not np.isfinite(x) else float(x)

    rows = [
        {
            "name": str(names[i]),
            "label": str(names[i] if labels is None else labels[i]),
            "group": str(groups[i]),
            "pull": _num(pulls[i]),
            "constraint": _num(constraints[i]),
            "impact": _num(impacts_arr[i]),
        }
        for i in range(n)
    ]
    out = Path(out)
    if plotly_js is None:
        write_plotly_js(out.parent)
        plotly_js = PLOTLY_JS
    page = render_page(
        "nuisances.html",
        title=title,
        plotly_js=plotly_js,
        header=Markup(header),
        groups=sorted({g for g in groups if g}),
        unit=unit,
        poi=poi,
        rows=rows,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, page)
    return out
