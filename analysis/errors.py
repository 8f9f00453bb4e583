"""The errors a user of the analysis sees; re-exported from ``processors.errors``."""

from processors.errors import BadInputFile, ConfigError, MissingBranch, WMassError

__all__ = ["BadInputFile", "ConfigError", "MissingBranch", "WMassError"]
