"""Small NanoAOD-like files with the branches of docs/samples.md, for the processor tests
(random content; the real generator's physics is not needed to test the bookkeeping)."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import uproot

__all__ = ["write_sample"]


def write_sample(
    path: Path,
    n: int = 2000,
    *,
    seed: int = 7,
    is_data: bool = False,
    drop: tuple[str, ...] = (),
    rename: dict[str, str] | None = None,
) -> Path:
    """Write ``n`` events to ``path`` (TTree ``Events``); ``drop`` removes branches by name and
    ``rename`` renames event-level ones (``{"MET_pt": "PFMET_pt"}``: a NanoAOD v15 layout)."""
    rng = np.random.default_rng(seed)
    n_mu = rng.choice([0, 1, 1, 1, 2, 2, 3], size=n)
    m = int(n_mu.sum())
    muon = {
        "pt": rng.uniform(8, 70, m).astype(np.float32),
        "eta": rng.uniform(-2.5, 2.5, m).astype(np.float32),
        "phi": rng.uniform(-np.pi, np.pi, m).astype(np.float32),
        "mass": np.full(m, 0.1057, np.float32),
        "pfRelIso04_all": rng.exponential(0.15, m).astype(np.float32),
        "dxy": rng.normal(0, 0.02, m).astype(np.float32),
        "dz": rng.normal(0, 0.08, m).astype(np.float32),
        "charge": rng.choice([-1, 1], m).astype(np.int32),
        "tightId": rng.random(m) < 0.9,
        "mediumId": rng.random(m) < 0.95,
        "looseId": rng.random(m) < 0.97,
        "isGlobal": np.ones(m, bool),
    }
    if not is_data:
        muon["genPartIdx"] = np.full(m, -1, np.int32)
    branches: dict[str, object] = {
        "run": np.full(n, 1, np.uint32),
        "luminosityBlock": (1 + np.arange(n) // 500).astype(np.uint32),
        "event": (1000 + np.arange(n)).astype(np.uint64),
        "Muon": ak.zip({k: ak.unflatten(v, n_mu) for k, v in muon.items()}),
        "MET_pt": rng.exponential(30, n).astype(np.float32),
        "MET_phi": rng.uniform(-np.pi, np.pi, n).astype(np.float32),
        "PV_npvs": rng.poisson(30, n).astype(np.int32),
        "HLT_IsoMu24": rng.random(n) < 0.9,
    }
    if not is_data:
        # a prompt gen muon near most reco muons, plus some far away ones
        near = rng.random(m) < 0.8
        g_eta = np.where(near, muon["eta"] + rng.normal(0, 0.01, m), rng.uniform(-2.5, 2.5, m))
        g_phi = np.where(near, muon["phi"] + rng.normal(0, 0.01, m), rng.uniform(-np.pi, np.pi, m))
        gen = {
            "pt": muon["pt"],
            "eta": g_eta.astype(np.float32),
            "phi": g_phi.astype(np.float32),
            "mass": muon["mass"],
            "pdgId": (-13 * muon["charge"]).astype(np.int32),
            "status": np.ones(m, np.int32),
            "statusFlags": np.where(rng.random(m) < 0.9, 1 | (1 << 13), 1 << 13).astype(np.int32),
            "genPartIdxMother": np.full(m, -1, np.int32),
        }
        branches.update(
            {
                "genWeight": rng.choice([1.0, 1.0, 1.0, -1.0], n).astype(np.float32)
                * np.float32(1.5),
                "Pileup_nTrueInt": rng.uniform(5, 60, n).astype(np.float32),
                "Pileup_nPU": rng.poisson(30, n).astype(np.int32),
                "LHEPdfWeight": ak.unflatten(
                    rng.normal(1, 0.03, n * 103).astype(np.float32), np.full(n, 103)
                ),
                "LHEScaleWeight": ak.unflatten(
                    rng.normal(1, 0.1, n * 9).astype(np.float32), np.full(n, 9)
                ),
                "MEParamWeight": ak.unflatten(
                    rng.normal(1, 0.02, n * 21).astype(np.float32), np.full(n, 21)
                ),
                "GenPart": ak.zip({k: ak.unflatten(v, n_mu) for k, v in gen.items()}),
            }
        )
    for name in drop:
        prefix, _, field = name.partition("_")
        if name in branches:
            del branches[name]
        elif prefix in branches and field:
            rec = branches[prefix]
            branches[prefix] = ak.zip({f: rec[f] for f in rec.fields if f != field})
    for old, new in (rename or {}).items():
        if old in branches:  # not dropped
            branches[new] = branches.pop(old)
    return write_events(path, branches)


def write_events(path, branches: dict):
    """Write ``branches`` (numpy arrays or awkward records) as the TTree ``Events`` of ``path``."""
    with uproot.recreate(path) as f:
        f.mktree(
            "Events",
            {k: (v.type if isinstance(v, ak.Array) else v.dtype) for k, v in branches.items()},
        )
        f["Events"].extend(branches)
    return path
