"""Operations on systematic variations: mirror, symmetrise, decorrelate.

A variation is stored as the varied prediction itself (not a ratio), in an array whose
last axis runs over the variations; the nominal has the same shape without it. All
functions work on plain numpy arrays, so they apply equally to ``hist`` values and to the
tensors of the fit input.

>>> import numpy as np
>>> nominal, up = np.array([100.0, 50.0]), np.array([110.0, 40.0])
>>> mirror(nominal, up)            # down = nominal**2 / up: a log-symmetric variation
array([90.90909091, 62.5       ])
>>> symmetrise(nominal, up, np.array([95.0, 55.0]), how="average")
(array([107.5,  42.5]), array([92.5, 57.5]))
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = ["decorrelate", "mirror", "symmetrise"]


def mirror(nominal: np.ndarray, up: np.ndarray) -> np.ndarray:
    """The down variation of a one-sided ``up``: ``nominal**2 / up``.

    It is the reflection of ``up`` in log space (log-kappa_down = -log-kappa_up), the right
    partner for the log-normal response of the fit. ``nominal`` broadcasts against ``up``
    (e.g. ``nominal[..., None]`` against ``[..., n_var]``). Bins where ``up`` is 0 keep the
    nominal.
    """
    nominal, up = np.asarray(nominal, dtype=float), np.asarray(up, dtype=float)
    nominal_b = np.broadcast_to(nominal, np.broadcast_shapes(nominal.shape, up.shape))
    out = nominal_b.copy()
    np.divide(nominal_b * nominal_b, up, out=out, where=up != 0)
    return out


def symmetrise(
    nominal: np.ndarray,
    up: np.ndarray,
    down: np.ndarray,
    how: Literal["average", "conservative"] = "average",
) -> tuple[np.ndarray, np.ndarray]:
    """A symmetric pair ``(up', down')`` around ``nominal`` from an asymmetric one.

    ``average``: the shift is the mean of the two shifts, ``(up - down) / 2``, keeping the
    sign of ``up`` (a one-sided effect, both variations on the same side, averages to a
    small shift). ``conservative``: the larger absolute shift of the two, with the sign of
    the up shift (``down`` when ``up`` is at the nominal). Both return
    ``nominal + delta, nominal - delta``.
    """
    nominal = np.asarray(nominal, dtype=float)
    d_up = np.asarray(up, dtype=float) - nominal
    d_down = np.asarray(down, dtype=float) - nominal
    if how == "average":
        delta = 0.5 * (d_up - d_down)
    elif how == "conservative":
        size = np.maximum(np.abs(d_up), np.abs(d_down))
        sign = np.where(d_up != 0, np.sign(d_up), -np.sign(d_down))
        delta = sign * size
    else:
        raise ValueError(f"symmetrise: how must be 'average' or 'conservative', not {how!r}")
    return nominal + delta, nominal - delta


def decorrelate(
    nominal: np.ndarray,
    varied: np.ndarray,
    axis: int,
    *,
    slices: list[np.ndarray] | None = None,
) -> np.ndarray:
    """One variation per slice of ``axis``: in variation ``k`` only slice ``k`` is varied.

    ``varied`` has the shape of ``nominal`` plus a last variation axis ``[..., n_var]``; the
    result has one more axis in front of it, ``[..., n_slices, n_var]``: entry
    ``[..., k, v]`` is ``varied[..., v]`` inside slice ``k`` of ``axis`` and the nominal
    everywhere else. ``slices`` groups bins of ``axis`` into slices (a list of index
    arrays, e.g. eta bins into regions); by default each bin is its own slice. The sum over
    slices of the shifts is the original (fully correlated) shift.
    """
    nominal = np.asarray(nominal, dtype=float)
    varied = np.asarray(varied, dtype=float)
    if varied.shape[:-1] != nominal.shape:
        raise ValueError(
            f"decorrelate: variations {varied.shape} do not extend the nominal {nominal.shape}"
        )
    axis = axis % nominal.ndim
    n = nominal.shape[axis]
    if slices is None:
        slices = [np.array([i]) for i in range(n)]
    member = np.zeros((len(slices), n), dtype=bool)
    for k, idx in enumerate(slices):
        member[k, np.asarray(idx)] = True
    # mask[..., k] broadcast over the nominal's axes: True where the bin is in slice k
    shape = [1] * nominal.ndim + [len(slices)]
    shape[axis] = n
    mask = np.moveaxis(member, 0, -1).reshape(shape)[..., None]  # [..., n_slices, 1]
    return np.where(mask, varied[..., None, :], nominal[..., None, None])
