"""The reference constants of the analysis, in one place: boson masses and widths, mass templates.

The simulation (:mod:`analysis.generate`) draws the W and Z line shapes as relativistic
Breit-Wigners with these masses and widths, the PDG values of the Review of Particle Physics
2018 (M. Tanabashi et al., Phys. Rev. D 98, 030001), the world averages of the time when the
reference W mass of the CMS/ATLAS analyses was fixed:

==================  ============  ===========================================================
name                value         meaning (PDG 2018)
==================  ============  ===========================================================
``MW_REF``          80.379 GeV    m_W world average (80.379 +- 0.012 GeV): the mass the MC is
                                  generated at, the centre of the mass templates
``MW_REF_MEV``      80379.0 MeV   the same in MeV (the fit's POI ``mW`` is in MeV)
``GAMMA_W``         2.085 GeV     Gamma_W (2.085 +- 0.042 GeV)
``MZ_REF``          91.1876 GeV   m_Z (91.1876 +- 0.0021 GeV, LEP): Z generation and the
                                  momentum-scale calibration's reference
``GAMMA_Z``         2.4952 GeV    Gamma_Z (2.4952 +- 0.0023 GeV)
``MASS_STEP_MEV``   100.0 MeV     the +-1 step of the mass templates (``massShift100MeV``):
                                  the POI's scale, ``m = MW_REF_MEV + MASS_STEP_MEV * theta``
``MASS_SHIFTS_MEV`` -100..100     the mass-weight shifts of ``MEParamWeight`` in 10 MeV steps
                                  (the NanoAOD layout :mod:`processors.variations` reads)
==================  ============  ===========================================================

``fit`` does not import this module (it stands alone; its docstring examples write the numbers),
and :mod:`processors.variations` keeps its own ``MASS_SHIFTS_MEV`` (``processors`` never
imports ``analysis``); ``tests/test_constants.py`` checks that both agree and that nothing in
``analysis``, ``processors`` or ``corrections`` writes these numbers again. This module imports
nothing, so ``wmass generate`` and the course pay nothing for it.

>>> MW_REF, MW_REF_MEV, MZ_REF
(80.379, 80379.0, 91.1876)
>>> MASS_SHIFTS_MEV[0], MASS_SHIFTS_MEV[-1], len(MASS_SHIFTS_MEV)
(-100, 100, 21)
"""

from __future__ import annotations

__all__ = [
    "GAMMA_W",
    "GAMMA_Z",
    "MASS_SHIFTS_MEV",
    "MASS_SHIFT_GRID_MEV",
    "MASS_STEP_MEV",
    "MW_REF",
    "MW_REF_MEV",
    "MZ_REF",
]

#: the reference W mass in MeV, the centre of the mass templates (PDG 2018: 80.379 GeV)
MW_REF_MEV: float = 80379.0
#: the reference W mass in GeV (the same number: 80379.0 / 1000 is exactly the double 80.379)
MW_REF: float = MW_REF_MEV / 1000.0
#: the W width in GeV (PDG 2018)
GAMMA_W: float = 2.085
#: the reference Z mass in GeV (PDG 2018, LEP)
MZ_REF: float = 91.1876
#: the Z width in GeV (PDG 2018)
GAMMA_Z: float = 2.4952
#: the +-1 step of the mass templates, MeV (the POI's scale)
MASS_STEP_MEV: float = 100.0
#: the spacing of the mass-weight shifts, MeV
MASS_SHIFT_GRID_MEV: int = 10
#: the mass-weight shifts, MeV: -100, -90, ..., 100 (``massShift{d}MeV``)
MASS_SHIFTS_MEV: tuple[int, ...] = tuple(
    range(-int(MASS_STEP_MEV), int(MASS_STEP_MEV) + 1, MASS_SHIFT_GRID_MEV)
)
