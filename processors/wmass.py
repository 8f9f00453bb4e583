"""W -> mu nu: one tight muon, 5D (pt, eta, charge, passIso, mt) histograms with variations."""

from __future__ import annotations

import awkward as ak
import hist
import numpy as np

from processors.base import MuonHistogramProcessor, Selected, gather, met_with_pt
from processors.columns import Columns
from processors.muons import selected_muons
from processors.selection import single_muon, transverse_mass_xy

__all__ = ["WMassProcessor", "w_axes"]


def w_axes(iso_max: float = 0.15) -> list[hist.axis.AxesMixin]:
    """The seminar's 5D binning: 30 x 48 x 2 x 2 x 3 = 17,280 bins, no flow bins.

    ``mt`` has three regions for the extended ABCD: [0, 20) (Ax/Bx), [20, 40) (A/B), >= 40
    (C/D, the signal region when isolated).
    """
    return [
        hist.axis.Regular(30, 26, 56, name="pt", label="muon pT [GeV]", flow=False),
        hist.axis.Regular(48, -2.4, 2.4, name="eta", label="muon eta", flow=False),
        hist.axis.Regular(2, -2, 2, name="charge", label="muon charge", flow=False),
        hist.axis.Boolean(name="passIso", label=f"relIso04 < {iso_max}"),
        hist.axis.Variable([0, 20, 40, np.inf], name="mt", label="mT [GeV]", flow=False),
    ]


class WMassProcessor(MuonHistogramProcessor):
    """Exactly one tight muon (pT > ``cuts.pt_min``, |eta| < 2.4, |dxy|, |dz|), no other loose
    muon, the trigger; histograms in (pt 26-56, eta, charge, passIso, mT region). mT is
    computed with the MET corrected like the muons (data scale correction, scale variations).

    See :class:`~processors.base.MuonHistogramProcessor` for the parameters and the output.
    """

    uses_met = True

    def axes(self) -> list[hist.axis.AxesMixin]:
        return w_axes(self.cuts.iso_max)

    def select(self, cols: Columns, muons: ak.Array) -> Selected:
        passes, idx = single_muon(muons, self.cuts)
        events = np.flatnonzero(passes)
        index = idx[events][:, None]
        return selected_muons(events, gather(muons, events, index), index)

    def observables(self, sel: Selected, pt: np.ndarray) -> tuple[np.ndarray, ...]:
        met_x, met_y = met_with_pt(sel, pt)
        mt = transverse_mass_xy(pt[:, 0], sel.phi[:, 0], met_x, met_y)
        return pt[:, 0], sel.eta[:, 0], sel.charge[:, 0], sel.iso[:, 0] < self.cuts.iso_max, mt
