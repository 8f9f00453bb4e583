"""Theory weights of the generated MC: ``LHEPdfWeight`` (103) and ``LHEScaleWeight`` (9).

Both are smooth functions of the hard system (boson rapidity, pT, mass and charge) whose
coefficients are fixed by the seed and the process, the same for every event and file of a
process, like the weights of a real matrix-element generator:

- PDF member ``k`` (1..100): ``1 + sum_j c_kj f_j`` over shape functions ``f_j`` (rapidity,
  rapidity squared and cubed, charge x rapidity, log pT, log mass), ``c_kj ~ N(0, 0.4%)``, so
  each member moves the boson rapidity (hence muon eta) and pT by a few per mille to ~1%;
  members 101/102 are alpha_S down/up, a pT-dependent normalisation of ~1-2%; member 0 is 1.
- Scale ``(muR, muF)`` in NanoAOD order ``3 i_R + i_F`` over {0.5, 1, 2}: ``1 + log2(muR) a_R(pT)
  + log2(muF) a_F(y)``, with a_R growing from ~2% at low boson pT to ~8% at high pT and a_F
  ~2-4% growing with |y|; index 4 is exactly 1.
"""

from __future__ import annotations

import numpy as np

from analysis.generate.genevents import GenEvents

__all__ = ["N_PDF", "N_SCALE", "TheoryCoefficients", "theory_weights"]

N_PDF = 103
N_SCALE = 9


class TheoryCoefficients:
    """The seed-fixed coefficients of one process (see the module docstring)."""

    def __init__(self, seed_sequence: np.random.SeedSequence) -> None:
        rng = np.random.default_rng(seed_sequence)
        self.pdf = rng.normal(0.0, 0.004, (6, 100))
        self.alpha_s = 0.01 * rng.uniform(0.7, 1.3, 2)
        self.scale_r = np.array([0.02, 0.06]) * rng.uniform(0.7, 1.3, 2)
        self.scale_f = np.array([0.02, 0.02]) * rng.uniform(0.7, 1.3, 2)

    def features(self, gen: GenEvents) -> np.ndarray:
        """``[n, 6]`` shape functions of the hard system."""
        y = np.clip(gen.system_y, -5.0, 5.0) / 3.0
        lpt = np.log1p(gen.system_pt / 10.0) - 0.7
        lm = 3.0 * np.log(np.maximum(gen.system_mass, 1.0) / 80.0)
        return np.stack([y, y**2 - 0.3, y**3, gen.system_charge * y, lpt, lm], axis=1)


def theory_weights(gen: GenEvents, coeff: TheoryCoefficients) -> tuple[np.ndarray, np.ndarray]:
    """``(LHEPdfWeight [n, 103], LHEScaleWeight [n, 9])`` as float32."""
    f = coeff.features(gen).astype(np.float32)
    pdf = np.empty((gen.n, N_PDF), dtype=np.float32)
    pdf[:, 0] = 1.0
    # float32, the precision of the branch (a float64 dgemm of this shape is ~10x slower)
    np.matmul(f, coeff.pdf.astype(np.float32), out=pdf[:, 1:101])
    pdf[:, 1:101] += np.float32(1.0)
    lpt = np.tanh((gen.system_pt - 10.0) / 15.0)
    a_s = coeff.alpha_s[0] + 0.5 * coeff.alpha_s[1] * lpt
    pdf[:, 101] = 1.0 - a_s
    pdf[:, 102] = 1.0 + a_s
    a_r = coeff.scale_r[0] + coeff.scale_r[1] * 0.5 * (1.0 + lpt)
    a_f = coeff.scale_f[0] + coeff.scale_f[1] * (np.clip(gen.system_y, -5, 5) / 3.0) ** 2
    scale = np.empty((gen.n, N_SCALE), dtype=np.float32)
    for i_r, l_r in enumerate((-1.0, 0.0, 1.0)):
        for i_f, l_f in enumerate((-1.0, 0.0, 1.0)):
            scale[:, 3 * i_r + i_f] = np.clip(1.0 + l_r * a_r + l_f * a_f, 0.5, 1.5)
    scale[:, 4] = 1.0
    return pdf, scale
