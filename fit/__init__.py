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

Modules: :mod:`fit.writer` (FitInput, builder, ``fitinput.h5``), :mod:`fit.model` (the NLL,
structured sparse and dense JAX), :mod:`fit.minimize` (trust-region Newton), :mod:`fit.fitter`
(``fit``, ``scan``), :mod:`fit.uncertainties` (covariance, impacts, global impacts),
:mod:`fit.gof`, :mod:`fit.toys`, :mod:`fit.result` (FitResult, ``fitresult.h5``, ``describe``).
"""

from __future__ import annotations

from . import minimize
from .errors import FitDidNotConverge, FitError, FitInputError
from .fitter import MINIMIZERS, fit, make_model, minimize_model, scan
from .minimize import MinimizeResult
from .model import DenseModel, Model
from .result import FitResult, describe
from .writer import POI, Channel, FitInput, FitInputBuilder

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
