"""Read the dimuon events of a dataset: the two leading muons of every event with >= 2 muons.

Branches are the NanoAOD names the processors read (:data:`processors.selection.MUON_BRANCHES`,
``HLT_IsoMu24``, ``genWeight`` in MC, ``run``/``luminosityBlock`` for the golden JSON of the
data); the muon flags use the processors' own cuts (:func:`processors.selection.tight_muons`,
:func:`~processors.selection.veto_muons`, :class:`~processors.selection.MuonCuts`), so the
calibration selects muons exactly as the histmaker does. Files are read with uproot in chunks
(no NanoEvents: the calibration needs ten branches, and coffea's import alone costs seconds).

The muons keep the file order, which is the generator's (and NanoAOD's) order in raw pT: the
trigger emulation of the generator fires on the first tight-ID muon of that list. Trigger
matching (:mod:`analysis.calibrate.trigger`): with the ``TrigObj_*`` branches (real NanoAOD)
each muon is matched to the HLT muon objects of the isolated single-muon leg within deltaR
0.1; without them (generated files) the trigger muon is the generator's.

>>> pairs = read_dimuons(load_datasets("samples/datasets.yaml")["zmumu"])  # doctest: +SKIP
>>> pairs.pt.shape  # doctest: +SKIP
(26390, 2)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from analysis.errors import BadInputFile, MissingBranch, WMassError
from analysis.lumi import golden_mask

__all__ = ["Dimuons", "TooFewEvents", "read_dimuons"]


class TooFewEvents(WMassError):
    """A calibration input has too few Z -> mu mu pairs to fit; names the dataset and files."""

    exit_code = 12

    def __init__(self, what: str, pairs: int, needed: int, files: tuple[str, ...]) -> None:
        self.what, self.pairs, self.needed, self.files = what, pairs, needed, files
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        super().__init__(
            f"too few events to calibrate: {what} has {pairs} Z -> mu mu pair(s) passing the "
            f"selection, at least {needed} are needed (files: {shown})"
        )


TRIGGER = "HLT_IsoMu24"
_MUON = ("pt", "eta", "phi", "charge", "pfRelIso04_all", "dxy", "dz", "tightId", "looseId")


@dataclass
class Dimuons:
    """The first two muons (``[n, 2]`` arrays) of the events with at least two muons."""

    pt: np.ndarray  # raw Muon_pt (data: still with the scale bias)
    eta: np.ndarray
    phi: np.ndarray
    charge: np.ndarray
    iso: np.ndarray
    tight_id: np.ndarray  # Muon_tightId alone
    tight: np.ndarray  # processors' tight muon: tight ID, |dxy|, |dz|, pT, |eta|
    extra_veto: np.ndarray  # [n] another veto (loose) muon besides the two
    hlt: np.ndarray  # [n] the trigger bit
    weight: np.ndarray  # [n] genWeight (1 in data)
    trig_match: np.ndarray  # [n, 2] trigger-matched (TrigObj, or the generator's trigger muon)
    trig_dr: np.ndarray  # [n, 2] deltaR to the nearest trigger object (NaN: emulated)
    trigobj: np.ndarray  # [n] matched with TrigObj (False: the generator's emulation)

    def __len__(self) -> int:
        return len(self.hlt)

    def subset(self, keep: np.ndarray) -> Dimuons:
        return Dimuons(**{f.name: getattr(self, f.name)[keep] for f in fields(self)})

    @staticmethod
    def concatenate(parts: list[Dimuons]) -> Dimuons:
        return Dimuons(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Dimuons)}
        )


def _golden(path: str | None):
    """``mask(run, ls)`` of a golden JSON (None: all): the chain's one mask,
    :func:`analysis.lumi.golden_mask`, whose errors name the file."""
    return None if path is None else golden_mask(path)


def _chunk(arrays: Any, is_data: bool, golden, cuts: Any, trigobj: bool = False) -> Dimuons:
    import awkward as ak

    from analysis.calibrate.trigger import emulated_match, match_trigger_objects
    from processors.selection import tight_muons, veto_muons

    n_mu = ak.to_numpy(ak.num(arrays["Muon_pt"], axis=1))
    keep = n_mu >= 2
    if golden is not None:
        keep &= golden(ak.to_numpy(arrays["run"]), ak.to_numpy(arrays["luminosityBlock"]))
    arrays = arrays[keep]
    muons = ak.zip(
        {
            "pt": arrays["Muon_pt"],
            "eta": arrays["Muon_eta"],
            "phi": arrays["Muon_phi"],
            "charge": arrays["Muon_charge"],
            "iso": arrays["Muon_pfRelIso04_all"],
            "dxy": arrays["Muon_dxy"],
            "dz": arrays["Muon_dz"],
            "tightId": arrays["Muon_tightId"],
            "looseId": arrays["Muon_looseId"],
        }
    )
    tight = tight_muons(muons, cuts)
    veto = veto_muons(muons, cuts)
    first2 = muons[:, :2]

    def two(x: Any, dtype: Any) -> np.ndarray:
        return np.asarray(ak.to_numpy(x), dtype=dtype).reshape(-1, 2)

    n_veto = ak.to_numpy(ak.sum(veto, axis=1)) - ak.to_numpy(ak.sum(veto[:, :2], axis=1))
    n = int(keep.sum())
    hlt = np.asarray(ak.to_numpy(arrays[TRIGGER]), bool)
    tight_id = two(first2.tightId, bool)
    if trigobj:
        matched, dr = match_trigger_objects(
            first2.eta,
            first2.phi,
            arrays["TrigObj_id"],
            arrays["TrigObj_filterBits"],
            arrays["TrigObj_eta"],
            arrays["TrigObj_phi"],
        )
        trig_dr = two(dr, np.float64)
        trig_match = two(matched, bool) & hlt[:, None]
    else:
        trig_dr = np.full((n, 2), np.nan)
        trig_match = emulated_match(tight_id, hlt)
    return Dimuons(
        pt=two(first2.pt, np.float64),
        eta=two(first2.eta, np.float64),
        phi=two(first2.phi, np.float64),
        charge=two(first2.charge, np.int32),
        iso=two(first2.iso, np.float64),
        tight_id=tight_id,
        tight=two(tight[:, :2], bool),
        extra_veto=n_veto > 0,
        hlt=hlt,
        weight=(
            np.ones(n) if is_data else np.asarray(ak.to_numpy(arrays["genWeight"]), np.float64)
        ),
        trig_match=trig_match,
        trig_dr=trig_dr,
        trigobj=np.full(n, trigobj),
    )


def read_dimuons(dataset: Any, *, step_size: int = 1_000_000, cuts: Any = None) -> Dimuons:
    """The :class:`Dimuons` of all files of ``dataset`` (an ``analysis.datasets.Dataset``).

    Data events outside the dataset's golden JSON are dropped. Files with the ``TrigObj_*``
    branches are trigger-matched with them, the others with the generator's emulation
    (:mod:`analysis.calibrate.trigger`). A file that cannot be read
    raises :class:`~analysis.errors.BadInputFile`, a missing branch
    :class:`~analysis.errors.MissingBranch`, both naming the file.
    """
    import uproot

    from analysis.calibrate.trigger import TRIGOBJ_BRANCHES
    from processors.selection import MuonCuts

    cuts = cuts or MuonCuts()
    branches = [f"Muon_{b}" for b in _MUON] + [TRIGGER]
    if dataset.is_data:
        branches += ["run", "luminosityBlock"]
    else:
        branches += ["genWeight"]
    golden = _golden(dataset.golden_json) if dataset.is_data else None
    parts = []
    for path in dataset.files:
        try:
            tree = uproot.open(path)[dataset.treename]
        except FileNotFoundError as err:
            raise BadInputFile(path, "no such file") from err
        except Exception as err:  # uproot raises many types for a broken file
            raise BadInputFile(path, f"cannot read the {dataset.treename!r} tree ({err})") from err
        with tree.file:
            present = set(tree.keys())
            for branch in branches:
                if branch not in present:
                    raise MissingBranch(branch, path)
            trigobj = all(b in present for b in TRIGOBJ_BRANCHES)
            wanted = branches + list(TRIGOBJ_BRANCHES) if trigobj else branches
            for arrays in tree.iterate(wanted, step_size=step_size):
                parts.append(_chunk(arrays, dataset.is_data, golden, cuts, trigobj))
    if not parts:
        raise BadInputFile(dataset.name, "no files")
    return Dimuons.concatenate(parts)
