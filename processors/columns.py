"""Raw NanoAOD branches of a NanoEvents chunk as numpy arrays, by their NanoAOD names.

The processors read branches through :class:`Columns` rather than through the NanoEvents
behaviours: a branch is addressed by its flat NanoAOD name (``Muon_pt``, ``HLT_IsoMu24``,
``LHEPdfWeight``), its presence is checked on the form without reading anything, and a missing
required branch raises :class:`~processors.errors.MissingBranch` naming it and the file.

NanoAOD v9 to v15 are read. A branch is asked for by its v9 name; where a later (or earlier)
NanoAOD version renamed it, :data:`ALIASES` lists the other names, tried in order, so the
processors never see the version. Between v9 and v15 the branches the processors read are
stable except the PF MET (``MET_*`` became ``PFMET_*`` in v15); the types of some changed
(``GenPart_statusFlags`` int32 -> uint16 in v12), which the processors do not depend on. The
``Runs`` tree's ``genEventSumw`` is ``genEventSumw_`` in older NanoAOD
(:data:`RUNS_ALIASES`, read by :func:`analysis.datasets.read_gen_event_sumw`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import awkward as ak
import numpy as np

from processors.errors import MissingBranch, MistypedBranch

__all__ = [
    "ALIASES",
    "EXPECTED_KINDS",
    "NANOAOD_VERSIONS",
    "RUNS_ALIASES",
    "Columns",
    "alternatives",
    "missing_branch",
]

#: the NanoAOD versions the processors read
NANOAOD_VERSIONS = "v9-v15"

#: branch (its NanoAOD v9 name) -> ((other name, the versions that use it), ...), tried in order
#: after the v9 name. Only renames of branches some code reads are listed.
ALIASES: dict[str, tuple[tuple[str, str], ...]] = {
    "MET_pt": (("PFMET_pt", "v15"),),
    "MET_phi": (("PFMET_phi", "v15"),),
}

#: ``Runs`` tree branches: name -> ((other name, the versions that use it), ...)
RUNS_ALIASES: dict[str, tuple[tuple[str, str], ...]] = {
    "genEventSumw": (("genEventSumw_", "older NanoAOD"),),
    "genEventSumw2": (("genEventSumw2_", "older NanoAOD"),),
    "genEventCount": (("genEventCount_", "older NanoAOD"),),
}


#: numpy dtype kinds of the branches the processors read, by NanoAOD (v9-v15): "f" floating
#: point, "iu" integers (signed or not: some changed between versions), "b" a flag. A branch
#: stored with another kind is refused (:class:`MistypedBranch`) instead of being converted:
#: a pT stored as an integer, or an event number as a float, would change the result.
EXPECTED_KINDS: dict[str, str] = {
    **dict.fromkeys(
        (
            "genWeight",
            "MET_pt",
            "MET_phi",
            "PFMET_pt",
            "PFMET_phi",
            "Pileup_nTrueInt",
            "Muon_pt",
            "Muon_eta",
            "Muon_phi",
            "Muon_mass",
            "Muon_pfRelIso04_all",
            "Muon_dxy",
            "Muon_dz",
            "GenPart_pt",
            "GenPart_eta",
            "GenPart_phi",
            "GenPart_mass",
            "LHEPdfWeight",
            "LHEScaleWeight",
            "MEParamWeight",
        ),
        "f",
    ),
    **dict.fromkeys(
        (
            "run",
            "luminosityBlock",
            "event",
            "nMuon",
            "Muon_charge",
            "Muon_genPartIdx",
            "GenPart_pdgId",
            "GenPart_status",
            "GenPart_statusFlags",
            "GenPart_genPartIdxMother",
            "PV_npvs",
            "Pileup_nPU",
        ),
        "iu",
    ),
    **dict.fromkeys(("Muon_tightId", "Muon_mediumId", "Muon_looseId", "Muon_isGlobal"), "b"),
}
_KIND_NAMES = {"f": "a floating-point type", "iu": "an integer type", "b": "bool"}


def expected_kind(branch: str) -> str | None:
    """The dtype kinds ``branch`` may have (``EXPECTED_KINDS``; trigger bits ``HLT_*`` are
    flags), ``None`` for a branch whose type is not checked."""
    if branch.startswith("HLT_"):
        return "b"
    return EXPECTED_KINDS.get(branch)


def _primitive(arr: ak.Array) -> str | None:
    """The primitive type of a flat or jagged array's values (``"float32"``...), from its form
    (nothing is read)."""
    form = arr.layout.form
    while not hasattr(form, "primitive") and hasattr(form, "content"):
        form = form.content
    return getattr(form, "primitive", None)


def alternatives(branch: str, table: dict | None = None) -> tuple[str, ...]:
    """``branch`` and the names it has in other NanoAOD versions, in the order tried."""
    table = ALIASES if table is None else table
    return (branch, *(name for name, _ in table.get(branch, ())))


def missing_branch(branch: str, path: str | None, table: dict | None = None) -> MissingBranch:
    """The :class:`MissingBranch` for ``branch``: it names the file, the branch, its other
    names and the NanoAOD versions they belong to."""
    table = ALIASES if table is None else table
    others = table.get(branch, ())
    names = ", ".join([repr(branch), *(f"{name!r} ({versions})" for name, versions in others)])
    hint = f"expected NanoAOD {NANOAOD_VERSIONS}, looked for {names}"
    err = MissingBranch(branch, path, hint)
    err.alternatives = alternatives(branch, table)
    return err


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
        """Where ``branch`` or, failing it, one of its :data:`ALIASES` is in the layout."""
        for name in alternatives(branch):
            where = self._locate_exact(name)
            if where is not None:
                return where
        return None

    def resolve(self, branch: str) -> str | None:
        """The name ``branch`` has in this chunk (itself or an alias), ``None`` if absent."""
        for name in alternatives(branch):
            if self._locate_exact(name) is not None:
                return name
        return None

    def _locate_exact(self, branch: str) -> tuple[str, str | None] | None:
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
        """Whether the chunk carries ``branch`` under its name or an alias (no data read)."""
        return self._locate(branch) is not None

    def require(self, branches: Iterable[str]) -> None:
        """Raise :class:`MissingBranch` for the first of ``branches`` that is absent."""
        for branch in branches:
            if not self.has(branch):
                raise missing_branch(branch, self.filename)

    def array(self, branch: str) -> ak.Array:
        """``branch`` as a behaviour-free awkward array (flat or jagged per event)."""
        if branch in self._cache:
            return self._cache[branch]
        where = self._locate(branch)
        if where is None:
            raise missing_branch(branch, self.filename)
        prefix, field = where
        arr = ak.Array(self.layout.content(prefix))
        if field is not None:
            arr = arr[field]
        arr = ak.without_parameters(arr)
        self._check_type(branch, arr)
        self._cache[branch] = arr
        return arr

    def _check_type(self, branch: str, arr: ak.Array) -> None:
        kinds = expected_kind(branch)
        primitive = _primitive(arr) if kinds is not None else None
        if primitive is None or kinds is None:
            return
        if np.dtype(primitive).kind not in kinds:
            raise MistypedBranch(branch, self.filename, primitive, _KIND_NAMES[kinds])

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
