"""Errors raised while reading and processing events: one type per kind of failure.

:class:`WMassError` (the base of them all) and :class:`OutputError` are defined in
:mod:`fit.errors`, :class:`BadCorrections` in :mod:`corrections.errors`, so that the fit and the
corrections code can raise them too; import them from here. Each kind has its ``exit_code``
(``docs/architecture.md``, "Errors and exit codes").
"""

from __future__ import annotations

from corrections.errors import BadCorrections
from fit.errors import OutputError, WMassError

__all__ = [
    "BadCorrections",
    "BadInputFile",
    "ConfigError",
    "CorrectionsWarning",
    "MissingBranch",
    "MistypedBranch",
    "OutputError",
    "RetryLimitExceeded",
    "WMassError",
]


class BadInputFile(WMassError):
    """A file cannot be opened or read (missing, truncated, not ROOT, no ``Events`` tree)."""

    exit_code = 3

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"bad input file {path}: {reason}")


class MissingBranch(WMassError):
    """A branch the analysis needs is not in the file."""

    exit_code = 4

    #: the names looked for, the branch's first (its other NanoAOD versions' names after it)
    alternatives: tuple[str, ...] = ()

    def __init__(self, branch: str, path: str | None = None, hint: str = "") -> None:
        self.branch, self.path = branch, path
        where = f" in {path}" if path else ""
        super().__init__(f"missing branch {branch!r}{where}" + (f": {hint}" if hint else ""))


class MistypedBranch(MissingBranch):
    """A branch the analysis needs is in the file with another type than NanoAOD's (a float
    quantity stored as an integer, an integer as a float, a flag as a number): the branch as
    the analysis needs it is missing, and reading it anyway would silently change the result.
    """

    def __init__(self, branch: str, path: str | None, found: str, expected: str) -> None:
        self.found, self.expected = found, expected
        super().__init__(branch, path)
        where = f" in {path}" if path else ""
        self.args = (f"branch {branch!r}{where} has type {found}, expected {expected} (NanoAOD)",)


class ConfigError(WMassError):
    """A configuration (datasets.yaml, deploy YAML, CLI choice) is wrong; the key is named."""

    exit_code = 2  # as argparse's usage errors

    def __init__(self, key: str, reason: str, source: str | None = None) -> None:
        self.key, self.source = key, source
        where = f" in {source}" if source else ""
        super().__init__(f"config error{where}: {key}: {reason}")


class RetryLimitExceeded(WMassError):
    """A recovery loop (redoing lost chunks, harvesting a worker) hit its bound; ``what`` names
    the chunk or worker, ``attempts`` how often it was tried, ``reason`` the last failure."""

    exit_code = 9

    def __init__(self, what: str, attempts: int, reason: str) -> None:
        self.what, self.attempts, self.reason = what, attempts, reason
        super().__init__(f"{what}: gave up after {attempts} attempts: {reason}")


class CorrectionsWarning(UserWarning):
    """A corrections payload lacks corrections the processors would apply (a warning, not an
    error: a partial payload is allowed, but never used silently)."""
