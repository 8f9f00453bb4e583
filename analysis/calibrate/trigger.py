"""Trigger matching of the tag (and of the trigger probe) for tag and probe.

On real NanoAOD the trigger decision is per event (``HLT_IsoMu24``); which muon fired it comes
from the HLT objects, ``TrigObj_*``: a muon is *trigger-matched* if an object with
``TrigObj_id == 13`` carrying the filter bits of the single-muon trigger's isolated leg
(:data:`ISO_MU_BITS`: bit 2 "Iso" and bit 8 "1mu" of the NanoAOD muon ``filterBits``, the
last filters of ``HLT_IsoMu24``) lies within ``deltaR < 0.1`` of it, in an event that fired
the trigger.

The generated NanoAOD has no ``TrigObj``: its ``HLT_IsoMu24`` fires, with the trigger
efficiency of that muon, on the first tight-ID muon of the event (``analysis/generate/
detector.py``), so there the trigger-matched muon *is* that muon when the event fired
(:func:`emulated_match`). :func:`analysis.calibrate.events.read_dimuons` uses the objects when
the file has the ``TrigObj_*`` branches (:data:`TRIGOBJ_BRANCHES`), the emulation otherwise.

>>> import awkward as ak
>>> m, dr = match_trigger_objects(
...     ak.Array([[0.5, -1.0]]), ak.Array([[0.1, 2.0]]),
...     ak.Array([[13]]), ak.Array([[10]]), ak.Array([[0.52]]), ak.Array([[0.12]]))
>>> ak.to_list(m)
[[True, False]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "ISO_MU_BITS",
    "MAX_DR",
    "MUON_ID",
    "TRIGOBJ_BRANCHES",
    "emulated_match",
    "match_trigger_objects",
]

#: ``TrigObj_id`` of muons (PDG id)
MUON_ID = 13
#: muon ``TrigObj_filterBits`` that the isolated single-muon leg sets: 2 = Iso, 8 = 1mu
ISO_MU_BITS = 2 | 8
#: the matching cone
MAX_DR = 0.1
TRIGOBJ_BRANCHES = ("TrigObj_id", "TrigObj_filterBits", "TrigObj_eta", "TrigObj_phi")


def match_trigger_objects(
    mu_eta: Any,
    mu_phi: Any,
    obj_id: Any,
    obj_bits: Any,
    obj_eta: Any,
    obj_phi: Any,
    *,
    bits: int = ISO_MU_BITS,
    max_dr: float = MAX_DR,
) -> tuple[Any, Any]:
    """Per muon (jagged ``[event, muon]`` awkward arrays): matched to a trigger object of
    ``obj_id == 13`` with all of ``bits`` set within ``max_dr``, and the deltaR to the nearest
    such object (``inf`` when the event has none)."""
    import awkward as ak

    good = (obj_id == MUON_ID) & ((obj_bits & bits) == bits)
    o_eta, o_phi = obj_eta[good], obj_phi[good]
    pairs_eta = ak.cartesian([mu_eta, o_eta], nested=True)
    pairs_phi = ak.cartesian([mu_phi, o_phi], nested=True)
    d_eta = pairs_eta["0"] - pairs_eta["1"]
    d_phi = (pairs_phi["0"] - pairs_phi["1"] + np.pi) % (2.0 * np.pi) - np.pi
    dr = ak.fill_none(ak.min(np.sqrt(d_eta**2 + d_phi**2), axis=2), np.inf)
    return dr < max_dr, dr


def emulated_match(tight_id: np.ndarray, hlt: np.ndarray) -> np.ndarray:
    """The generator's trigger muon among the first two (``[n, 2]``): the first tight-ID muon
    of an event that fired (the two leading muons are the first two of the file's order)."""
    first = tight_id[:, 0]
    return np.column_stack([first & hlt, ~first & tight_id[:, 1] & hlt])
