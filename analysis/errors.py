"""The errors a user of the analysis sees: the family's root and its common kinds.

Every error wmass raises on purpose is a :class:`WMassError` (defined in :mod:`fit.errors`,
re-exported through :mod:`corrections.errors` and :mod:`processors.errors`); each kind has an
``exit_code``, the code ``wmass`` returns when it stops on it (``docs/architecture.md``,
"Errors and exit codes"). The kinds of one room live in that room (``ChunkFailed``,
``CheckpointMismatch``: :mod:`analysis.runner`; ``TooFewEvents``: :mod:`analysis.calibrate`;
``ReportError``: :mod:`analysis.report`; ``BlindingError``: :mod:`analysis.course`).

>>> from fit import FitError
>>> issubclass(FitError, WMassError), ConfigError.exit_code, BadInputFile.exit_code
(True, 2, 3)
"""

from fit.errors import FitDidNotConverge, FitError, FitInputError
from processors.errors import (
    BadCorrections,
    BadInputFile,
    ConfigError,
    MissingBranch,
    MistypedBranch,
    OutputError,
    RetryLimitExceeded,
    WMassError,
)

__all__ = [
    "BadCorrections",
    "BadInputFile",
    "ConfigError",
    "FitDidNotConverge",
    "FitError",
    "FitInputError",
    "MissingBranch",
    "MistypedBranch",
    "OutputError",
    "RetryLimitExceeded",
    "WMassError",
]
