"""The report's error type."""

from __future__ import annotations

from processors.errors import WMassError

__all__ = ["ReportError"]


class ReportError(WMassError):
    """A report cannot be written from these inputs (names the file or the key)."""

    exit_code = 13
