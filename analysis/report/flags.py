"""What a physicist checks first on a run page: the flags box and the goodness of fit.

The flags box: fit status, EDM, nuisances pulled beyond 2, post-fit constraints above 1 or below
0.3, the saturated goodness of fit with the chi2 of each projection (pT, eta, charge) beside it,
and why the global-impact total differs from the Hessian error. The goodness-of-fit section:
the saturated test and a table of the projections' chi2, pre- and post-fit
(:func:`fit.gof.projection_gofs`).

Both are jinja2 templates with autoescape (``templates/flags.html``, ``templates/gof.html``,
rendered by :mod:`analysis.report.render`): every name that comes from an input (nuisances,
channels, POIs) is escaped; nuisances are shown by their label with physical ranges
(:mod:`analysis.report.names`), the raw name as the tooltip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from analysis.report.render import render

__all__ = ["flags_section", "gof_section", "projection_gof_items"]

#: the levels of a flag and their icons
ICONS = {"ok": "✔", "warn": "⚠", "bad": "✖", "info": "ℹ"}
#: p-value below which a goodness of fit is flagged
P_MIN = 0.01


def _fmt(x: Any, spec: str) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return ""
    return format(v, spec) if np.isfinite(v) else str(v)


def _gof_numbers(g: Mapping[str, Any]) -> dict[str, str]:
    return {
        "chi2": _fmt(g.get("chi2"), ".1f"),
        "ndf": _fmt(g.get("ndf"), ".0f"),
        "p": _fmt(g.get("p_value"), ".2g"),
    }


def projection_gof_items(
    gofs: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]] | None, stage: str
) -> list[dict[str, Any]]:
    """One row per channel and projection of :func:`fit.gof.projection_gofs` at ``stage``:
    channel, axis, rounded chi2, ndf, p and the flag level (``warn`` below p = 0.01)."""
    out = []
    for channel, per_axis in (gofs or {}).items():
        for axis, stages in per_axis.items():
            g = stages.get(stage)
            if not g:
                continue
            p = g.get("p_value")
            low = p is not None and np.isfinite(float(p)) and float(p) < P_MIN
            out.append(
                {"channel": channel, "axis": axis, "level": "warn" if low else "ok"}
                | _gof_numbers(g)
            )
    return out


def flags_section(
    result: Any,
    gofs: Mapping[str, Any] | None = None,
    label: Callable[[str], str] | None = None,
) -> str:
    """The flags box of a run (module doc). ``gofs``: :func:`fit.gof.projection_gofs` of the
    run (None: only the saturated test); ``label``: a nuisance's display name (default: its
    name)."""
    label = label or (lambda n: n)
    items: list[dict[str, Any]] = []

    def item(level: str, text: str, **kw: Any) -> None:
        items.append({"level": level, "text": text, "nuisances": [], "more": 0, "gofs": []} | kw)

    ok = str(result.status) == "converged"
    item("ok" if ok else "bad", f"fit status: {result.status}")
    edm = float(result.edm) if result.edm is not None else float("nan")
    item("ok" if edm < 1e-3 else "warn", f"EDM = {_fmt(edm, '.2g')}")
    params = list(result.parameters)
    nuis = np.array([p not in result.pois for p in params], dtype=bool)
    cons = nuis & np.asarray(result.constrained, dtype=bool)
    pulls, constr = np.asarray(result.pulls), np.asarray(result.constraints)

    big = cons & (np.abs(np.nan_to_num(pulls)) > 2)
    over = cons & (np.nan_to_num(constr, nan=1.0) > 1.0 + 1e-6)
    strong = cons & (np.nan_to_num(constr, nan=1.0) < 0.3)
    with np.errstate(divide="ignore"):
        inverse = 1 / constr
    for mask, what, key in (
        (big, "nuisances pulled beyond 2", pulls),
        (over, "post-fit constraints above 1 (wider than the prior: check the model)", constr),
        (strong, "post-fit constraints below 0.3 (the data measure them)", inverse),
    ):
        if not mask.any():
            item("ok", f"no {what.split(' (')[0]}")
            continue
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(-np.abs(np.nan_to_num(key[idx])), kind="stable")]
        shown = [
            {
                "name": params[i],
                "label": label(params[i]),
                "pull": float(pulls[i]),
                "constraint": float(constr[i]),
            }
            for i in idx[:10]
        ]
        item("warn", f"{len(idx)} {what}", nuisances=shown, more=max(len(idx) - 10, 0))
    gof = result.gof or {}
    projections = projection_gof_items(gofs, "postfit")
    if gof or projections:
        p = gof.get("p_value")
        low = p is not None and np.isfinite(float(p)) and float(p) < P_MIN
        level = "warn" if low or any(g["level"] == "warn" for g in projections) else "ok"
        n = _gof_numbers(gof)
        text = (
            f"saturated GOF: χ²/ndf = {n['chi2']}/{n['ndf']}, p = {n['p']}"
            if gof
            else "no saturated GOF in this fit result"
        )
        if projections:
            text += "; post-fit χ² of the projections"
        item(level, text, gofs=projections)
    for poi, glob in (result.global_impacts or {}).items():
        if "total" not in glob or poi not in result.pois:
            continue
        tot, err = float(glob["total"]), float(result.pois[poi].get("error") or 0)
        unit = result.pois[poi].get("unit", "")
        item(
            "info",
            f"{poi}: global-impact total {_fmt(tot, '.3g')} {unit} vs Hessian error "
            f"{_fmt(err, '.3g')} {unit}: the global total adds in quadrature the linear responses "
            "to every random input (data, auxiliary measurements, MC statistics) and equals the "
            "Hessian error only on Asimov data; on real data the Hessian is taken at the fitted, "
            "pulled point, so they differ.",
        )
    return render("flags.html", items=items, icons=ICONS)


def gof_section(result: Any, gofs: Mapping[str, Any] | None = None) -> str:
    """The goodness-of-fit section: the saturated test and the table of projections."""
    gof = result.gof or {}
    rows = []
    for channel, per_axis in (gofs or {}).items():
        for axis, stages in per_axis.items():
            if "prefit" not in stages or "postfit" not in stages:
                continue
            bins = _bins_of(result, channel, axis)
            rows.append(
                {
                    "channel": channel,
                    "axis": axis,
                    "bins": bins,
                    "prefit": _gof_numbers(stages["prefit"]),
                    "postfit": _gof_numbers(stages["postfit"]),
                }
            )
    saturated = _gof_numbers(gof) if gof else None
    return render("gof.html", saturated=saturated, rows=rows)


def _bins_of(result: Any, channel: str, axis: str) -> str:
    for ax in (result.yields.get(channel) or {}).get("axes") or []:
        if str(ax.get("name")) == axis:
            n = len(ax["edges"]) - 1 if "edges" in ax else len(ax.get("categories", []))
            return str(n)
    return ""
