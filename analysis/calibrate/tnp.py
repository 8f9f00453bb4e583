"""Tag-and-probe selection and the pass/fail dimuon-mass histograms per (eta, pT) bin of the probe.

The tag is trigger-matched (``Dimuons.trig_match``, :mod:`analysis.calibrate.trigger`): on
real NanoAOD to a ``TrigObj`` muon of the isolated single-muon leg within deltaR 0.1; the
generated NanoAOD has no trigger objects and its ``HLT_IsoMu24`` fires, with the trigger
efficiency of that muon, on the *first tight-ID muon* of the event (docs/samples.md), which
is then the matched muon:

- **ID+IP** (``idip``): tag = the leading muon, tight (ID + |dxy| + |dz|), isolated,
  pT > ``tag_pt_min``, trigger-matched. Being the leading muon and tight, the tag *is* the
  trigger muon whatever the probe does, so the trigger decision does not depend on the probe.
  Probe = the second muon, opposite charge, any quality; it passes if it is a tight muon
  (tight ID and the impact-parameter cuts of :class:`processors.selection.MuonCuts`).
- **trigger**: both muons tight and isolated, opposite charge; the probe is the leading one
  (the muon the trigger looks at), the tag the other. With trigger objects the tag must be
  matched (the event was recorded because of the tag) and the probe passes if it is matched
  too; in the generator only the leading tight muon can fire, so the tag is not required to
  match (the sample is not trigger-selected) and the probe passes if the event fired.

No isolation efficiency is measured: the selection's isolation cut has no data/MC difference
in the generator beyond pileup (which the pileup weights correct) and ``corrections.json`` has
no isolation payload; no charge binning either (the generator's efficiencies do not depend on
the charge). The probe pT of the data is the scale-corrected pT (``pt_scale``).

Histograms: the mass in ``[MassGrid.lo, MassGrid.hi]`` per (eta, pT, fail/pass) bin for data
and MC (sum of ``genWeight`` and of its square), and the MC mass on the finer, wider template
grid that the signal shape of the fit is made from (:mod:`analysis.calibrate.peakfit`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.calibrate.events import Dimuons

__all__ = [
    "KINDS",
    "MassGrid",
    "ProbeHistograms",
    "Probes",
    "TnpBinning",
    "dimuon_mass",
    "histogram_probes",
    "select_probes",
]

KINDS = ("idip", "trigger")


@dataclass(frozen=True)
class MassGrid:
    """The dimuon-mass binning of the fit (``lo``-``hi`` in ``width`` bins) and the wider range
    ``tlo``-``thi`` (same bin width) of the MC template, so that the smearing can move MC
    events into the window."""

    lo: float = 60.0
    hi: float = 120.0
    width: float = 1.0
    tlo: float = 50.0
    thi: float = 130.0

    def _n(self, lo: float, hi: float) -> int:
        n = (hi - lo) / self.width
        if not np.isclose(n, round(n)) or lo < self.tlo or hi > self.thi:
            raise ValueError(f"MassGrid: {lo}-{hi} is not whole bins of {self.width} in range")
        return round(n)

    @property
    def edges(self) -> np.ndarray:
        return np.linspace(self.lo, self.hi, self._n(self.lo, self.hi) + 1)

    @property
    def template_edges(self) -> np.ndarray:
        self._n(self.tlo, self.lo)  # the window starts on a template edge
        return np.linspace(self.tlo, self.thi, self._n(self.tlo, self.thi) + 1)


@dataclass(frozen=True)
class TnpBinning:
    """Probe (eta, pT) bins of one efficiency; ``free_below``: pT under which the scale factor
    is not smoothed (the trigger turn-on), see :mod:`analysis.calibrate.smoothing`."""

    eta_edges: tuple[float, ...]
    pt_edges: tuple[float, ...]
    free_below: float = 0.0


#: eight eta bins; pT edges a subset of the generator's efficiency grid
_ETA8 = (-2.4, -1.8, -1.2, -0.6, 0.0, 0.6, 1.2, 1.8, 2.4)
DEFAULT_BINNING = {
    "idip": TnpBinning(_ETA8, (15, 20, 25, 30, 35, 41, 47, 55, 100)),
    "trigger": TnpBinning(_ETA8, (24, 25, 26, 28, 30, 35, 41, 47, 55, 70, 100), free_below=30),
}


@dataclass
class Probes:
    """One probe per entry: pair mass, probe eta and pT, passed, event weight."""

    mass: np.ndarray
    eta: np.ndarray
    pt: np.ndarray
    passed: np.ndarray
    weight: np.ndarray


def dimuon_mass(d: Dimuons, pt: np.ndarray) -> np.ndarray:
    """Mass of the two muons with the transverse momenta ``pt`` (``[n, 2]``)."""
    from processors.selection import dimuon_kinematics

    mll, _, _ = dimuon_kinematics(
        pt[:, 0], d.eta[:, 0], d.phi[:, 0], pt[:, 1], d.eta[:, 1], d.phi[:, 1]
    )
    return mll


def select_probes(
    d: Dimuons,
    kind: str,
    pt_scale: np.ndarray | None = None,
    *,
    tag_pt_min: float = 26.0,
    iso_max: float | None = None,
    trigger_tag_pt_min: float = 0.0,
    tag_iso_max: float | None = None,
) -> Probes:
    """The probes of efficiency ``kind`` ("idip" or "trigger") among the pairs ``d``.

    ``pt_scale``: the (scale-corrected) pT to use, ``[n, 2]``; default the raw pT.
    ``tag_pt_min``: the ID+IP tag's pT cut; ``trigger_tag_pt_min``: the trigger tag's (none
    by default); ``tag_iso_max``: the tag's isolation cut (default ``iso_max``, the
    selection's); the systematics' alternative tag selection tightens these.
    """
    from processors.selection import MuonCuts

    iso_max = MuonCuts().iso_max if iso_max is None else iso_max
    pt = d.pt if pt_scale is None else pt_scale
    opposite = d.charge[:, 0] * d.charge[:, 1] < 0
    isolated = d.iso < iso_max
    tag_isolated = d.iso < (iso_max if tag_iso_max is None else tag_iso_max)
    if kind == "idip":
        probe = 1
        keep = opposite & d.tight[:, 0] & tag_isolated[:, 0] & (pt[:, 0] > tag_pt_min)
        keep &= d.trig_match[:, 0]
        passed = d.tight[:, probe]
    elif kind == "trigger":
        probe = 0
        keep = opposite & d.tight[:, 0] & d.tight[:, 1] & isolated[:, 0] & tag_isolated[:, 1]
        keep &= ~d.trigobj | d.trig_match[:, 1]  # real trigger objects: a matched tag
        keep &= pt[:, 1] > trigger_tag_pt_min
        passed = np.where(d.trigobj, d.trig_match[:, 0], d.hlt)
    else:
        raise ValueError(f"unknown efficiency {kind!r}; known {KINDS}")
    mass = dimuon_mass(d, pt)
    return Probes(
        mass=mass[keep],
        eta=d.eta[keep, probe],
        pt=pt[keep, probe],
        passed=np.asarray(passed[keep], bool),
        weight=d.weight[keep],
    )


@dataclass
class ProbeHistograms:
    """Pass/fail mass histograms of one efficiency; axis ``[eta, pt, fail/pass, mass]``."""

    kind: str
    binning: TnpBinning
    grid: MassGrid
    data: np.ndarray  # counts
    mc: np.ndarray  # sum of weights
    mc_sumw2: np.ndarray
    template: np.ndarray  # MC on the template grid, [eta, pt, fail/pass, template bin]

    @property
    def shape(self) -> tuple[int, int]:
        return self.data.shape[:2]


def _index(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of ``x`` in ``edges`` (-1 outside; the last bin includes its upper edge, as
    ``numpy.histogram``)."""
    i = np.searchsorted(edges, x, side="right") - 1
    i = np.where(x == edges[-1], len(edges) - 2, i)
    return np.where((x >= edges[0]) & (x <= edges[-1]), i, -1)


def _fill(p: Probes, binning: TnpBinning, mass_edges: np.ndarray, squared: bool = False):
    """``[eta, pt, fail/pass, mass]`` histogram of the probes: one ``numpy.bincount`` of the
    flattened bin index (the same as ``numpy.histogramdd``, several times faster)."""
    edges = [np.asarray(binning.eta_edges, float), np.asarray(binning.pt_edges, float)]
    mass_edges = np.asarray(mass_edges, float)
    shape = (len(edges[0]) - 1, len(edges[1]) - 1, 2, len(mass_edges) - 1)
    ie, ip, im = _index(p.eta, edges[0]), _index(p.pt, edges[1]), _index(p.mass, mass_edges)
    inside = (ie >= 0) & (ip >= 0) & (im >= 0)
    flat = np.ravel_multi_index(
        (ie[inside], ip[inside], p.passed[inside].astype(np.intp), im[inside]), shape
    )
    w = (p.weight**2 if squared else p.weight)[inside]
    return np.bincount(flat, weights=w, minlength=int(np.prod(shape))).reshape(shape)


def histogram_probes(
    kind: str, data: Probes, mc: Probes, binning: TnpBinning, grid: MassGrid | None = None
) -> ProbeHistograms:
    """Fill the :class:`ProbeHistograms` of ``kind`` from the data and MC probes."""
    grid = grid or MassGrid()
    return ProbeHistograms(
        kind=kind,
        binning=binning,
        grid=grid,
        data=_fill(data, binning, grid.edges),
        mc=_fill(mc, binning, grid.edges),
        mc_sumw2=_fill(mc, binning, grid.edges, squared=True),
        template=_fill(mc, binning, grid.template_edges),
    )
