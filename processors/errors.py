"""Errors raised while reading and processing events: one type per kind of failure."""

from __future__ import annotations

__all__ = ["BadInputFile", "ConfigError", "MissingBranch", "RetryLimitExceeded", "WMassError"]


class WMassError(Exception):
    """Base of every error wmass raises on purpose."""


class BadInputFile(WMassError):
    """A file cannot be opened or read (missing, truncated, not ROOT, no ``Events`` tree)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"bad input file {path}: {reason}")


class MissingBranch(WMassError):
    """A branch the analysis needs is not in the file."""

    #: the names looked for, the branch's first (its other NanoAOD versions' names after it)
    alternatives: tuple[str, ...] = ()

    def __init__(self, branch: str, path: str | None = None, hint: str = "") -> None:
        self.branch, self.path = branch, path
        where = f" in {path}" if path else ""
        super().__init__(f"missing branch {branch!r}{where}" + (f": {hint}" if hint else ""))


class ConfigError(WMassError):
    """A configuration (datasets.yaml, deploy YAML, CLI choice) is wrong; the key is named."""

    def __init__(self, key: str, reason: str, source: str | None = None) -> None:
        self.key, self.source = key, source
        where = f" in {source}" if source else ""
        super().__init__(f"config error{where}: {key}: {reason}")


class RetryLimitExceeded(WMassError):
    """A recovery loop (redoing lost chunks, harvesting a worker) hit its bound; ``what`` names
    the chunk or worker, ``attempts`` how often it was tried, ``reason`` the last failure."""

    def __init__(self, what: str, attempts: int, reason: str) -> None:
        self.what, self.attempts, self.reason = what, attempts, reason
        super().__init__(f"{what}: gave up after {attempts} attempts: {reason}")
