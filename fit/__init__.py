"""The fit engine: a binned profile-likelihood fitter for thousands of nuisances.

Usable on its own (imports nothing else of wmass)::

    from fit import FitInputBuilder, fit
    b = FitInputBuilder()
    b.add_channel("sr", data_hist)
    b.add_process("sr", "Wmunu", w_hist, signal=True)
    b.add_poi("mW", variations={("sr", "Wmunu"): (w_up, w_down)},
              offset=80379.0, scale=100.0, unit="MeV")
    b.add_norm("lumi", ["Wmunu", "Zmumu"], 1.017, group="luminosity")
    result = fit(b.build(), impacts=True, global_impacts=True)
    result.pois["mW"]          # {"value": MeV, "error": MeV, ...}
    result.write("fitresult.h5")

Modules: :mod:`fit.writer` (FitInput, ``fitinput.h5``), :mod:`fit.builder` (FitInputBuilder), :mod:`fit.model` (the NLL,
structured sparse and dense JAX), :mod:`fit.minimize` (trust-region Newton), :mod:`fit.fitter`
(``fit``, ``scan``), :mod:`fit.uncertainties` (covariance, impacts, global impacts),
:mod:`fit.gof`, :mod:`fit.toys`, :mod:`fit.result` (FitResult, ``fitresult.h5``, ``describe``),
:mod:`fit.terms` (HistFactory's modifiers as terms of the same likelihood) and
:mod:`fit.histfactory` (reading and exporting pyhf workspaces; :mod:`fit.pyhf` re-exports it).

The public names are imported on first use (PEP 562, through ``lazy_loader``), so that ``import fit.provenance`` (every
output writer, ``wmass generate``) does not pay for scipy.stats, the model or the minimiser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

__all__ = [
    "MINIMIZERS",
    "POI",
    "Channel",
    "DenseModel",
    "FitDidNotConverge",
    "FitError",
    "FitInput",
    "FitInputBuilder",
    "FitInputError",
    "FitResult",
    "MinimizeResult",
    "Model",
    "describe",
    "fit",
    "make_model",
    "minimize",  # the module: fit.minimize.minimize(...)
    "minimize_model",
    "scan",
]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time see __getattr__
    from . import minimize
    from .builder import FitInputBuilder
    from .errors import FitDidNotConverge, FitError, FitInputError
    from .fitter import MINIMIZERS, fit, make_model, minimize_model, scan
    from .minimize import MinimizeResult
    from .model import DenseModel, Model
    from .result import FitResult, describe
    from .writer import POI, Channel, FitInput


#: submodule -> the public names it defines, imported on first use (``lazy_loader``)
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submodules=["minimize"],
    submod_attrs={
        "builder": ["FitInputBuilder"],
        "errors": ["FitDidNotConverge", "FitError", "FitInputError"],
        "fitter": ["MINIMIZERS", "fit", "make_model", "minimize_model", "scan"],
        "minimize": ["MinimizeResult"],
        "model": ["DenseModel", "Model"],
        "result": ["FitResult", "describe"],
        "writer": ["POI", "Channel", "FitInput"],
    },
)
