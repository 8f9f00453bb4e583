"""Processors: the coffea ``ProcessorABC`` subclasses that turn NanoAOD chunks into histograms.

:class:`WMassProcessor` (W -> mu nu, 5D pt x eta x charge x passIso x mT), :class:`ZDileptonProcessor`
(m(ll), pT(ll), y(ll)) and :class:`WLikeProcessor` (Z events with one muon taken as the
neutrino) share one event loop (:mod:`processors.base`): raw branches read by NanoAOD name
(:mod:`processors.columns`, a missing required branch raises :class:`MissingBranch`),
vectorised muon selection and gen-matching (:mod:`processors.selection`), corrections from a
correctionlib payload and weight variations as ``[n_events, n_var]`` tensors
(:mod:`processors.variations`), and a numba tensor fill with one bin lookup per event and the
variation axis last (:mod:`processors.fill`). ``process`` returns
``{dataset: {"histograms": {name: hist.Hist}, "sumw", "sumw2", "events_read",
"events_selected", "lumisections", "chunks"}}``, which coffea's ``accumulate`` adds up.

The public names are imported on first use (PEP 562, through ``lazy_loader``): ``import processors.errors`` (the CLI,
``analysis``) does not import coffea, numba or correctionlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

__all__ = [
    "ALL_VARIATIONS",
    "BadInputFile",
    "Columns",
    "ConfigError",
    "CorrectionsWarning",
    "GoldenJSON",
    "MissingBranch",
    "MuonCuts",
    "MuonHistogramProcessor",
    "Selected",
    "TensorFill",
    "WLikeProcessor",
    "WMassError",
    "WMassProcessor",
    "ZDileptonProcessor",
    "bin_index",
    "gen_match",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time see __getattr__
    from processors.base import ALL_VARIATIONS, MuonHistogramProcessor, Selected
    from processors.columns import Columns
    from processors.errors import (
        BadInputFile,
        ConfigError,
        CorrectionsWarning,
        MissingBranch,
        WMassError,
    )
    from processors.fill import TensorFill, bin_index
    from processors.golden import GoldenJSON
    from processors.selection import MuonCuts, gen_match
    from processors.wlike import WLikeProcessor
    from processors.wmass import WMassProcessor
    from processors.zdilepton import ZDileptonProcessor


#: submodule -> the public names it defines, imported on first use (``lazy_loader``)
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "base": ["ALL_VARIATIONS", "MuonHistogramProcessor", "Selected"],
        "columns": ["Columns"],
        "errors": [
            "BadInputFile",
            "ConfigError",
            "CorrectionsWarning",
            "MissingBranch",
            "WMassError",
        ],
        "fill": ["TensorFill", "bin_index"],
        "golden": ["GoldenJSON"],
        "selection": ["MuonCuts", "gen_match"],
        "wlike": ["WLikeProcessor"],
        "wmass": ["WMassProcessor"],
        "zdilepton": ["ZDileptonProcessor"],
    },
)
