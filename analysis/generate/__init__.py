"""The synthetic NanoAOD generator (``wmass generate``): samples with a known truth.

:mod:`~analysis.generate.samples` writes the files (ROOT, ``datasets.yaml``, truth, lumi,
corrections); the physics lives in :mod:`~analysis.generate.physics` (kinematics),
:mod:`~analysis.generate.processes` (the processes), :mod:`~analysis.generate.detector`,
:mod:`~analysis.generate.weights` (theory weights), :mod:`~analysis.generate.truth` (the
detector truth) and :mod:`~analysis.generate.lumisections` (runs and lumisections).
"""

from analysis.generate.processes import MW_REF, MZ_REF
from analysis.generate.samples import (
    BATCH_SIZE,
    CALIBRATION_PROCESSES,
    COMPRESSIONS,
    GENERATOR_VERSION,
    MASS_REFERENCE_GEV,
    add_arguments,
    generate_batch,
    generate_samples,
    main,
    to_branches,
)

__all__ = [
    "BATCH_SIZE",
    "CALIBRATION_PROCESSES",
    "COMPRESSIONS",
    "GENERATOR_VERSION",
    "MASS_REFERENCE_GEV",
    "MW_REF",
    "MZ_REF",
    "add_arguments",
    "generate_batch",
    "generate_samples",
    "main",
    "to_branches",
]
