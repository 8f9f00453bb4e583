"""Closure plots: the measured momentum scale vs the truth per eta, and the scale factors vs the
truth per (eta, pT) (values per pT in each eta bin, and the pull map).

>>> fig = plot_closure(closure("calib.json", "samples/truth.json"), "closure.png")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from analysis.calibrate.closure_check import Closure, ClosureEntry

__all__ = ["plot_closure"]


def _scale_panel(ax: Any, e: ClosureEntry) -> None:
    c = 0.5 * (e.eta_edges[1:] + e.eta_edges[:-1])
    half = 0.5 * np.diff(e.eta_edges)
    ax.stairs(e.true * 1e3, e.eta_edges, color="k", label="truth")
    ax.errorbar(c, e.measured * 1e3, yerr=e.error * 1e3, xerr=half, fmt="o", ms=3, label="measured")
    ax.set_xlabel(r"muon $\eta$")
    ax.set_ylabel(r"momentum-scale bias $s$ [$10^{-3}$]  ($p_T^{data} = p_T (1+s)$)")
    ax.set_title(f"momentum scale: pull mean {e.mean:+.2f}, RMS {e.rms:.2f}")
    ax.legend(fontsize="small")


def _sf_panel(ax: Any, e: ClosureEntry) -> None:
    pc = 0.5 * (e.pt_edges[1:] + e.pt_edges[:-1])
    offsets = np.linspace(-0.3, 0.3, len(e.eta_edges) - 1) * np.diff(e.pt_edges).min()
    for i in range(len(e.eta_edges) - 1):
        line = ax.stairs(e.true[i] + 0.02 * i, e.pt_edges, lw=0.8, baseline=None)
        ax.errorbar(
            pc + offsets[i],
            e.measured[i] + 0.02 * i,
            yerr=e.error[i],
            fmt="o",
            ms=2,
            color=line.get_edgecolor(),
            label=f"{e.eta_edges[i]:+.1f} < $\\eta$ < {e.eta_edges[i + 1]:+.1f}",
        )
    ax.set_xlabel(r"probe $p_T$ [GeV]")
    ax.set_ylabel(r"data/MC scale factor (+0.02 per $\eta$ bin)")
    shown = np.concatenate([e.true.ravel(), e.measured[e.used].ravel()])
    ax.set_ylim(np.nanmin(shown) - 0.05, np.nanmax(shown) + 0.05 + 0.02 * len(e.eta_edges))
    ax.set_title(f"{e.name}: points measured, lines truth")
    ax.legend(fontsize="xx-small", ncol=2)


def _pull_panel(ax: Any, fig: Any, e: ClosureEntry) -> None:
    mesh = ax.pcolormesh(e.pt_edges, e.eta_edges, e.pull, cmap="coolwarm", vmin=-3, vmax=3)
    ax.set_xlabel(r"probe $p_T$ [GeV]")
    ax.set_ylabel(r"probe $\eta$")
    ax.set_title(f"{e.name}: pull mean {e.mean:+.2f}, RMS {e.rms:.2f}")
    fig.colorbar(mesh, ax=ax, label="(measured - true) / uncertainty")


def plot_closure(result: Closure, path: str | Path | None = None) -> Any:
    """One figure: the scale panel, then per scale factor its values and its pull map.

    Saved to ``path`` when given (PNG or PDF); returns the matplotlib Figure."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    sfs = [e for name, e in result.entries.items() if name in ("idip", "trigger")]
    fig, axes = plt.subplots(1 + len(sfs), 2, figsize=(13, 4.5 * (1 + len(sfs))), squeeze=False)
    _scale_panel(axes[0, 0], result.entries["scale"])
    pulls = result.entries["scale"].pull
    axes[0, 1].hist(pulls[np.isfinite(pulls)], bins=np.linspace(-4, 4, 17), histtype="step")
    axes[0, 1].set_xlabel("momentum-scale pull (measured - true) / uncertainty")
    axes[0, 1].set_ylabel("eta bins")
    for row, e in enumerate(sfs, start=1):
        _sf_panel(axes[row, 0], e)
        _pull_panel(axes[row, 1], fig, e)
    fig.tight_layout()
    if path is not None:  # the one atomic writer; it also creates the directory
        from fit.provenance import atomic_path

        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format=Path(path).suffix.lstrip(".").lower() or "png")
    return fig
