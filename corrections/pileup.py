"""Pileup weights: data/MC ratio of the normalised true-interaction profiles, nominal/up/down."""

from __future__ import annotations

from collections.abc import Mapping

import correctionlib.schemav2 as cs
import numpy as np

from corrections.nodes import binning, by_variation, real, string

__all__ = ["pileup_correction", "pileup_weights"]


def pileup_weights(mc: np.ndarray, data: np.ndarray) -> np.ndarray:
    """``data / mc`` per bin of normalised profiles; 1 where MC has no entries."""
    mc = np.asarray(mc, dtype=float)
    data = np.asarray(data, dtype=float)
    mc = mc / mc.sum()
    data = data / data.sum()
    return np.divide(data, mc, out=np.ones_like(mc), where=mc > 0)


def pileup_correction(profiles: Mapping[str, list], name: str = "pileup") -> cs.Correction:
    """``name(nTrueInt, variation) -> weight`` with variations nominal, up, down."""
    mc = profiles["mc"]
    nodes = {
        key: binning("nTrueInt", profiles["edges"], pileup_weights(mc, profiles[source]))
        for key, source in (("nominal", "data"), ("up", "data_up"), ("down", "data_down"))
    }
    return cs.Correction(
        name=name,
        description="pileup weight: data/MC ratio of normalised Pileup_nTrueInt profiles",
        version=1,
        inputs=[real("nTrueInt", "Pileup_nTrueInt"), string("variation", "nominal, up, down")],
        output=real("weight"),
        data=by_variation("variation", nodes),
    )
