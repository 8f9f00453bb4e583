"""The detector truth of a generated sample: efficiencies, pileup profiles, momentum-scale bias
and prefiring, all fixed by the seed and written to ``truth.json`` (format in docs/samples.md).

The generator draws the muon flags, ``Pileup_nTrueInt``, the data pT bias and the data
prefiring losses from exactly these tables, so corrections derived from ``truth.json``
(``corrections.build_corrections``) close on the samples.

>>> t = DetectorTruth.from_seed(1)
>>> t.efficiency("trigger", "mc", np.array([0.1]), np.array([40.0])).round(2)
array([0.95])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DetectorTruth", "EFF_ETA_EDGES", "EFF_PT_EDGES"]

EFF_ETA_EDGES = np.linspace(-2.4, 2.4, 49)
EFF_PT_EDGES = np.array(
    [10, 15, 20, 22, 23, 24, 25, 26, 28, 30, 32, 35, 38, 41, 44, 47, 50, 55, 60, 70, 80, 100.0]
)
SCALE_ETA_EDGES = np.linspace(-2.4, 2.4, 25)
PREFIRING_ETA_EDGES = np.array([-2.4, -2.0, -1.6, -1.2, 1.2, 1.6, 2.0, 2.4])
PILEUP_EDGES = np.arange(101)


def _centres(edges: np.ndarray) -> np.ndarray:
    return 0.5 * (edges[1:] + edges[:-1])


def _bin(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bin index of ``x``, clamped to the first/last bin outside the edges."""
    return np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)


def _profile(x: np.ndarray, mean: float, sigma: float, skew: float) -> np.ndarray:
    """A normalised, slightly skewed pileup profile (a skew-normal shape)."""
    z = (x - mean) / sigma
    from scipy.special import ndtr

    p = np.exp(-0.5 * z**2) * ndtr(skew * z)
    return p / p.sum()


@dataclass(frozen=True)
class DetectorTruth:
    """Tables of the detector truth; see :meth:`from_seed` for the model."""

    seed: int
    idip: dict[str, np.ndarray]  # "data"/"mc" -> [eta, pt]
    trigger: dict[str, np.ndarray]
    pileup: dict[str, np.ndarray]  # "mc", "data", "data_up", "data_down" -> [100]
    scale_bias: np.ndarray  # [scale eta bins], relative
    scale_uncertainty: np.ndarray
    prefiring: np.ndarray  # [prefiring eta bins]
    prefiring_uncertainty: np.ndarray

    @classmethod
    def from_seed(cls, seed: int) -> DetectorTruth:
        """Smooth truth with seed-dependent wiggles of a realistic size.

        - ID+IP: ~97% central to ~93% forward, lower at low pT; data/MC 0.97-1.0.
        - Trigger: plateau 95% (lower in the barrel-endcap overlap), an error-function turn-on
          at 24 GeV, 0.8 GeV slower and ~1.5% lower in data.
        - Pileup: MC profile wider than data (mean 32 vs 34); data up/down = the data profile
          with nTrueInt scaled by 1 +- 4.6% (the minimum-bias cross-section uncertainty).
        - Momentum scale: data bias up to ~1e-3, varying with eta; uncertainty 1-3e-4.
        - Prefiring: 0 in the barrel, up to 1.5% per muon at |eta| > 2.
        """
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7,)))
        from scipy.special import erf

        eta = _centres(EFF_ETA_EDGES)[:, None]
        pt = _centres(EFF_PT_EDGES)[None, :]
        aeta = np.abs(eta)
        wiggle = rng.normal(0.0, 1.0, (4,))
        idip_mc = (0.975 - 0.02 * (aeta / 2.4) ** 2 - 0.03 * np.exp(-(pt - 10.0) / 8.0)) * np.ones(
            (1, pt.size)
        )
        ratio = (
            0.99
            - 0.01 * (aeta / 2.4) ** 2
            + 0.004 * wiggle[0] * np.sin(2.0 * eta + wiggle[1])
            + 0.0002 * (pt - 40.0) / 10.0
        )
        idip_data = np.clip(idip_mc * ratio, 0.0, 1.0)
        overlap = np.exp(-0.5 * ((aeta - 1.05) / 0.15) ** 2)
        plateau_mc = 0.955 - 0.04 * overlap - 0.01 * (aeta / 2.4)
        plateau_data = plateau_mc * (0.985 + 0.004 * wiggle[2] * np.cos(3.0 * eta + wiggle[3]))
        turn_mc = 0.5 * (1.0 + erf((pt - 24.0) / (np.sqrt(2.0) * 1.0)))
        turn_data = 0.5 * (1.0 + erf((pt - 24.3) / (np.sqrt(2.0) * 1.8)))
        x = PILEUP_EDGES[:-1] + 0.5
        s_eta = _centres(SCALE_ETA_EDGES)
        bias = 6e-4 * np.sin(1.3 * s_eta + rng.uniform(0, np.pi)) + 2e-4 * rng.normal(
            size=s_eta.size
        )
        p_eta = np.abs(_centres(PREFIRING_ETA_EDGES))
        prefire = np.select([p_eta > 2.0, p_eta > 1.6, p_eta > 1.2], [0.015, 0.008, 0.004], 0.0)
        return cls(
            seed=int(seed),
            idip={"data": idip_data, "mc": idip_mc},
            trigger={"data": plateau_data * turn_data, "mc": plateau_mc * turn_mc},
            pileup={
                "mc": _profile(x, 30.0, 15.0, 1.5),
                "data": _profile(x, 33.0, 12.0, 0.5),
                "data_up": _profile(x, 33.0 * 1.046, 12.0 * 1.046, 0.5),
                "data_down": _profile(x, 33.0 / 1.046, 12.0 / 1.046, 0.5),
            },
            scale_bias=bias,
            scale_uncertainty=1e-4 + 1e-4 * (np.abs(s_eta) / 1.2),
            prefiring=prefire,
            prefiring_uncertainty=0.2 * prefire,
        )

    # -- lookups used by the detector simulation ------------------------------------------------

    def efficiency(self, kind: str, source: str, eta: np.ndarray, pt: np.ndarray) -> np.ndarray:
        """Per-muon efficiency ``kind`` ("idip"/"trigger") of ``source`` ("data"/"mc"),
        binned exactly as in truth.json (clamped outside the grid)."""
        table = getattr(self, kind)[source]
        return table[_bin(EFF_ETA_EDGES, eta), _bin(EFF_PT_EDGES, pt)]

    def sample_pileup(self, rng: np.random.Generator, source: str, n: int) -> np.ndarray:
        """``Pileup_nTrueInt``: a bin from the profile, uniform inside it."""
        cdf = np.cumsum(self.pileup[source])
        k = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(cdf) - 1)
        return PILEUP_EDGES[k] + rng.random(n)

    def momentum_bias(self, eta: np.ndarray) -> np.ndarray:
        """Relative data pT bias of muons at ``eta``."""
        return self.scale_bias[_bin(SCALE_ETA_EDGES, eta)]

    def prefiring_probability(self, eta: np.ndarray) -> np.ndarray:
        """Probability that a muon at ``eta`` makes its data event prefire (0 outside the grid)."""
        p = self.prefiring[_bin(PREFIRING_ETA_EDGES, eta)]
        return np.where(np.abs(eta) < 2.4, p, 0.0)

    # -- truth.json ------------------------------------------------------------------------------

    def to_json(self, **facts: Any) -> dict[str, Any]:
        """The truth.json content (docs/samples.md) with the extra ``facts`` at the top."""
        return {
            "seed": self.seed,
            **facts,
            "efficiency": {
                "eta_edges": EFF_ETA_EDGES.tolist(),
                "pt_edges": EFF_PT_EDGES.tolist(),
                "idip": {k: v.tolist() for k, v in self.idip.items()},
                "trigger": {k: v.tolist() for k, v in self.trigger.items()},
            },
            "pileup": {"edges": PILEUP_EDGES.tolist()}
            | {k: v.tolist() for k, v in self.pileup.items()},
            "momentum_scale": {
                "eta_edges": SCALE_ETA_EDGES.tolist(),
                "data_bias": self.scale_bias.tolist(),
                "uncertainty": self.scale_uncertainty.tolist(),
            },
            "prefiring": {
                "eta_edges": PREFIRING_ETA_EDGES.tolist(),
                "probability": self.prefiring.tolist(),
                "stat_uncertainty": self.prefiring_uncertainty.tolist(),
            },
        }
