"""Process groups, luminosity normalisation and the groups of systematic uncertainties.

The datasets of ``datasets.yaml`` carry a ``process`` (docs/samples.md); the fit sees the
processes below. ``QCD`` simulation is never a fit process: the nonprompt background comes
from data (:mod:`analysis.postprocess.nonprompt`); its MC is kept only to check the closure
of the method.

>>> round(mc_scale(xsec_pb=20508.9, lumi_pb=100.0, sumw=1.0e6), 6)
2.05089
>>> systematic_group("effStat_eta3_idip_eig0")
'Muon eff. stat.'
"""

from __future__ import annotations

import re

__all__ = [
    "DATA",
    "NONPROMPT",
    "PROMPT_BACKGROUNDS",
    "SIGNAL",
    "SYSTEMATIC_GROUPS",
    "W_PROCESSES",
    "Z_PROCESSES",
    "mc_scale",
    "systematic_group",
]

#: the W -> mu nu signal
SIGNAL = "Wmunu"
#: prompt backgrounds, taken from simulation
PROMPT_BACKGROUNDS = ("Wtaunu", "Zmumu", "Ztautau", "Top", "Diboson")
#: the nonprompt (QCD multijet) background, estimated from data
NONPROMPT = "Nonprompt"
#: the data process name in datasets.yaml
DATA = "Data"
#: processes with a W boson (carry the W mass and W QCD-scale variations)
W_PROCESSES = ("Wmunu", "Wtaunu")
#: processes with a Z boson
Z_PROCESSES = ("Zmumu", "Ztautau")

#: (pattern on the nuisance name, group) in the order of the seminar's table of systematic
#: uncertainties; the first match wins.
SYSTEMATIC_GROUPS: tuple[tuple[str, str], ...] = (
    (r"^effStat_", "Muon eff. stat."),
    (r"^effSyst", "Muon eff. syst."),
    (r"^nonprompt_", "Nonprompt background"),
    (r"^norm_", "Prompt background"),
    (r"^muonScale_", "Muon momentum scale"),
    (r"^prefiringStat_", "L1 prefire"),
    (r"^lumi$", "Luminosity"),
    (r"^pdf", "PDF"),
    (r"^qcdScaleW", "W QCD scales muF, muR"),
    (r"^qcdScaleZ", "Z QCD scales muF, muR"),
    (r"^qcdScale", "QCD scales muF, muR"),
    (r"^pileup", "Pileup"),
    (r"^massShiftZ|^mZ$", "Z mass"),
    (r"^massShift|^mW$", "W mass"),
)


def systematic_group(name: str) -> str:
    """The group (a row of the seminar's table) of the nuisance ``name``; ``Other`` if none."""
    for pattern, group in SYSTEMATIC_GROUPS:
        if re.search(pattern, name):
            return group
    return "Other"


def mc_scale(xsec_pb: float, lumi_pb: float, sumw: float) -> float:
    """Weight that normalises simulation to the data: ``xsec * lumi / sumw``."""
    if sumw == 0:
        raise ValueError("mc_scale: the sum of generator weights is 0")
    return float(xsec_pb) * float(lumi_pb) / float(sumw)
