"""Muon momentum scale: the data correction factor and its relative uncertainty per eta bin."""

from __future__ import annotations

from collections.abc import Mapping

import correctionlib.schemav2 as cs
import numpy as np

from corrections.nodes import binning, real

__all__ = ["scale_corrections"]


def scale_corrections(
    table: Mapping[str, list],
    correction_name: str = "muon_scale_correction",
    uncertainty_name: str = "muon_scale_uncertainty",
) -> list[cs.Correction]:
    """``correction(eta) = 1 / (1 + bias)`` for data pT, ``uncertainty(eta)`` relative."""
    edges = table["eta_edges"]
    bias = np.asarray(table["data_bias"], dtype=float)
    return [
        cs.Correction(
            name=correction_name,
            description="multiply the data muon pT by this factor to undo the scale bias",
            version=1,
            inputs=[real("eta", "muon eta")],
            output=real("factor"),
            data=binning("eta", edges, 1.0 / (1.0 + bias)),
        ),
        cs.Correction(
            name=uncertainty_name,
            description="relative muon momentum-scale uncertainty: pT * (1 +- unc)",
            version=1,
            inputs=[real("eta", "muon eta")],
            output=real("relative_uncertainty"),
            data=binning("eta", edges, table["uncertainty"]),
        ),
    ]
