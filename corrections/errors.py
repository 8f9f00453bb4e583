"""The root of wmass's errors, and the error of a correctionlib payload that cannot be used.

:class:`WMassError` lives here, at the bottom of the ``analysis -> processors -> corrections``
chain, so that ``corrections`` (which imports nothing else of wmass) can raise errors the
command line reports as one line; :mod:`processors.errors` re-exports it with the other error
types, and everyone else imports it from there.
"""

from __future__ import annotations

__all__ = ["BadCorrections", "WMassError"]


class WMassError(Exception):
    """Base of every error wmass raises on purpose."""


class BadCorrections(WMassError):
    """A correctionlib file cannot be used: unreadable, not UTF-8 JSON, not a correctionlib
    payload (wrong schema version, malformed corrections). Names the file and the reason."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"bad corrections file {path}: {reason}")
