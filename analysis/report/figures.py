"""Static figures of a fit for slides: the impact ranking (Combine-style), the likelihood scan
with its Hessian parabola, the pulls of all nuisances against N(0,1), the correlation matrix
of the POIs and the leading nuisances, 2D pull maps (pT x eta per charge), the ratios of the
signal's m_W +- 100 MeV templates to its nominal, and the m_W comparison with the published
measurements.

Each function draws on plain arrays, writes PNG (for the page) and PDF (for slides) and
returns the paths with the matplotlib figure as ``.figure``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from analysis.report.canvas import pyplot
from analysis.report.style import (
    Figure,
    axis_label,
    charge_labels,
    exp_label,
    lumi_text,
    pdg_round,
    save_figure,
    style_kwargs,
)

__all__ = [
    "correlation_plot",
    "impact_ranking_plot",
    "mw_comparison_plot",
    "pull_maps",
    "pulls_histogram",
    "scan_plot",
    "template_ratio_plot",
    "top_nuisances",
]


def _tex_safe(name: str) -> str:
    """A name drawn as plain text (``$`` would start mathtext)."""
    return str(name).replace("$", r"\$")


def top_nuisances(impacts: np.ndarray, is_nuisance: np.ndarray, n: int = 30) -> np.ndarray:
    """Indices of the ``n`` nuisances with the largest ``|impact|``, largest first."""
    imp = np.where(np.asarray(is_nuisance, bool), np.abs(np.nan_to_num(impacts)), -1.0)
    order = np.argsort(-imp, kind="stable")
    return order[: min(n, int(np.sum(np.asarray(is_nuisance, bool))))]


def impact_ranking_plot(
    names: Sequence[str],
    pulls: np.ndarray,
    constraints: np.ndarray,
    impacts: np.ndarray,
    *,
    poi: str,
    unit: str = "",
    poi_value: float | None = None,
    poi_error: float | None = None,
    n: int = 30,
    out: str | os.PathLike,
    formats: Sequence[str] = ("png", "pdf"),
    style: Mapping[str, Any] | None = None,
) -> Figure:
    """Combine's impact plot: the ``n`` nuisances of largest ``|impact|``, each with its pull
    and constraint (left) and its +-1 sigma impact on the POI (right)."""
    plt = pyplot()
    pulls, constraints, impacts = (np.asarray(a, float) for a in (pulls, constraints, impacts))
    idx = top_nuisances(impacts, np.ones(len(names), bool), n)[::-1]  # largest on top
    y = np.arange(len(idx))
    fig, (ax, iax) = plt.subplots(
        1, 2, figsize=(12, 3 + 0.32 * len(idx)), sharey=True, gridspec_kw={"wspace": 0.05}
    )
    ax.axvspan(-2, 2, color="#ffd966", alpha=0.5, lw=0)
    ax.axvspan(-1, 1, color="#8fd18f", alpha=0.6, lw=0)
    ax.errorbar(
        pulls[idx], y, xerr=constraints[idx], fmt="ko", ms=4, label="pull $\\pm$ constraint"
    )
    ax.set_xlim(-2.6, 2.6)
    ax.set_xlabel("$(\\hat{\\theta}-\\theta_0)/\\Delta\\theta$")
    ax.set_yticks(y, [_tex_safe(names[i]) for i in idx], fontsize=9)
    ax.set_ylim(-0.7, len(idx) - 0.3)
    ax.minorticks_off()
    iax.barh(y, impacts[idx], color="#d62728", alpha=0.8, label="$+1\\sigma$ impact")
    iax.barh(y, -impacts[idx], color="#1f77b4", alpha=0.8, label="$-1\\sigma$ impact")
    iax.axvline(0, color="k", lw=0.8)
    lim = max(float(np.max(np.abs(impacts[idx]), initial=0)), 1e-12) * 1.15
    iax.set_xlim(-lim, lim)
    u = f" [{unit}]" if unit else ""
    iax.set_xlabel(f"$\\Delta${_tex_safe(poi)}{u}")
    iax.minorticks_off()
    handles = [*ax.get_legend_handles_labels()[0], *iax.get_legend_handles_labels()[0]]
    labels = [*ax.get_legend_handles_labels()[1], *iax.get_legend_handles_labels()[1]]
    title = None
    if poi_value is not None and poi_error is not None:
        v, e = pdg_round(poi_value, poi_error)
        title = f"{_tex_safe(poi)} = {v} $\\pm$ {e} {unit}".strip()
    # the smallest impacts are at the bottom: the legend goes there, clear of the axis titles
    iax.legend(
        handles,
        labels,
        loc="lower right",
        fontsize="x-small",
        frameon=True,
        title=title,
        title_fontsize="x-small",
    )
    # the experiment label over the left panel, luminosity and sqrt(s) over the right one
    kw = style_kwargs(style)
    exp_label(ax, data=kw["data"], lumi_pb=None, rlabel=False)
    iax.set_title(lumi_text(kw["lumi_pb"]), loc="right", fontsize="small")
    return Figure.of(fig, save_figure(fig, out, formats))


def scan_plot(
    x: np.ndarray,
    dnll: np.ndarray,
    *,
    poi: str,
    unit: str = "",
    value: float | None = None,
    error: float | None = None,
    out: str | os.PathLike,
    formats: Sequence[str] = ("png", "pdf"),
    style: Mapping[str, Any] | None = None,
) -> Figure:
    """``-2 Delta ln L`` against the POI, the Hessian parabola ``((x - x^)/sigma)^2`` and the
    1 and 2 sigma lines (``-2 Delta ln L`` = 1 and 4)."""
    plt = pyplot()
    x, q = np.asarray(x, float), 2 * np.asarray(dnll, float)
    order = np.argsort(x)
    x, q = x[order], q[order]
    fig, ax = plt.subplots(figsize=(10, 8))
    ax.plot(x, q, "ko-", ms=5, label="profile likelihood")
    if value is not None and error is not None and error > 0:
        grid = np.linspace(x.min(), x.max(), 200)
        ax.plot(grid, ((grid - value) / error) ** 2, "--", color="#d62728", label="Hessian")
    for level, text in ((1.0, "$1\\sigma$"), (4.0, "$2\\sigma$")):
        ax.axhline(level, color="grey", ls=":", lw=1)
        ax.text(x.max(), level, text, ha="right", va="bottom", color="grey", fontsize="small")
    ax.set_ylim(0, max(5.0, float(np.nanmax(q, initial=0)) * 1.1))
    u = f" [{unit}]" if unit else ""
    ax.set_xlabel(f"{_tex_safe(poi)}{u}")
    ax.set_ylabel("$-2\\,\\Delta\\ln L$")
    ax.legend(loc="upper center", fontsize="small")
    exp_label(ax, **style_kwargs(style))
    return Figure.of(fig, save_figure(fig, out, formats))


def pulls_histogram(
    pulls: np.ndarray,
    *,
    out: str | os.PathLike,
    formats: Sequence[str] = ("png", "pdf"),
    style: Mapping[str, Any] | None = None,
) -> Figure:
    """The pulls of all constrained nuisances against a unit Gaussian."""
    plt = pyplot()
    p = np.asarray(pulls, float)
    p = p[np.isfinite(p)]
    fig, ax = plt.subplots(figsize=(10, 8))
    hi = max(4.0, float(np.ceil(np.max(np.abs(p), initial=0))))
    bins = np.linspace(-hi, hi, int(8 * hi) + 1)
    ax.hist(p, bins=bins, histtype="stepfilled", color="#3f90da", alpha=0.7, label="nuisances")
    grid = np.linspace(-hi, hi, 400)
    width = bins[1] - bins[0]
    gauss = p.size * width * np.exp(-0.5 * grid**2) / np.sqrt(2 * np.pi)
    ax.plot(grid, gauss, "k--", label="$\\mathcal{N}(0,1)$")
    if p.size:
        ax.plot([], [], " ", label=f"{p.size} nuisances")
        ax.plot([], [], " ", label=f"mean {np.mean(p):.2f}, RMS {np.std(p):.2f}")
        ax.plot([], [], " ", label=f"|pull| > 2: {int(np.sum(np.abs(p) > 2))}")
    ax.set_xlabel("pull $(\\hat{\\theta}-\\theta_0)/\\Delta\\theta$")
    ax.set_ylabel("Nuisances / bin")
    ax.set_ylim(0, max(1.0, float(np.max(gauss, initial=1))) * 1.6)
    ax.legend(fontsize="small", loc="upper right")
    exp_label(ax, **style_kwargs(style))
    return Figure.of(fig, save_figure(fig, out, formats))


def correlation_plot(
    names: Sequence[str],
    covariance: np.ndarray,
    *,
    out: str | os.PathLike,
    formats: Sequence[str] = ("png", "pdf"),
    style: Mapping[str, Any] | None = None,
) -> Figure:
    """The correlation matrix of the parameters ``names`` from their covariance."""
    plt = pyplot()
    cov = np.asarray(covariance, float)
    sd = np.sqrt(np.clip(np.diag(cov), 1e-300, None))
    corr = np.clip(cov / np.outer(sd, sd), -1, 1)
    n = len(names)
    size = max(8.0, 0.35 * n + 4)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    im = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1, origin="upper")
    labels = [_tex_safe(x) for x in names]
    ax.set_xticks(np.arange(n), labels, rotation=90, fontsize=8)
    ax.set_yticks(np.arange(n), labels, fontsize=8)
    ax.minorticks_off()
    if n <= 12:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize=8)
    fig.colorbar(im, ax=ax, label="correlation", fraction=0.046, pad=0.04)
    exp_label(ax, **style_kwargs(style))
    return Figure.of(fig, save_figure(fig, out, formats))


def pull_maps(
    data: np.ndarray,
    prediction: np.ndarray,
    axes: Sequence[Mapping[str, Any]],
    *,
    title: str = "",
    out: str | os.PathLike,
    formats: Sequence[str] = ("png", "pdf"),
    style: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """``(data - prediction) / sqrt(prediction)`` per bin as eta x pT maps, one per charge.

    ``axes``: the channel's axes (``name`` and ``edges`` or ``categories``) in storage order;
    the channel needs ``pt`` and ``eta`` axes, any ``charge`` axis gives one panel per charge.
    """
    plt = pyplot()
    labels = labels or {}
    names = [str(a.get("name")) for a in axes]
    shape = [len(a["edges"]) - 1 if "edges" in a else len(a["categories"]) for a in axes]
    d = np.asarray(data, float).reshape(shape)
    p = np.asarray(prediction, float).reshape(shape)
    pull = np.divide(d - p, np.sqrt(p), out=np.zeros_like(p), where=p > 0)
    order = [names.index("eta"), names.index("pt")]
    charge = names.index("charge") if "charge" in names else None
    if charge is not None:
        order.append(charge)
    rest = [i for i in range(len(names)) if i not in order]
    # other axes (none in the W fit): their pulls add in quadrature over the summed bins
    pull = np.transpose(pull, order + rest)
    if rest:
        pull = np.sqrt(np.sum(pull**2, axis=tuple(range(len(order), pull.ndim))))
    if charge is None:
        pull = pull[..., None]
        ticks = [""]
    else:
        ax_c = axes[charge]
        cats = ax_c.get("categories") or list(
            0.5 * (np.asarray(ax_c["edges"])[1:] + np.asarray(ax_c["edges"])[:-1])
        )
        ticks = charge_labels(cats)
    ncharge = pull.shape[-1]
    eta_edges = np.asarray(axes[order[0]]["edges"], float)
    pt_edges = np.asarray(axes[order[1]]["edges"], float)
    pt_edges = np.where(np.isfinite(pt_edges), pt_edges, np.nan)
    if np.isnan(pt_edges).any():
        finite = pt_edges[np.isfinite(pt_edges)]
        pt_edges = np.where(np.isnan(pt_edges), finite.max() + np.diff(finite)[-1], pt_edges)
    fig, axs = plt.subplots(1, ncharge, figsize=(9 * ncharge + 1, 8), squeeze=False, sharey=True)
    im = None
    for k in range(ncharge):
        ax = axs[0, k]
        # rasterised in the PDF: thousands of cells as vector paths are slow and heavy
        im = ax.pcolormesh(
            eta_edges, pt_edges, pull[..., k].T, cmap="RdBu_r", vmin=-3, vmax=3, rasterized=True
        )
        ax.set_xlabel(labels.get("eta") or axis_label("eta"))
        if k == 0:
            ax.set_ylabel(labels.get("pt") or axis_label("pt"))
        chi2 = float(np.sum(pull[..., k] ** 2))
        text = f"{ticks[k]}  " if ticks[k] else ""
        ax.text(
            0.03,
            0.96,
            f"{text}$\\chi^2$/bins = {chi2:.1f}/{pull[..., k].size}",
            transform=ax.transAxes,
            va="top",
            fontsize="small",
            bbox={"facecolor": "white", "alpha": 0.8, "lw": 0},
        )
        # CMS over the first panel, the luminosity over the last
        exp_label(ax, **style_kwargs(style), llabel=k == 0, rlabel=k == ncharge - 1)
    fig.colorbar(im, ax=axs[0, :].tolist(), label="(data $-$ pred.) / pred.$^{1/2}$")
    if title:
        fig.suptitle(title, fontsize="small", y=0.02, va="bottom")
    return Figure.of(fig, save_figure(fig, out, formats))


def template_ratio_plot(
    edges: np.ndarray,
    ratios: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    xlabel: str,
    shift: str = "100 MeV",
    title: str = "",
    out: str | os.PathLike,
    formats: Sequence[str] = ("png", "pdf"),
    style: Mapping[str, Any] | None = None,
) -> Figure:
    """The signal at m_W +- ``shift`` over its nominal template, per bin of ``edges``, one
    colour per entry of ``ratios`` (``{label: (up, down)}``, e.g. one per charge): up solid,
    down dashed."""
    plt = pyplot()
    edges = np.asarray(edges, float)
    fig, ax = plt.subplots(figsize=(10, 8))
    colours = ("#3f90da", "#bd1f01", "#ffa90e", "#832db6", "#94a4a2")
    lo, hi = 1.0, 1.0
    for k, (lab, (up, down)) in enumerate(ratios.items()):
        c = colours[k % len(colours)]
        up, down = np.asarray(up, float), np.asarray(down, float)
        ax.stairs(up, edges, baseline=None, color=c, lw=2, label=f"{lab}, $m_W$ + {shift}")
        ax.stairs(
            down, edges, baseline=None, color=c, lw=2, ls="--", label=f"{lab}, $m_W$ $-$ {shift}"
        )
        finite = np.r_[up, down][np.isfinite(np.r_[up, down])]
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    ax.axhline(1.0, color="k", lw=0.8)
    half = max(hi - 1.0, 1.0 - lo, 1e-4) * 1.25
    ax.set_ylim(1.0 - half, 1.0 + 1.9 * half)  # room for the legend
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Varied / nominal signal")
    ax.legend(
        fontsize="small", ncol=2, loc="upper center", title=title or None, title_fontsize="small"
    )
    exp_label(ax, **style_kwargs(style))
    return Figure.of(fig, save_figure(fig, out, formats))


def mw_comparison_plot(
    measurements: Sequence[Any],
    *,
    this: tuple[str, float, float] | None = None,
    prediction: Any | None = None,
    out: str | os.PathLike,
    formats: Sequence[str] = ("png", "pdf"),
    style: Mapping[str, Any] | None = None,
) -> Figure:
    """m_W of each published measurement (objects with ``label``, ``value``, ``error`` in
    MeV), this fit's ``(label, value, error)`` at the bottom in red, and the electroweak-fit
    ``prediction`` as a vertical band; each value written beside its point, rounded to its
    uncertainty."""
    plt = pyplot()
    rows = [(m.label, float(m.value), float(m.error), "k") for m in measurements]
    if this is not None:
        rows.append((this[0], float(this[1]), float(this[2]), "#bd1f01"))
    rows = rows[::-1]  # first measurement on top
    fig, ax = plt.subplots(figsize=(11, 2.5 + 0.75 * len(rows)))
    if prediction is not None:
        v, e = float(prediction.value), float(prediction.error)
        pv, pe = pdg_round(v, e)
        ax.axvspan(
            v - e,
            v + e,
            color="#94a4a2",
            alpha=0.45,
            lw=0,
            label=f"{_tex_safe(prediction.label)}: {pv} $\\pm$ {pe}",
        )
    y = np.arange(len(rows))
    values = np.array([r[1] for r in rows])
    errors = np.array([r[2] for r in rows])
    for i, (_, value, error, colour) in enumerate(rows):
        ax.errorbar(value, i, xerr=error, fmt="o", color=colour, ms=7, capsize=4)
    lo = float(np.min(values - errors))
    hi = float(np.max(values + errors))
    width = hi - lo
    ax.set_xlim(lo - 0.15 * width, hi + 0.75 * width)
    for i, (_, value, error, colour) in enumerate(rows):
        v, e = pdg_round(value, error)
        ax.text(
            hi + 0.12 * width, i, f"{v} $\\pm$ {e}", va="center", color=colour, fontsize="small"
        )
    ax.set_yticks(y, [_tex_safe(r[0]) for r in rows], fontsize="small")
    ax.set_ylim(-0.7, len(rows) - 0.3 + (0.9 if prediction is not None else 0))
    ax.minorticks_off()
    ax.set_xlabel("$m_W$ [MeV]")
    if prediction is not None:
        ax.legend(loc="upper right", fontsize="x-small", frameon=False)
    exp_label(ax, **style_kwargs(style))
    return Figure.of(fig, save_figure(fig, out, formats))
