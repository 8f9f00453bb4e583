"""The fit parameters a variation histogram provides: :class:`Nuisance` and
:func:`nuisances_of`, with the labels of the mass (POI) templates.

Names are shared by every channel of one fit: ``pdf{k}`` (Hessian pairs), ``qcdScaleW_*`` /
``qcdScaleZ_*`` (the 7-point scale variations as three pairs), the stem of every Up/Down pair
of the other histograms (one-sided variations are mirrored); the W QCD scales are
decorrelated per charge in the W-like channels (:data:`PER_CHARGE`).

>>> [n.name for n in nuisances_of("pileup", ["pileupUp", "pileupDown"], "Top")]
['pileup']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from analysis.constants import MASS_STEP_MEV
from analysis.postprocess.groups import W_PROCESSES, Z_PROCESSES

__all__ = [
    "MASS_STEP_MEV",
    "PER_CHARGE",
    "POI_DOWN",
    "POI_UP",
    "QCD_SCALE_PAIRS",
    "Nuisance",
    "nuisances_of",
]

#: the mass-weight labels that make the POI templates (processors.variations)
POI_UP, POI_DOWN = f"massShift{int(MASS_STEP_MEV)}MeV", f"massShift-{int(MASS_STEP_MEV)}MeV"
# LHEScaleWeight order: muR x muF in {0.5, 1, 2}^2 (processors.variations.QCD_SCALE_LABELS)
QCD_SCALE_PAIRS = {
    "muR": ("muR2_muF1", "muR0p5_muF1"),
    "muF": ("muR1_muF2", "muR1_muF0p5"),
    "muRmuF": ("muR2_muF2", "muR0p5_muF0p5"),
}
#: nuisances decorrelated per charge in the W-like channels (seminar: W QCD scales per charge)
PER_CHARGE = ("qcdScaleW_",)


@dataclass(frozen=True)
class Nuisance:
    """A fit parameter made from labels of a variation histogram ``hist_name``: ``up`` and
    ``down`` labels (``down=None``: mirrored)."""

    name: str
    hist_name: str
    up: str
    down: str | None
    #: decorrelated: the variation acts only in bin ``index`` of axis ``axis`` of the histogram
    axis: int | None = None
    index: int | None = None

    def in_slices(self, axis: int, n: int) -> list[Nuisance]:
        """One nuisance per bin of the charge-like ``axis``, named ``<name>_q<bin>``."""
        return [
            Nuisance(f"{self.name}_q{i}", self.hist_name, self.up, self.down, axis, i)
            for i in range(n)
        ]


def nuisances_of(hist_name: str, labels: list[str], process: str) -> list[Nuisance]:
    """The nuisances that the variation histogram ``hist_name`` of ``process`` provides.

    >>> nuisances_of("pdf", [f"pdf{i}" for i in range(5)], "Wmunu")[1]
    Nuisance(name='pdf2', hist_name='pdf', up='pdf3', down='pdf4', axis=None, index=None)
    """
    out: list[Nuisance] = []
    if hist_name == "massWeight":
        return out  # the mass is a POI (channel_setup)
    if hist_name == "pdf":
        rest = labels[1:]  # pdf0 is the nominal member
        for k in range(0, len(rest), 2):
            down = rest[k + 1] if k + 1 < len(rest) else None
            out.append(Nuisance(f"pdf{k // 2 + 1}", hist_name, rest[k], down))
        return out
    if hist_name == "qcdScale":
        prefix = (
            "qcdScaleW" if process in W_PROCESSES else "qcdScaleZ" if process in Z_PROCESSES else ""
        )
        if not prefix:
            return out
        for what, (up, down) in QCD_SCALE_PAIRS.items():
            if up in labels and down in labels:
                out.append(Nuisance(f"{prefix}_{what}", hist_name, up, down))
        return out
    stems: dict[str, dict[str, str]] = {}
    for label in labels:
        m = re.fullmatch(r"(.+?)(Up|Down)", label)
        stem, d = (m.group(1), m.group(2)) if m else (label, "Up")
        stems.setdefault(stem, {})[d] = label
    for stem, sides in stems.items():
        up = sides.get("Up") or sides["Down"]
        down = sides.get("Down") if "Up" in sides else None
        out.append(Nuisance(stem, hist_name, up, down))
    return out
