"""W-like Z: one muon of a Z -> mu mu event is kept, the other is added to the MET as if it were
the neutrino; the same 5D histograms as the W analysis.

The MET is corrected like the muons (:func:`~processors.base.met_with_pt`), so MET + the
"neutrino" muon is minus the kept muon and the recoil: the neutrino muon's scale cancels in it,
while a change of the kept muon's pT moves it the other way, as for a real W.
"""

from __future__ import annotations

import awkward as ak
import hist
import numpy as np

from processors.base import MuonHistogramProcessor, Selected, gather, met_with_pt
from processors.columns import Columns
from processors.muons import selected_muons
from processors.selection import dimuon, dimuon_kinematics, transverse_mass_xy
from processors.wmass import w_axes

__all__ = ["WLikeProcessor", "kept_charge"]


def kept_charge(event: np.ndarray) -> np.ndarray:
    """Charge of the kept muon: odd event number -> the positive muon, even -> the negative."""
    return np.where(np.asarray(event) % 2 == 1, 1, -1)


class WLikeProcessor(MuonHistogramProcessor):
    """Z selection (two tight opposite-charge muons, no other loose muon, 60 < m(ll) < 120 GeV,
    the other muon isolated); histograms of the kept muon's (pt, eta, charge, passIso) and the
    mT of the kept muon with MET + the other muon's pT. Both muons get efficiency scale factors;
    the trigger one applies to the kept muon.
    """

    mll_window = (60.0, 120.0)
    uses_met = True

    def axes(self) -> list[hist.axis.AxesMixin]:
        return w_axes(self.cuts.iso_max)

    def select(self, cols: Columns, muons: ak.Array) -> Selected:
        passes, lead, trail = dimuon(muons, self.cuts)
        events = np.flatnonzero(passes)
        pair = np.stack([lead[events], trail[events]], axis=1)
        kin = gather(muons, events, pair)
        want = kept_charge(cols.flat("event", np.uint64)[events])
        first_kept = kin["charge"][:, 0] == want
        order = np.where(first_kept[:, None], [0, 1], [1, 0])  # column 0: kept, 1: neutrino
        rows = np.arange(len(events))[:, None]
        kin = {k: v[rows, order] for k, v in kin.items()}
        sel = selected_muons(events, kin, pair[rows, order])
        mll = dimuon_kinematics(
            sel.pt[:, 0], sel.eta[:, 0], sel.phi[:, 0], sel.pt[:, 1], sel.eta[:, 1], sel.phi[:, 1]
        )[0]
        lo, hi = self.mll_window
        keep = (mll > lo) & (mll < hi) & (sel.iso[:, 1] < self.cuts.iso_max)
        return sel.subset(keep)

    def observables(self, sel: Selected, pt: np.ndarray) -> tuple[np.ndarray, ...]:
        met_x, met_y = met_with_pt(sel, pt)
        met_x = met_x + pt[:, 1] * np.cos(sel.phi[:, 1])
        met_y = met_y + pt[:, 1] * np.sin(sel.phi[:, 1])
        mt = transverse_mass_xy(pt[:, 0], sel.phi[:, 0], met_x, met_y)
        return pt[:, 0], sel.eta[:, 0], sel.charge[:, 0], sel.iso[:, 0] < self.cuts.iso_max, mt
