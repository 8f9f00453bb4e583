"""The root of wmass's errors, and the errors of the fit engine: one type per kind of failure.

:class:`WMassError` is the base of every error wmass raises on purpose, in every room. It lives
here because ``fit`` is the one package that imports nothing else of ours, so every room
(``corrections``, ``processors``, ``analysis``) can import it without a cycle; importing this
module does not import the rest of ``fit`` (its ``__init__`` is lazy). :mod:`corrections.errors`
and :mod:`processors.errors` re-export it, so ``from processors.errors import WMassError`` keeps
working.

Each kind of error carries the exit code of the command that stops on it (``exit_code``); a
subclass without its own keeps its parent's. ``wmass`` prints the one-line message and returns
that code (the table: ``docs/architecture.md``, "Errors and exit codes", and ``wmass --help``).

>>> issubclass(FitInputError, WMassError), FitInputError.exit_code, FitDidNotConverge.exit_code
(True, 6, 7)
>>> str(FitInputError("no such file", where="fitinput.h5"))
'fitinput.h5: no such file'
"""

from __future__ import annotations

from typing import Any

__all__ = ["FitDidNotConverge", "FitError", "FitInputError", "OutputError", "WMassError"]


class WMassError(Exception):
    """Base of every error wmass raises on purpose (exit code 1 unless the kind has its own)."""

    #: the exit code of ``wmass`` when this error stops it
    exit_code: int = 1


class OutputError(WMassError):
    """An output file cannot be written (disk full, file-size limit, I/O error, no permission).

    Outputs are written under a temporary name and renamed, so the file that was at ``path``
    before (if any) is unchanged and no partial file is left. Defined here, beside the root, so
    that ``fit`` (which writes through the same atomic writer, :mod:`fit.provenance`) raises the
    same kind as every other room; :mod:`processors.errors` re-exports it."""

    exit_code = 8

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"cannot write {path}: {reason} (the previous file, if any, is unchanged)")


class FitError(WMassError):
    """Base of every error the fit engine raises on purpose (never raised itself)."""


class FitInputError(FitError, ValueError):
    """The fit input is unusable; the message names the channel, process, bin or parameter.

    Raised for NaN or negative yields, data in a bin with no prediction, a parameter that has
    no effect and no constraint, an unknown name, or a malformed ``fitinput.h5``.
    """

    exit_code = 6

    def __init__(self, reason: str, *, where: str | None = None) -> None:
        self.reason, self.where = reason, where
        super().__init__(f"{where}: {reason}" if where else reason)


class FitDidNotConverge(FitError, RuntimeError):
    """The minimiser stopped without a minimum; ``reason`` says why.

    Reasons: ``"max iterations"``, ``"non-finite NLL"``, ``"Hessian not positive definite"``,
    ``"trust region collapsed"``, ``"minuit: ..."``. ``x`` holds the last point, ``edm`` the last
    estimated distance to the minimum (``nan`` when unknown).
    """

    exit_code = 7

    def __init__(
        self, reason: str, *, x: Any = None, edm: float = float("nan"), n_iter: int = 0
    ) -> None:
        self.reason, self.x, self.edm, self.n_iter = reason, x, edm, n_iter
        super().__init__(f"fit did not converge: {reason} (edm={edm:.3g}, iterations={n_iter})")
