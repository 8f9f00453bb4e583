"""The error of a correctionlib payload that cannot be used; re-exports the root of wmass's errors.

:class:`WMassError`, the base of every error wmass raises on purpose, is defined in
:mod:`fit.errors` (``fit`` imports nothing else of ours, so every room can import it without a
cycle) and re-exported here, so that ``corrections`` can raise errors the command line reports
as one line. :mod:`processors.errors` re-exports both with the other error types.
"""

from __future__ import annotations

from fit.errors import WMassError

__all__ = ["BadCorrections", "WMassError"]


class BadCorrections(WMassError):
    """A correctionlib file cannot be used: unreadable, not UTF-8 JSON, not a correctionlib
    payload (wrong schema version, malformed corrections). Names the file and the reason."""

    exit_code = 5

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"bad corrections file {path}: {reason}")
