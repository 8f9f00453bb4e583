"""Muon prefiring probability per eta bin, with its statistical uncertainty (up/down)."""

from __future__ import annotations

from collections.abc import Mapping

import correctionlib.schemav2 as cs
import numpy as np

from corrections.nodes import binning, by_variation, real, string

__all__ = ["prefiring_correction"]


def prefiring_correction(table: Mapping[str, list], name: str = "muon_prefiring") -> cs.Correction:
    """``name(eta, variation) -> probability``; up/down = p +- stat, clipped to [0, 1]."""
    p = np.asarray(table["probability"], dtype=float)
    stat = np.asarray(table["stat_uncertainty"], dtype=float)
    edges = table["eta_edges"]
    nodes = {
        "nominal": binning("eta", edges, p),
        "up": binning("eta", edges, np.clip(p + stat, 0.0, 1.0)),
        "down": binning("eta", edges, np.clip(p - stat, 0.0, 1.0)),
    }
    return cs.Correction(
        name=name,
        description="probability that a muon at this eta makes the event prefire; MC events "
        "are weighted by the product over muons of (1 - p)",
        version=1,
        inputs=[real("eta", "muon eta"), string("variation", "nominal, up, down")],
        output=real("probability"),
        data=by_variation("variation", nodes),
    )
