"""The errors a user of the analysis sees; re-exported from ``processors.errors``."""

from processors.errors import (
    BadInputFile,
    ConfigError,
    MissingBranch,
    RetryLimitExceeded,
    WMassError,
)

__all__ = ["BadInputFile", "ConfigError", "MissingBranch", "RetryLimitExceeded", "WMassError"]
