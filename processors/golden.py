"""The golden JSON: which luminosity sections of the data are certified for physics.

One implementation for the whole chain (the processors' event selection, the luminosity sum
of :mod:`analysis.lumi`, the calibration's tag-and-probe). A golden JSON maps a run number
to inclusive ranges of luminosity sections, ``{"315257": [[1, 88], [91, 92]], ...}``; it is
read once into sorted arrays of packed ``(run << 32) | ls`` range limits, and a lookup is one
``numpy.searchsorted``. It gives the same answer as coffea's ``LumiMask`` (tested against it)
without importing ``coffea.lumi_tools``, which compiles numba functions at import: several
seconds in every worker process and again in the driver.

>>> mask = GoldenJSON({"1": [[1, 3], [7, 7]], "2": [[5, 9]]})
>>> mask([1, 1, 1, 2, 3], [3, 4, 7, 9, 1]).tolist()
[True, False, True, True, False]
>>> len(mask)
3
>>> GoldenJSON({"1": [[1, 5], [3, 8], [9, 9]]})([1, 1], [8, 10]).tolist()  # merged: [1, 9]
[True, False]
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["GoldenJSON", "pack_run_ls"]


def pack_run_ls(run: np.ndarray | Sequence[int], ls: np.ndarray | Sequence[int]) -> np.ndarray:
    """``(run << 32) | ls`` as int64: one sortable number per luminosity section.

    >>> pack_run_ls([1], [2]).tolist()
    [4294967298]
    """
    run = np.asarray(run, dtype=np.int64)
    ls = np.asarray(ls, dtype=np.int64)
    return (run << 32) | ls


class GoldenJSON:
    """``mask(run, ls) -> bool array``: the certified luminosity sections of a golden JSON.

    ``source``: a path to the JSON file or its content (a mapping). Malformed content raises
    ``ValueError`` or ``TypeError`` saying what is wrong (callers turn it into their named
    error with the file's name).
    """

    def __init__(self, source: str | os.PathLike | Mapping[str, Sequence[Sequence[int]]]) -> None:
        if isinstance(source, Mapping):
            doc, self.source = source, None
        else:
            self.source = str(source)
            doc = json.loads(Path(source).read_text())
        if not isinstance(doc, Mapping):
            raise ValueError("top level must be {run: [[first, last], ...]}")
        limits = []
        for run, ranges in doc.items():
            for pair in ranges:
                if len(pair) != 2:
                    raise ValueError(f"run {run}: a range must be [first, last], got {pair!r}")
                first, last = int(pair[0]), int(pair[1])
                if first > last:
                    raise ValueError(f"run {run}: range [{first}, {last}] is empty")
                limits.append((int(run), first, last))
        limits.sort()
        merged: list[list[int]] = []
        for run, first, last in limits:
            if merged and merged[-1][0] == run and first <= merged[-1][2] + 1:
                merged[-1][2] = max(merged[-1][2], last)  # overlapping or adjacent ranges
            else:
                merged.append([run, first, last])
        table = np.asarray(merged, dtype=np.int64).reshape(-1, 3)
        self._starts = pack_run_ls(table[:, 0], table[:, 1])
        self._ends = pack_run_ls(table[:, 0], table[:, 2])

    def __len__(self) -> int:
        """The number of (merged) certified ranges."""
        return len(self._starts)

    def __call__(
        self, run: np.ndarray | Sequence[int], ls: np.ndarray | Sequence[int]
    ) -> np.ndarray:
        """True where ``(run, ls)`` is certified (arrays of equal length)."""
        key = pack_run_ls(run, ls)
        i = np.searchsorted(self._starts, key, side="right") - 1
        inside = i >= 0
        inside[inside] = key[inside] <= self._ends[i[inside]]
        return inside
