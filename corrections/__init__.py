"""Corrections: correctionlib payloads and the code that builds and evaluates them.

:func:`build_corrections` turns the generator's ``truth.json`` (docs/samples.md) into one
correctionlib JSON file: pileup weights (nominal/up/down) from the true-interaction profiles,
muon ID+IP and trigger data/MC scale factors in (eta, pt) with statistical eigen-variations
(:mod:`corrections.efficiency` documents the model), the prefiring probability per eta with its
statistical uncertainty, and the muon momentum-scale correction and uncertainty per eta.
:class:`Corrections` evaluates any correctionlib JSON, so a real CMS payload whose corrections
carry the names of :class:`CorrectionNames` can be dropped in. Nothing here imports the rest of
wmass.

The names below are imported when first used (PEP 562): evaluating payloads (the histmaker and
its workers) then does not import the builders' correctionlib schema and pydantic (~0.2 s of
every command's start).

>>> from corrections import CorrectionNames
>>> CorrectionNames().scale
'muon_scale_correction'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corrections.build import build_correction_set, build_corrections, load_truth
    from corrections.efficiency import eigen_variations, scale_factor_correction
    from corrections.evaluate import BinnedTable, Corrections
    from corrections.momentum_scale import scale_corrections
    from corrections.names import CorrectionNames
    from corrections.pileup import pileup_correction, pileup_weights
    from corrections.prefiring import prefiring_correction

#: public name -> the module that defines it
_HOME = {
    "BinnedTable": "corrections.evaluate",
    "CorrectionNames": "corrections.names",
    "Corrections": "corrections.evaluate",
    "build_correction_set": "corrections.build",
    "build_corrections": "corrections.build",
    "eigen_variations": "corrections.efficiency",
    "load_truth": "corrections.build",
    "pileup_correction": "corrections.pileup",
    "pileup_weights": "corrections.pileup",
    "prefiring_correction": "corrections.prefiring",
    "scale_corrections": "corrections.momentum_scale",
    "scale_factor_correction": "corrections.efficiency",
}

__all__ = [
    "BinnedTable",
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


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(importlib.import_module(_HOME[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'corrections' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
