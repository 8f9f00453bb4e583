"""Physics style for every figure and number a person reads: axis titles with units, process
names in LaTeX, the experiment label with luminosity and sqrt(s), numbers rounded to their
uncertainty (PDG rule) and bin edges printed without floating-point noise.

>>> axis_label("pt")
'muon $p_{T}$ [GeV]'
>>> axis_label("eta", "muon eta")
'muon $\\\\eta$'
>>> process_label("Wmunu")
'$W\\\\to\\\\mu\\\\nu$'
>>> pdg_round(80301.3, 64.11)
('80300', '60')
>>> pdg_round(0.0123456, 0.00234)
('0.0123', '0.0023')
>>> fmt_edge(29.000000000000004)
'29'
>>> lumi_text(1.0970846710000008)
'1.10 pb$^{-1}$ (13 TeV)'
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fit.provenance import atomic_path
from fit.result import rounded as pdg_round  # the one rounding (PDG rule)

__all__ = [
    "AXIS_LABELS",
    "PROCESS_LABELS",
    "axis_label",
    "charge_labels",
    "exp_label",
    "fmt_edge",
    "lumi_text",
    "pdg_round",
    "process_label",
    "save_figure",
]

#: axis titles (LaTeX, with units) by axis name; the stored label of a histogram axis is used
#: (translated by :func:`axis_label`) when the name is not here
AXIS_LABELS = {
    "pt": "muon $p_{T}$ [GeV]",
    "eta": "muon $\\eta$",
    "charge": "muon charge",
    "mt": "$m_{T}$ [GeV]",
    "mll": "$m_{\\mu\\mu}$ [GeV]",
    "ptll": "$p_{T}^{\\mu\\mu}$ [GeV]",
    "yll": "$y^{\\mu\\mu}$",
}

#: process names as physicists write them
PROCESS_LABELS = {
    "Wmunu": "$W\\to\\mu\\nu$",
    "Wtaunu": "$W\\to\\tau\\nu$",
    "Zmumu": "$Z\\to\\mu\\mu$",
    "Ztautau": "$Z\\to\\tau\\tau$",
    "Top": "$t\\bar{t}$, single $t$",
    "Diboson": "$WW$, $WZ$, $ZZ$",
    "Nonprompt": "Nonprompt",
    "QCD": "QCD multijet",
    "Data": "Data",
}

# stored labels of hists.h5 (``muon pT [GeV]``, ``m(ll) [GeV]``) -> LaTeX
_WORDS = (
    (r"\bpT\(ll\)", "$p_{T}^{\\\\mu\\\\mu}$"),
    (r"\bm\(ll\)", "$m_{\\\\mu\\\\mu}$"),
    (r"\by\(ll\)", "$y^{\\\\mu\\\\mu}$"),
    (r"\bpT\b", "$p_{T}$"),
    (r"\bmT\b", "$m_{T}$"),
    (r"\beta\b", "$\\\\eta$"),
)


def axis_label(name: str, stored: str | None = None) -> str:
    """The title of axis ``name``: :data:`AXIS_LABELS`, else its stored label in LaTeX, else
    the name itself."""
    if name in AXIS_LABELS:
        return AXIS_LABELS[name]
    if stored:
        out = str(stored)
        for pattern, repl in _WORDS:
            out = re.sub(pattern, repl, out)
        return out
    return str(name)


def process_label(name: str) -> str:
    """``Wmunu`` -> ``$W\\to\\mu\\nu$``; unknown names are returned with LaTeX specials escaped."""
    if name in PROCESS_LABELS:
        return PROCESS_LABELS[name]
    return re.sub(r"([$_^\\{}%#&])", r"\\\1", str(name))


def charge_labels(categories: Sequence[Any]) -> list[str]:
    """Tick labels of a charge axis: ``$\\mu^-$``, ``$\\mu^+$`` (by sign of the bin)."""
    out = []
    for c in categories:
        try:
            v = float(c)
        except (TypeError, ValueError):
            out.append(str(c))
            continue
        out.append("$\\mu^{-}$" if v < 0 else "$\\mu^{+}$")
    return out


def fmt_edge(x: float) -> str:
    """A bin edge as a person writes it: 6 significant digits, no trailing zeros."""
    return f"{float(x):.6g}"


def lumi_text(lumi_pb: float | None, com: float = 13) -> str:
    """``1.10 pb$^{-1}$ (13 TeV)``; fb^-1 from 1000 pb^-1 on; 3 significant digits."""
    if lumi_pb is None or not math.isfinite(float(lumi_pb)) or float(lumi_pb) <= 0:
        return f"({com:g} TeV)"
    lumi = float(lumi_pb)
    value, unit = (lumi / 1000.0, "fb") if lumi >= 1000 else (lumi, "pb")
    text = f"{value:#.3g}".rstrip(".")
    return f"{text} {unit}$^{{-1}}$ ({com:g} TeV)"


def exp_label(
    ax: Any,
    *,
    data: bool = True,
    lumi_pb: float | None = None,
    com: float = 13,
    rlabel: bool = True,
    llabel: bool = True,
) -> tuple[Any, Any, Any]:
    """The CMS-style label above the axes: ``CMS`` (bold) and ``Private work`` (italic) on data,
    ``Simulation Private work`` on simulated (Asimov, pseudo-) data, luminosity and sqrt(s) on
    the right (``rlabel=False`` / ``llabel=False``: without the right / left part, for narrow
    panels side by side).

    Drawn as mplhep's ``cms.label`` draws it (1.3 and 0.85 times the font size), with plain
    text artists placed relative to each other: mplhep measures the axes by drawing the figure
    once more per label, which was most of the report's time."""
    import matplotlib.pyplot as plt

    size = float(plt.rcParams["font.size"])
    y = 1.0 + 0.005
    cms = ax.text(
        0.0,
        y,
        "CMS" if llabel else "",
        transform=ax.transAxes,
        ha="left",
        va="baseline",
        fontsize=1.3 * size,
        fontweight="bold",
    )
    extra = ax.annotate(
        ("Private work" if data else "Simulation Private work") if llabel else "",
        xy=(1.0, 0.0),
        xycoords=cms,
        xytext=(0.25 * size, 0.0),
        textcoords="offset points",
        ha="left",
        va="bottom",
        fontsize=0.85 * size,
        fontstyle="italic",
    )
    right = ax.text(
        1.0,
        y,
        lumi_text(lumi_pb, com) if rlabel else "",
        transform=ax.transAxes,
        ha="right",
        va="baseline",
        fontsize=0.85 * size,
    )
    return cms, extra, right


def save_figure(fig: Any, out: str | os.PathLike, formats: Sequence[str]) -> list[Path]:
    """Save ``fig`` as ``out.<fmt>`` for each format (PNG for the page, PDF for slides)."""
    import matplotlib.pyplot as plt
    from matplotlib.transforms import Bbox

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    # the tight box once for all formats (savefig's bbox_inches="tight" draws again per format)
    tight = fig.get_tightbbox(fig.canvas.get_renderer())
    pad = 0.1  # inches, savefig's default pad_inches
    box = Bbox.from_extents(tight.x0 - pad, tight.y0 - pad, tight.x1 + pad, tight.y1 + pad)
    for fmt in formats:
        path = out.with_suffix(f".{fmt}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, bbox_inches=box, dpi=100)
        paths.append(path)
    plt.close(fig)
    return paths


class Figure(list):
    """The paths a plot function wrote (a list, as before) and the matplotlib ``figure``."""

    figure: Any = None

    @classmethod
    def of(cls, fig: Any, paths: Sequence[Path]) -> Figure:
        out = cls(paths)
        out.figure = fig
        return out


def style_kwargs(style: Mapping[str, Any] | None) -> dict[str, Any]:
    """The experiment-label arguments of a plot (``data``, ``lumi_pb``) with defaults."""
    style = dict(style or {})
    return {"data": bool(style.get("data", True)), "lumi_pb": style.get("lumi_pb")}
