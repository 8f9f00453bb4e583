"""Published W-boson mass measurements and the electroweak-fit prediction, with references.

Values in MeV, total uncertainties (statistical and systematic in quadrature, as each paper
quotes its total). Drawn beside a run's m_W by
:func:`analysis.report.figures.mw_comparison_plot`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MW_EW_FIT", "MW_MEASUREMENTS", "Measurement"]


@dataclass(frozen=True)
class Measurement:
    """One published value of m_W: who, the value and total uncertainty in MeV, the reference."""

    label: str
    value: float
    error: float
    reference: str


MW_MEASUREMENTS: tuple[Measurement, ...] = (
    Measurement(
        "LEP combination",
        80376.0,
        33.0,
        "ALEPH, DELPHI, L3, OPAL and LEP EW WG, Phys. Rept. 532 (2013) 119, arXiv:1302.3415",
    ),
    Measurement(
        "D0 (Run I + II)",
        80375.0,
        23.0,
        "D0 Collaboration, Phys. Rev. Lett. 108 (2012) 151804, arXiv:1203.0293",
    ),
    Measurement(
        "CDF 2022",
        80433.5,
        9.4,
        "CDF Collaboration, Science 376 (2022) 170, doi:10.1126/science.abk1781",
    ),
    Measurement(
        "LHCb 2021",
        80354.0,
        32.0,
        "LHCb Collaboration, JHEP 01 (2022) 036, arXiv:2109.01113 "
        "(23 stat, 10 exp, 17 theory, 9 PDF)",
    ),
    Measurement(
        "ATLAS 2024",
        80366.5,
        15.9,
        "ATLAS Collaboration, Eur. Phys. J. C 84 (2024) 1309, arXiv:2403.15085",
    ),
    Measurement(
        "CMS 2024",
        80360.2,
        9.9,
        "CMS Collaboration, Nature 652 (2026) 321, arXiv:2412.13872",
    ),
)

#: the standard-model prediction of the global electroweak fit
MW_EW_FIT = Measurement(
    "EW fit (Gfitter)",
    80354.0,
    7.0,
    "J. Haller et al. (Gfitter), Eur. Phys. J. C 78 (2018) 675, arXiv:1803.01853",
)
