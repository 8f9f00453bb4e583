"""Systematic uncertainties of the tag-and-probe efficiencies: the fit repeated with one choice
changed at a time, as the CMS muon POG does.

| alternative | what changes |
|---|---|
| ``signal`` | signal shape: the MC template without the data/MC smearing (``delta = s = 0``) |
| ``background`` | background shape: flat (``lambda = 0``) instead of the falling exponential |
| ``window`` | mass window 70-110 GeV instead of 60-120 GeV (the background's lever arm) |
| ``tag`` | tag selection: tag isolation < 0.05 instead of 0.15, and the ID+IP tag's pT > 30 GeV instead of 26 (the trigger tag, the softer muon, keeps no pT cut: a cut would empty the probe bins below it) |

Each alternative gives a scale factor per bin; its systematic shift is ``|SF_alt - SF_nom|``
(both fits valid) and the total is the shifts of all alternatives in quadrature. A bin where
an alternative is not valid takes the largest shift of that alternative in its eta bin. The
payload carries the total as the variation ``syst_up`` / ``syst_down`` = smoothed nominal
+- shift (:func:`analysis.calibrate.payload.scale_factor_payload`), which the histmaker reads
like the eigen-variations (one nuisance per kind and eta bin of the ID+IP payload).

All alternatives of all bins are fitted with the same batched Newton as the nominal; the
window alternative compiles once more (another mass grid).

The tag alternative also has a statistical part (fewer tags); it is kept, as in the POG's
recipe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from analysis.calibrate.events import Dimuons
from analysis.calibrate.peakfit import EfficiencyFit, fit_efficiencies
from analysis.calibrate.tnp import KINDS, MassGrid, TnpBinning, histogram_probes, select_probes

__all__ = ["ALTERNATIVES", "SystematicShifts", "alternative_fits", "systematic_shifts"]

ALTERNATIVES = {
    "signal": "MC template without the data/MC smearing (delta = s = 0)",
    "background": "flat background (lambda = 0) instead of the exponential",
    "window": "mass window 70-110 GeV instead of 60-120 GeV",
    "tag": "tag isolation < 0.05 (0.15), ID+IP tag pT > 30 GeV (26)",
}
ALT_WINDOW = (70.0, 110.0)
ALT_TAG_PT = 30.0
ALT_TAG_ISO = 0.05


@dataclass
class SystematicShifts:
    """``|SF_alt - SF_nom|`` per alternative and their quadrature sum, ``[eta, pt]``."""

    per_source: dict[str, np.ndarray]
    total: np.ndarray


def _fits(
    d_pairs: Dimuons,
    m_pairs: Dimuons,
    pt_corrected: np.ndarray,
    binning: Mapping[str, TnpBinning],
    grid: MassGrid,
    fixed: dict[str, float] | None = None,
    tight_tag: bool = False,
) -> dict[str, EfficiencyFit]:
    cuts: dict[str, Any] = (
        {"tag_pt_min": ALT_TAG_PT, "tag_iso_max": ALT_TAG_ISO} if tight_tag else {}
    )
    hists = [
        histogram_probes(
            kind,
            select_probes(d_pairs, kind, pt_corrected, **cuts),
            select_probes(m_pairs, kind, **cuts),
            binning[kind],
            grid,
        )
        for kind in KINDS
    ]
    return fit_efficiencies(hists, fixed=fixed)[0]


def alternative_fits(
    d_pairs: Dimuons,
    m_pairs: Dimuons,
    pt_corrected: np.ndarray,
    binning: Mapping[str, TnpBinning],
    grid: MassGrid | None = None,
) -> dict[str, dict[str, EfficiencyFit]]:
    """``{alternative: {kind: EfficiencyFit}}`` for every alternative of :data:`ALTERNATIVES`."""
    grid = grid or MassGrid()
    window = MassGrid(ALT_WINDOW[0], ALT_WINDOW[1], grid.width, grid.tlo, grid.thi)
    args = (d_pairs, m_pairs, pt_corrected, binning)
    return {
        "signal": _fits(*args, grid, fixed={"delta": 0.0, "s": 0.0}),
        "background": _fits(*args, grid, fixed={"lambda": 0.0}),
        "window": _fits(*args, window),
        "tag": _fits(*args, grid, tight_tag=True),
    }


def _fill_invalid(shift: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Bins without a valid shift take the largest valid one of their eta row (0 if none)."""
    out = np.where(ok, shift, 0.0)
    row_max = np.max(np.where(ok, shift, 0.0), axis=1, keepdims=True)
    return np.where(ok, out, row_max)


def systematic_shifts(
    nominal: Mapping[str, EfficiencyFit], alternatives: Mapping[str, Mapping[str, EfficiencyFit]]
) -> dict[str, SystematicShifts]:
    """Per kind the :class:`SystematicShifts` of the ``alternatives`` against ``nominal``."""
    out = {}
    for kind, nom in nominal.items():
        per = {}
        for name, fits in alternatives.items():
            alt = fits[kind]
            ok = nom.valid & alt.valid & np.isfinite(alt.sf) & np.isfinite(nom.sf)
            per[name] = _fill_invalid(np.abs(alt.sf - nom.sf), ok)
        total = np.sqrt(np.sum([v**2 for v in per.values()], axis=0))
        out[kind] = SystematicShifts(per, total)
    return out
