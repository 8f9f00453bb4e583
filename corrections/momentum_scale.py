"""Muon momentum scale: the data correction factor and its relative uncertainty per eta bin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
        _per_eta(
            correction_name,
            "multiply the data muon pT by this factor to undo the scale bias",
            "factor",
            edges,
            1.0 / (1.0 + bias),
        ),
        _per_eta(
            uncertainty_name,
            "relative muon momentum-scale uncertainty: pT * (1 +- unc)",
            "relative_uncertainty",
            edges,
            table["uncertainty"],
        ),
    ]


def _per_eta(
    name: str,
    description: str,
    output: str,
    edges: Sequence[float],
    values: Sequence[float] | np.ndarray,
) -> cs.Correction:
    """A correction of the muon eta alone: ``values`` in the bins of ``edges``."""
    return cs.Correction(
        name=name,
        description=description,
        version=1,
        inputs=[real("eta", "muon eta")],
        output=real(output),
        data=binning("eta", edges, values),
    )
