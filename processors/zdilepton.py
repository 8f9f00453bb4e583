"""Z -> mu mu: two tight isolated opposite-charge muons; m(ll), pT(ll), y(ll) histograms."""

from __future__ import annotations

import awkward as ak
import hist
import numpy as np

from processors.base import MuonHistogramProcessor, Selected, gather
from processors.columns import Columns
from processors.muons import selected_muons
from processors.selection import dimuon, dimuon_kinematics

__all__ = ["PTLL_EDGES", "ZDileptonProcessor", "z_axes"]

PTLL_EDGES = (0, 2, 4, 6, 8, 10, 13, 16, 20, 25, 30, 40, 50, 70, 100)


def z_axes() -> list[hist.axis.AxesMixin]:
    """m(ll) 60-120 GeV in 1 GeV bins, pT(ll) up to 100 GeV (overflow kept), |y(ll)| < 2.4."""
    return [
        hist.axis.Regular(60, 60, 120, name="mll", label="m(ll) [GeV]", flow=False),
        hist.axis.Variable(PTLL_EDGES, name="ptll", label="pT(ll) [GeV]", underflow=False),
        hist.axis.Regular(24, -2.4, 2.4, name="yll", label="y(ll)", flow=False),
    ]


class ZDileptonProcessor(MuonHistogramProcessor):
    """Exactly two tight muons of opposite charge, both isolated, no other loose muon, the
    trigger; the trigger scale factor applies to the leading muon.

    See :class:`~processors.base.MuonHistogramProcessor` for the parameters and the output.
    """

    def axes(self) -> list[hist.axis.AxesMixin]:
        return z_axes()

    def select(self, cols: Columns, muons: ak.Array) -> Selected:
        passes, lead, trail = dimuon(muons, self.cuts)
        events = np.flatnonzero(passes)
        index = np.stack([lead[events], trail[events]], axis=1)
        kin = gather(muons, events, index)
        isolated = np.all(kin["iso"] < self.cuts.iso_max, axis=1)
        return selected_muons(events, kin, index).subset(isolated)

    def observables(self, sel: Selected, pt: np.ndarray) -> tuple[np.ndarray, ...]:
        return dimuon_kinematics(
            pt[:, 0], sel.eta[:, 0], sel.phi[:, 0], pt[:, 1], sel.eta[:, 1], sel.phi[:, 1]
        )
