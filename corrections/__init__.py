"""Corrections: correctionlib payloads and the code that builds and evaluates them.

:func:`build_corrections` turns the generator's ``truth.json`` (docs/samples.md) into one
correctionlib JSON file: pileup weights (nominal/up/down) from the true-interaction profiles,
muon ID+IP and trigger data/MC scale factors in (eta, pt) with statistical eigen-variations
(:mod:`corrections.efficiency` documents the model), the prefiring probability per eta with its
statistical uncertainty, and the muon momentum-scale correction and uncertainty per eta.
:class:`Corrections` evaluates any correctionlib JSON, so a real CMS payload whose corrections
carry the names of :class:`CorrectionNames` can be dropped in. Nothing here imports the rest of
wmass.
"""

from corrections.build import build_correction_set, build_corrections, load_truth
from corrections.efficiency import eigen_variations, scale_factor_correction
from corrections.evaluate import Corrections
from corrections.momentum_scale import scale_corrections
from corrections.names import CorrectionNames
from corrections.pileup import pileup_correction, pileup_weights
from corrections.prefiring import prefiring_correction

__all__ = [
    "CorrectionNames",
    "Corrections",
    "build_correction_set",
    "build_corrections",
    "eigen_variations",
    "load_truth",
    "pileup_correction",
    "pileup_weights",
    "prefiring_correction",
    "scale_corrections",
    "scale_factor_correction",
]
