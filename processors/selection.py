"""Vectorised muon selection: ID, impact parameter, acceptance, isolation, trigger, vetoes,
gen-matching by delta-R, and the event kinematics (mT, m(ll), pT(ll), y(ll)).

Everything works column-wise on awkward/numpy arrays of a whole chunk; nothing loops over
events in Python. Selected muons are returned as indices into each event's muon list, so the
processors pick their kinematics with one flat gather.
"""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from processors.columns import Columns

__all__ = [
    "GEN_BRANCHES",
    "MUON_BRANCHES",
    "MUON_MASS",
    "MuonCuts",
    "dimuon",
    "dimuon_kinematics",
    "gen_match",
    "met_change",
    "pick",
    "prompt_gen_muons",
    "read_muons",
    "single_muon",
    "tight_muons",
    "transverse_mass",
    "transverse_mass_xy",
    "veto_muons",
]

MUON_MASS = 0.1056583755
MUON_BRANCHES = (
    "Muon_pt",
    "Muon_eta",
    "Muon_phi",
    "Muon_charge",
    "Muon_pfRelIso04_all",
    "Muon_dxy",
    "Muon_dz",
    "Muon_tightId",
    "Muon_looseId",
)
GEN_BRANCHES = (
    "GenPart_pt",
    "GenPart_eta",
    "GenPart_phi",
    "GenPart_pdgId",
    "GenPart_status",
    "GenPart_statusFlags",
)


@dataclass(frozen=True)
class MuonCuts:
    """Selection thresholds.

    ``pt_min`` is the candidate threshold, below the histogram pT window (26-56 GeV for W),
    so that momentum-scale variations can move muons into the window; the window itself is the
    histogram range (no flow bins).
    """

    pt_min: float = 15.0
    abs_eta_max: float = 2.4
    dxy_max: float = 0.05
    dz_max: float = 0.2
    iso_max: float = 0.15
    veto_pt_min: float = 10.0
    gen_dr_max: float = 0.1


def read_muons(cols: Columns, pt: ak.Array | None = None) -> ak.Array:
    """The muon columns the selection needs, as one jagged record array (no behaviours).

    ``pt`` replaces ``Muon_pt`` (e.g. the scale-corrected data pT).
    """
    cols.require(MUON_BRANCHES)
    fields = {
        "pt": cols.array("Muon_pt") if pt is None else pt,
        "eta": cols.array("Muon_eta"),
        "phi": cols.array("Muon_phi"),
        "charge": cols.array("Muon_charge"),
        "iso": cols.array("Muon_pfRelIso04_all"),
        "dxy": cols.array("Muon_dxy"),
        "dz": cols.array("Muon_dz"),
        "tightId": cols.array("Muon_tightId"),
        "looseId": cols.array("Muon_looseId"),
    }
    return ak.zip(fields, depth_limit=None, with_name=None)


def tight_muons(muons: ak.Array, cuts: MuonCuts) -> ak.Array:
    """Tight ID, |dxy|, |dz|, pT > ``pt_min`` and |eta| < ``abs_eta_max`` (no isolation)."""
    return (
        muons.tightId
        & (abs(muons.dxy) < cuts.dxy_max)
        & (abs(muons.dz) < cuts.dz_max)
        & (muons.pt > cuts.pt_min)
        & (abs(muons.eta) < cuts.abs_eta_max)
    )


def veto_muons(muons: ak.Array, cuts: MuonCuts) -> ak.Array:
    """Loose muons that count for the extra-lepton veto."""
    return muons.looseId & (muons.pt > cuts.veto_pt_min) & (abs(muons.eta) < cuts.abs_eta_max)


def _first(mask: ak.Array) -> np.ndarray:
    """Index of the first True per event (-1 if none)."""
    idx = ak.argmax(mask, axis=1, keepdims=False)
    idx = ak.to_numpy(ak.fill_none(idx, -1)).astype(np.int64)
    any_ = ak.to_numpy(ak.any(mask, axis=1))
    idx[~any_] = -1
    return idx


def single_muon(muons: ak.Array, cuts: MuonCuts) -> tuple[np.ndarray, np.ndarray]:
    """W selection: exactly one tight muon and no other veto muon.

    Returns ``(passes [n_events] bool, index of the muon in its event, -1 if none)``.
    """
    tight = tight_muons(muons, cuts)
    veto = veto_muons(muons, cuts) & ~tight
    n_tight = ak.to_numpy(ak.sum(tight, axis=1))
    n_veto = ak.to_numpy(ak.sum(veto, axis=1))
    passes = (n_tight == 1) & (n_veto == 0)
    idx = _first(tight)
    idx[~passes] = -1
    return passes, idx


def dimuon(muons: ak.Array, cuts: MuonCuts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z selection: exactly two tight muons of opposite charge and no other veto muon.

    Returns ``(passes, index of the leading muon, index of the trailing muon)``.
    """
    tight = tight_muons(muons, cuts)
    veto = veto_muons(muons, cuts) & ~tight
    n_tight = ak.to_numpy(ak.sum(tight, axis=1))
    n_veto = ak.to_numpy(ak.sum(veto, axis=1))
    local = ak.local_index(muons.pt, axis=1)
    tight_idx = local[tight]
    two = n_tight == 2
    padded = ak.fill_none(ak.pad_none(tight_idx, 2, axis=1, clip=True), -1)
    i0 = ak.to_numpy(padded[:, 0]).astype(np.int64)
    i1 = ak.to_numpy(padded[:, 1]).astype(np.int64)
    offsets = np.zeros(len(n_tight) + 1, dtype=np.int64)
    np.cumsum(ak.to_numpy(ak.num(muons.pt, axis=1)), out=offsets[1:])
    pt = ak.to_numpy(ak.flatten(muons.pt))
    charge = ak.to_numpy(ak.flatten(muons.charge))
    q0 = pick(charge, offsets, i0, fill=0)
    q1 = pick(charge, offsets, i1, fill=0)
    passes = two & (n_veto == 0) & (q0 * q1 < 0)
    pt0 = pick(pt, offsets, i0, fill=0.0)
    pt1 = pick(pt, offsets, i1, fill=0.0)
    swap = pt1 > pt0
    lead = np.where(swap, i1, i0)
    trail = np.where(swap, i0, i1)
    lead[~passes] = -1
    trail[~passes] = -1
    return passes, lead, trail


def pick(content: np.ndarray, offsets: np.ndarray, index: np.ndarray, fill=np.nan) -> np.ndarray:
    """``content[offsets[i] + index[i]]`` per event, ``fill`` where ``index < 0``."""
    index = np.asarray(index)
    valid = index >= 0
    flat = np.where(valid, offsets[:-1] + index, 0)
    out = content[flat] if len(content) else np.zeros(len(index), dtype=content.dtype)
    if not np.all(valid):
        out = np.where(valid, out, fill)
    return out


def transverse_mass(pt, phi, met_pt, met_phi) -> np.ndarray:
    """mT of a muon and the missing transverse momentum."""
    pt = np.asarray(pt, dtype=np.float64)
    met_pt = np.asarray(met_pt, dtype=np.float64)
    dphi = np.asarray(phi, dtype=np.float64) - np.asarray(met_phi, dtype=np.float64)
    return np.sqrt(np.maximum(2.0 * pt * met_pt * (1.0 - np.cos(dphi)), 0.0))


def transverse_mass_xy(
    pt: np.ndarray, phi: np.ndarray, met_x: np.ndarray, met_y: np.ndarray
) -> np.ndarray:
    """mT of a muon and the missing transverse momentum given by its components:
    ``sqrt(2 (pT |MET| - pT . MET))``, the same as :func:`transverse_mass`."""
    pt = np.asarray(pt, dtype=np.float64)
    phi = np.asarray(phi, dtype=np.float64)
    met_x = np.asarray(met_x, dtype=np.float64)
    met_y = np.asarray(met_y, dtype=np.float64)
    dot = np.cos(phi) * met_x + np.sin(phi) * met_y
    return np.sqrt(np.maximum(2.0 * pt * (np.hypot(met_x, met_y) - dot), 0.0))


def met_change(
    counts: np.ndarray, phi: np.ndarray, dpt: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Change ``(dx, dy)`` of each event's MET when its muons' pT change by ``dpt``.

    ``phi`` and ``dpt`` are flat over the muons of all events, ``counts`` the muons per event.
    A muon whose pT goes from pT_old to pT_new moves the MET by -(pT_new - pT_old) along its
    direction; the changes of the muons of an event add up.
    """
    counts = np.asarray(counts, dtype=np.int64)
    n = len(counts)
    owner = np.repeat(np.arange(n), counts)
    phi = np.asarray(phi, dtype=np.float64)
    dpt = np.asarray(dpt, dtype=np.float64)
    dx = np.bincount(owner, weights=dpt * np.cos(phi), minlength=n)
    dy = np.bincount(owner, weights=dpt * np.sin(phi), minlength=n)
    return -dx, -dy


def dimuon_kinematics(pt1, eta1, phi1, pt2, eta2, phi2) -> tuple[np.ndarray, ...]:
    """``(m(ll), pT(ll), y(ll))`` of two muons (muon mass assumed)."""
    p = []
    for pt, eta, phi in ((pt1, eta1, phi1), (pt2, eta2, phi2)):
        pt = np.asarray(pt, dtype=np.float64)
        eta = np.asarray(eta, dtype=np.float64)
        phi = np.asarray(phi, dtype=np.float64)
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        e = np.sqrt(px**2 + py**2 + pz**2 + MUON_MASS**2)
        p.append((e, px, py, pz))
    e, px, py, pz = (a + b for a, b in zip(*p, strict=True))
    mll = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))
    ptll = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        yll = 0.5 * np.log((e + pz) / (e - pz))
    return mll, ptll, yll


def prompt_gen_muons(cols: Columns) -> ak.Array:
    """Final-state gen muons that are prompt or direct prompt-tau decay products."""
    cols.require(GEN_BRANCHES)
    flags = cols.array("GenPart_statusFlags")
    prompt = ((flags & 1) != 0) | ((flags & (1 << 5)) != 0)
    return (abs(cols.array("GenPart_pdgId")) == 13) & (cols.array("GenPart_status") == 1) & prompt


def gen_match(
    reco_eta: ak.Array,
    reco_phi: ak.Array,
    gen_eta: ak.Array,
    gen_phi: ak.Array,
    dr_max: float = 0.1,
) -> tuple[ak.Array, ak.Array]:
    """Match each reco object to the nearest gen object in delta-R.

    Returns ``(matched, index)`` jagged like the reco objects: ``index`` into the gen list
    (-1 without a gen object within ``dr_max``).
    """
    pairs = ak.cartesian({"r_eta": reco_eta, "g_eta": gen_eta}, axis=1, nested=True)
    phis = ak.cartesian({"r": reco_phi, "g": gen_phi}, axis=1, nested=True)
    dphi = (phis.r - phis.g + np.pi) % (2 * np.pi) - np.pi
    dr = np.sqrt((pairs.r_eta - pairs.g_eta) ** 2 + dphi**2)
    best = ak.argmin(dr, axis=2, keepdims=True)
    best_dr = ak.fill_none(ak.firsts(dr[best], axis=2), np.inf)
    index = ak.fill_none(ak.firsts(best, axis=2), -1)
    matched = best_dr < dr_max
    return matched, ak.where(matched, index, -1)
