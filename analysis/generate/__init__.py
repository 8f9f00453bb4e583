"""The synthetic NanoAOD generator (``wmass generate``): samples with a known truth.

:mod:`~analysis.generate.samples` writes the files (ROOT, ``datasets.yaml``, truth, lumi,
corrections), one task per file (:mod:`~analysis.generate.files`) from batches of events
(:mod:`~analysis.generate.batch`) into ROOT files (:mod:`~analysis.generate.rootfile`); the
physics lives in :mod:`~analysis.generate.physics` (kinematics),
:mod:`~analysis.generate.processes` (the processes), :mod:`~analysis.generate.detector`,
:mod:`~analysis.generate.weights` (theory weights), :mod:`~analysis.generate.truth` (the
detector truth) and :mod:`~analysis.generate.lumisections` (runs and lumisections).
"""

from analysis.generate.batch import generate_batch, to_branches
from analysis.generate.files import BATCH_SIZE
from analysis.generate.processes import MW_REF, MZ_REF
from analysis.generate.rootfile import COMPRESSIONS
from analysis.generate.samples import (
    CALIBRATION_PROCESSES,
    GENERATOR_VERSION,
    MASS_REFERENCE_GEV,
    add_arguments,
    generate_samples,
    main,
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
