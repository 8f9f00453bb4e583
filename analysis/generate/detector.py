"""The detector of the generator: particle-level :class:`~analysis.generate.genevents.GenEvents`
to NanoAOD reco branches, for MC or data.

Per muon: acceptance |eta| < 2.4; curvature resolution from ~0.9% (central) to ~2.3%
(|eta| = 2.4); in data a momentum-scale bias ``1 + bias(eta)`` (truth ``momentum_scale``);
isolation from pileup (worse with more interactions) plus, for non-prompt muons, the
surrounding jet; impact parameters; ``Muon_tightId`` drawn with the truth ID+IP efficiency of
data or MC. Per event: ``Pileup_nTrueInt`` from the truth profile, ``Pileup_nPU`` and
``PV_npvs``; ``HLT_IsoMu24`` drawn with the truth trigger efficiency of the leading tight muon;
the hadronic recoil is minus the transverse momentum of all muons and neutrinos, smeared by a
resolution that grows with pileup, and ``MET = -(reco muons + reco recoil)``; in data, an event
prefires (and is lost) with ``1 - prod(1 - p(eta))`` over its muons.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.generate.genevents import GenEvents
from analysis.generate.physics import MUON_MASS, pt_eta_phi
from analysis.generate.truth import DetectorTruth

__all__ = ["Jagged", "RecoEvents", "pt_resolution", "simulate"]


def pt_resolution(eta: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """Relative pT resolution of a muon."""
    return 0.009 + 0.014 * (np.abs(eta) / 2.4) ** 2 + 5e-5 * pt


@dataclass
class Jagged:
    """A NanoAOD collection: ``counts [n]`` and flat ``fields`` (name -> content)."""

    counts: np.ndarray
    fields: dict[str, np.ndarray]


@dataclass
class RecoEvents:
    """The branches of one batch: flat event-level arrays, collections and ``keep`` (events
    that survive prefiring; all True in MC)."""

    flat: dict[str, np.ndarray]
    collections: dict[str, Jagged]
    keep: np.ndarray


def _compact(valid: np.ndarray, arrays: dict[str, np.ndarray]) -> Jagged:
    return Jagged(valid.sum(axis=1).astype(np.int32), {k: v[valid] for k, v in arrays.items()})


def simulate(
    gen: GenEvents, truth: DetectorTruth, rng: np.random.Generator, *, is_data: bool
) -> RecoEvents:
    """Reconstruct ``gen`` with the data or the MC detector of ``truth``."""
    n = gen.n
    source = "data" if is_data else "mc"
    # independent streams per stage: data and MC simulated from the same seed share the muon
    # smearing and the uniforms of the flags, whatever the pileup profiles consume
    rng_pu, rng_mu, rng_flag, rng_met, rng = rng.spawn(5)
    n_true = truth.sample_pileup(rng_pu, source, n)
    n_pu = rng_pu.poisson(n_true)
    npvs = 1 + rng_pu.binomial(n_pu, 0.75)

    pt, eta, phi = pt_eta_phi(gen.mu_p4)
    k = pt.shape[1]
    accepted = gen.mu_valid & (np.abs(eta) < 2.4) & (pt > 3.0)
    sigma = pt_resolution(eta, pt)
    pt_reco = pt / np.abs(1.0 + sigma * rng_mu.standard_normal((n, k)))
    eta_reco = eta + rng_mu.normal(0.0, 5e-4, (n, k))
    phi_reco = np.mod(phi + rng_mu.normal(0.0, 5e-4, (n, k)) + np.pi, 2 * np.pi) - np.pi
    pt_meas = pt_reco * (1.0 + truth.momentum_bias(eta_reco)) if is_data else pt_reco

    pileup_iso = rng.gamma(2.0, (0.3 + 0.03 * n_pu)[:, None] / 2.0, (n, k))
    iso = (pileup_iso + gen.mu_jet_iso * pt) / pt_meas
    prompt = gen.mu_prompt
    dxy = np.where(
        prompt,
        rng.normal(0.0, 1.0, (n, k)) * gen.mu_dxy_scale,
        rng.laplace(0.0, gen.mu_dxy_scale, (n, k)),
    )
    dz = rng.normal(0.0, 0.01, (n, k)) + np.where(prompt, 0.0, rng.laplace(0.0, 0.03, (n, k)))
    tight = rng_flag.random((n, k)) < truth.efficiency("idip", source, eta_reco, pt_reco)
    loose = tight | (rng_flag.random((n, k)) < 0.7)
    medium = tight | (loose & (rng_flag.random((n, k)) < 0.5))

    # pT order inside each event, accepted muons first
    order = np.argsort(np.where(accepted, -pt_meas, np.inf), axis=1, kind="stable")

    def take(a):
        return np.take_along_axis(a, order, axis=1)

    accepted = take(accepted)
    pt_meas, pt_reco, eta_reco, phi_reco = map(take, (pt_meas, pt_reco, eta_reco, phi_reco))
    tight, loose, medium, iso, dxy, dz = map(take, (tight, loose, medium, iso, dxy, dz))
    charge = take(np.broadcast_to(gen.mu_charge, (n, k)))

    # trigger on the leading tight muon
    lead = np.argmax(accepted & tight, axis=1)
    has_tight = np.any(accepted & tight, axis=1)
    rows = np.arange(n)
    p_trig = truth.efficiency("trigger", source, eta_reco[rows, lead], pt_reco[rows, lead])
    hlt = has_tight & (rng_flag.random(n) < p_trig)

    # MET from the recoil
    mu_px = np.where(gen.mu_valid, gen.mu_p4[1], 0.0).sum(axis=1)
    mu_py = np.where(gen.mu_valid, gen.mu_p4[2], 0.0).sum(axis=1)
    ux, uy = -(mu_px + gen.nu_px), -(mu_py + gen.nu_py)
    u_sigma = np.sqrt(gen.recoil_sigma**2 + (0.12 * n_pu) ** 2 + 0.01 * (ux**2 + uy**2))
    ux = ux + u_sigma * rng_met.standard_normal(n)
    uy = uy + u_sigma * rng_met.standard_normal(n)
    reco_px = np.where(accepted, pt_meas * np.cos(phi_reco), 0.0).sum(axis=1)
    reco_py = np.where(accepted, pt_meas * np.sin(phi_reco), 0.0).sum(axis=1)
    met_x, met_y = -(reco_px + ux), -(reco_py + uy)

    if is_data:
        p_keep = np.prod(np.where(accepted, 1.0 - truth.prefiring_probability(eta_reco), 1.0), 1)
        keep = rng.random(n) < p_keep
    else:
        keep = np.ones(n, dtype=bool)

    muon_fields = {
        "pt": pt_meas.astype(np.float32),
        "eta": eta_reco.astype(np.float32),
        "phi": phi_reco.astype(np.float32),
        "mass": np.full((n, k), MUON_MASS, np.float32),
        "pfRelIso04_all": iso.astype(np.float32),
        "dxy": dxy.astype(np.float32),
        "dz": dz.astype(np.float32),
        "charge": charge.astype(np.int32),
        "tightId": tight,
        "mediumId": medium,
        "looseId": loose,
        "isGlobal": np.ones((n, k), bool),
    }
    flat = {
        "MET_pt": np.hypot(met_x, met_y).astype(np.float32),
        "MET_phi": np.arctan2(met_y, met_x).astype(np.float32),
        "PV_npvs": npvs.astype(np.int32),
        "HLT_IsoMu24": hlt,
    }
    collections = {}
    if not is_data:
        # GenPart with the invalid slots removed, mother and muon indices remapped
        new_index = np.cumsum(gen.gen_valid, axis=1) - 1
        mother = gen.gen["genPartIdxMother"]
        safe = np.clip(mother, 0, None)
        remapped = np.where(mother >= 0, np.take_along_axis(new_index, safe, axis=1), -1)
        gen_fields = dict(gen.gen, genPartIdxMother=remapped.astype(np.int32))
        collections["GenPart"] = _compact(gen.gen_valid, gen_fields)
        muon_gen = take(np.take_along_axis(new_index, np.broadcast_to(gen.mu_gen, (n, k)), 1))
        muon_fields["genPartIdx"] = muon_gen.astype(np.int32)
        flat["Pileup_nTrueInt"] = n_true.astype(np.float32)
        flat["Pileup_nPU"] = n_pu.astype(np.int32)
    collections = {"Muon": _compact(accepted, muon_fields), **collections}
    return RecoEvents(flat, collections, keep)
