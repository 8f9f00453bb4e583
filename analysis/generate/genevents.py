"""The particle-level event record of the generator (:class:`GenEvents`), the description of
one of its datasets (:class:`ProcessSpec`), and how a process fills its ``GenPart`` list
(:func:`gen_block`, with NanoAOD's ``statusFlags`` bits) and its muon slots (:func:`p4_stack`).
The processes (:mod:`analysis.generate.processes`) make it; the detector
(:mod:`analysis.generate.detector`) and the theory weights (:mod:`analysis.generate.weights`)
read it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from analysis.generate.physics import FourVector, pt_eta_phi

__all__ = [
    "DIRECT_PROMPT_TAU_DECAY",
    "LAST_COPY",
    "PROMPT",
    "GenEvents",
    "ProcessSpec",
    "gen_block",
    "p4_stack",
]

# GenPart statusFlags bits
PROMPT = 1 << 0
DIRECT_PROMPT_TAU_DECAY = 1 << 5
LAST_COPY = 1 << 13


@dataclass
class GenEvents:
    """Particle-level events of one process (``n`` events, ``k`` muon slots, ``g`` GenPart
    slots); masks say which slots are filled."""

    n: int
    mu_p4: FourVector  # each [n, k]
    mu_charge: np.ndarray  # [n, k] int
    mu_valid: np.ndarray  # [n, k] bool
    mu_prompt: np.ndarray  # [n, k] bool
    mu_gen: np.ndarray  # [n, k] slot of the muon in GenPart
    mu_jet_iso: np.ndarray  # [n, k] relative isolation from a surrounding jet (0: none)
    mu_dxy_scale: np.ndarray  # [n, k] cm, width of the impact-parameter distribution
    nu_px: np.ndarray  # [n] sum of neutrinos
    nu_py: np.ndarray
    system_pt: np.ndarray  # [n] the hard system for theory weights
    system_y: np.ndarray
    system_mass: np.ndarray
    system_charge: np.ndarray  # [n] +-1 for W, 0 otherwise
    gen: dict[str, np.ndarray]  # GenPart_* -> [n, g]
    gen_valid: np.ndarray  # [n, g]
    recoil_sigma: float = 2.5  # GeV, hadronic-recoil resolution before pileup
    mass_weights: np.ndarray | None = None  # [n, 21] or None (all ones)


@dataclass(frozen=True)
class ProcessSpec:
    """A dataset of the generator: its process name, cross section (pb), share of the MC
    events, ``|genWeight|``, fraction of negative weights and particle-level generator."""

    name: str
    process: str
    xsec_pb: float
    share: float
    weight: float
    negative_fraction: float
    generate: Callable[..., GenEvents]
    w_mass: bool = False  # the data sample uses --mw for this process


def p4_stack(vectors: list[FourVector]) -> FourVector:
    """The four-vectors of ``k`` slots as one four-vector of ``[n, k]`` arrays."""
    return tuple(np.stack([v[i] for v in vectors], axis=1) for i in range(4))


def gen_block(particles: list[tuple[FourVector, np.ndarray, int, int, int, np.ndarray]]):
    """GenPart arrays from ``(p4, pdgId, status, flags, mother, valid)`` per slot."""
    pt, eta, phi, mass = [], [], [], []
    for p4, *_ in particles:
        a, b, c = pt_eta_phi(p4)
        pt.append(a)
        eta.append(b)
        phi.append(c)
        mass.append(np.sqrt(np.maximum(p4[0] ** 2 - p4[1] ** 2 - p4[2] ** 2 - p4[3] ** 2, 0.0)))
    n = len(particles[0][0][0])

    def col(values, dtype):
        return np.stack([np.broadcast_to(np.asarray(v), (n,)) for v in values], axis=1).astype(
            dtype
        )

    gen = {
        "pt": col(pt, np.float32),
        "eta": col(eta, np.float32),
        "phi": col(phi, np.float32),
        "mass": col(mass, np.float32),
        "pdgId": col([p[1] for p in particles], np.int32),
        "status": col([p[2] for p in particles], np.int32),
        "statusFlags": col([p[3] for p in particles], np.int32),
        "genPartIdxMother": col([p[4] for p in particles], np.int32),
    }
    valid = col([p[5] for p in particles], bool)
    return gen, valid
