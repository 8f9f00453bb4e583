"""Errors of the fit engine: one type per kind of failure.

``fit`` stands alone (it imports nothing else of ours), so it has its own base class
:class:`FitError`; ``wmass fit`` turns any of them into a one-line message and exit code 1.
"""

from __future__ import annotations

__all__ = ["FitDidNotConverge", "FitError", "FitInputError"]


class FitError(Exception):
    """Base of every error the fit engine raises on purpose."""


class FitInputError(FitError, ValueError):
    """The fit input is unusable; the message names the channel, process, bin or parameter.

    Raised for NaN or negative yields, data in a bin with no prediction, a parameter that has
    no effect and no constraint, an unknown name, or a malformed ``fitinput.h5``.
    """

    def __init__(self, reason: str, *, where: str | None = None) -> None:
        self.reason, self.where = reason, where
        super().__init__(f"{where}: {reason}" if where else reason)


class FitDidNotConverge(FitError, RuntimeError):
    """The minimiser stopped without a minimum; ``reason`` says why.

    Reasons: ``"max iterations"``, ``"non-finite NLL"``, ``"Hessian not positive definite"``,
    ``"trust region collapsed"``, ``"minuit: ..."``. ``x`` holds the last point, ``edm`` the last
    estimated distance to the minimum (``nan`` when unknown).
    """

    def __init__(self, reason: str, *, x=None, edm: float = float("nan"), n_iter: int = 0) -> None:
        self.reason, self.x, self.edm, self.n_iter = reason, x, edm, n_iter
        super().__init__(f"fit did not converge: {reason} (edm={edm:.3g}, iterations={n_iter})")
