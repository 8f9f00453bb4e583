"""Raw NanoAOD branches of a NanoEvents chunk as numpy arrays, by their NanoAOD names.

The processors read branches through :class:`Columns` rather than through the NanoEvents
behaviours: a branch is addressed by its flat NanoAOD name (``Muon_pt``, ``HLT_IsoMu24``,
``LHEPdfWeight``), its presence is checked on the form without reading anything, and a missing
required branch raises :class:`~processors.errors.MissingBranch` naming it and the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import awkward as ak
import numpy as np

from processors.errors import MissingBranch

__all__ = ["Columns"]


class Columns:
    """Branch access on one chunk of events (a NanoEvents array from coffea)."""

    def __init__(self, events: Any) -> None:
        self.events = events
        self.layout = ak.to_layout(events)
        meta = getattr(events, "metadata", None) or {}
        self.metadata = dict(meta)
        self.filename: str | None = self.metadata.get("filename")
        self.n = len(events)
        self._top = set(self.layout.fields)
        self._cache: dict[str, Any] = {}

    def _locate(self, branch: str) -> tuple[str, str | None] | None:
        if branch in self._top:
            return branch, None
        prefix, _, field = branch.partition("_")
        if field and prefix in self._top:
            form = self.layout.form.content(prefix)
            while not isinstance(form, ak.forms.RecordForm) and hasattr(form, "content"):
                form = form.content
            if field in getattr(form, "fields", ()):
                return prefix, field
        return None

    def has(self, branch: str) -> bool:
        """Whether the chunk carries ``branch`` (no data read)."""
        return self._locate(branch) is not None

    def require(self, branches: Iterable[str]) -> None:
        """Raise :class:`MissingBranch` for the first of ``branches`` that is absent."""
        for branch in branches:
            if not self.has(branch):
                raise MissingBranch(branch, self.filename)

    def array(self, branch: str) -> ak.Array:
        """``branch`` as a behaviour-free awkward array (flat or jagged per event)."""
        if branch in self._cache:
            return self._cache[branch]
        where = self._locate(branch)
        if where is None:
            raise MissingBranch(branch, self.filename)
        prefix, field = where
        arr = ak.Array(self.layout.content(prefix))
        if field is not None:
            arr = arr[field]
        arr = ak.without_parameters(arr)
        self._cache[branch] = arr
        return arr

    def flat(self, branch: str, dtype: Any = None) -> np.ndarray:
        """An event-level branch as a numpy array."""
        return np.asarray(ak.to_numpy(self.array(branch)), dtype=dtype)

    def jagged(self, branch: str, dtype: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """A per-object branch as ``(offsets [n+1], content)`` numpy arrays."""
        arr = self.array(branch)
        counts = np.asarray(ak.to_numpy(ak.num(arr, axis=1)), dtype=np.int64)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        content = np.asarray(ak.to_numpy(ak.flatten(arr, axis=1)), dtype=dtype)
        return offsets, content

    def tensor(self, branch: str) -> np.ndarray | None:
        """A per-event vector branch with a fixed length as ``[n_events, n]`` (``None`` if the
        length varies between events); the raw buffer, not a copy, where possible."""
        offsets, content = self.jagged(branch)
        if self.n == 0:
            return content.reshape(0, 0)
        counts = np.diff(offsets)
        if not np.all(counts == counts[0]):
            return None
        return content.reshape(self.n, int(counts[0]))
