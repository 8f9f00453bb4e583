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
"""

from processors.base import ALL_VARIATIONS, MuonHistogramProcessor, Selected
from processors.columns import Columns
from processors.errors import BadInputFile, ConfigError, MissingBranch, WMassError
from processors.fill import TensorFill, bin_index
from processors.selection import MuonCuts, gen_match
from processors.wlike import WLikeProcessor
from processors.wmass import WMassProcessor
from processors.zdilepton import ZDileptonProcessor

__all__ = [
    "ALL_VARIATIONS",
    "BadInputFile",
    "Columns",
    "ConfigError",
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
