"""Calibrate from the data: muon efficiency scale factors by tag and probe and the muon momentum
scale from the Z -> mu mu peak, measured on the (generated) data and Z simulation, written as a
correctionlib payload that drops in for the generator's ``corrections.json``
(``wmass histmaker --corrections calib.json``).

- :func:`calibrate` runs it all and returns a :class:`Calibration` (``.write(path)``);
- :func:`closure` compares a payload with the generator's ``truth.json``, and
  :func:`plot_closure` draws it;
- the pieces: :func:`read_dimuons` (NanoAOD pairs), :func:`measure_scale` (peak shifts in
  (eta1, eta2) cells, least squares), :func:`select_probes` / :func:`histogram_probes`
  (tag and probe; trigger matching :func:`match_trigger_objects`), :func:`fit_efficiencies`
  (all bins in one batched fit), :func:`alternative_fits` / :func:`systematic_shifts` (the
  tag-and-probe systematics),
  :func:`batched_newton` (the vmapped Newton), :func:`smooth_scale_factors` (polynomial in pT,
  eigen-variations), :func:`enable_compilation_cache` (JAX's persistent cache).

Heavy imports (JAX, uproot, correctionlib) happen on first use of a name (PEP 562), so that
``wmass calibrate --help`` is fast. Method and closure numbers: docs/calibration.md.

>>> from analysis.calibrate import calibrate, closure  # doctest: +SKIP
>>> cal = calibrate("samples/datasets.yaml")  # doctest: +SKIP
>>> closure(cal, "samples/truth.json").table()  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: public name -> the submodule that defines it
_SOURCES = {
    "Calibration": "calibration",
    "Closure": "closure_check",
    "add_arguments": "cli",
    "alternative_fits": "systematics",
    "enable_compilation_cache": "jaxcache",
    "match_trigger_objects": "trigger",
    "systematic_shifts": "systematics",
    "batched_newton": "newton",
    "calibrate": "calibration",
    "closure": "closure_check",
    "fit_efficiencies": "peakfit",
    "histogram_probes": "tnp",
    "main": "cli",
    "measure_scale": "scale",
    "plot_closure": "plots",
    "read_dimuons": "events",
    "select_probes": "tnp",
    "smooth_scale_factors": "smoothing",
    "TooFewEvents": "events",
}

__all__ = [
    "Calibration",
    "Closure",
    "TooFewEvents",
    "add_arguments",
    "alternative_fits",
    "batched_newton",
    "calibrate",
    "closure",
    "enable_compilation_cache",
    "fit_efficiencies",
    "histogram_probes",
    "main",
    "match_trigger_objects",
    "measure_scale",
    "plot_closure",
    "read_dimuons",
    "select_probes",
    "smooth_scale_factors",
    "systematic_shifts",
]

if TYPE_CHECKING:
    from analysis.calibrate.calibration import Calibration, calibrate
    from analysis.calibrate.cli import add_arguments, main
    from analysis.calibrate.closure_check import Closure, closure
    from analysis.calibrate.events import TooFewEvents, read_dimuons
    from analysis.calibrate.jaxcache import enable_compilation_cache
    from analysis.calibrate.newton import batched_newton
    from analysis.calibrate.peakfit import fit_efficiencies
    from analysis.calibrate.plots import plot_closure
    from analysis.calibrate.scale import measure_scale
    from analysis.calibrate.smoothing import smooth_scale_factors
    from analysis.calibrate.systematics import alternative_fits, systematic_shifts
    from analysis.calibrate.tnp import histogram_probes, select_probes
    from analysis.calibrate.trigger import match_trigger_objects


def __getattr__(name: str) -> Any:
    if name in _SOURCES:
        value = getattr(importlib.import_module(f"analysis.calibrate.{_SOURCES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_SOURCES))
