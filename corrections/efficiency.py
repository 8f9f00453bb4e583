"""Muon efficiency scale factors (data/MC) in (eta, pt) with statistical eigen-variations.

Model (documented so that it can be replaced by a real tag-and-probe payload):

- the nominal scale factor in each (eta, pt) bin is the true ``data / mc`` efficiency ratio of
  ``truth.json``, exactly;
- its statistical uncertainty assumes a tag-and-probe measurement with ``probes`` probes per
  (eta, pt) bin in data and in MC: ``var(eff) = eff (1 - eff) / probes``, propagated to the
  ratio;
- in each eta bin the pT dependence is described by a polynomial of degree ``degree`` in the
  scaled pT ``u = (pt - centre) / half_width``; a weighted least-squares fit gives the
  parameter covariance ``C = (A^T W A)^-1``, diagonalised as ``C = V diag(lambda) V^T``;
- eigen-variation ``k`` (``degree + 1`` per eta bin) shifts the nominal by
  ``+- A @ (sqrt(lambda_k) V[:, k])``: smooth in pT, uncorrelated between eigenvectors and
  between eta bins.

The payload holds, for every variation key (``"nominal"``, ``"eig{k}_up"``, ``"eig{k}_down"``),
the binned SF in the muon's own eta bin; the processors decorrelate the eta bins.
"""

from __future__ import annotations

from collections.abc import Mapping

import correctionlib.schemav2 as cs
import numpy as np

from corrections.nodes import by_variation, multibinning, real, string

__all__ = ["eigen_variations", "scale_factor_correction"]


def eigen_variations(
    data: np.ndarray,
    mc: np.ndarray,
    pt_edges: np.ndarray,
    *,
    degree: int = 2,
    probes: float = 20000.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Nominal SF ``[eta, pt]`` and eigen-shifts ``[eig, eta, pt]`` of the model above."""
    data = np.asarray(data, dtype=float)
    mc = np.asarray(mc, dtype=float)
    sf = np.divide(data, mc, out=np.ones_like(data), where=mc > 0)
    var_data = np.clip(data * (1 - data), 1e-8, None) / probes
    var_mc = np.clip(mc * (1 - mc), 1e-8, None) / probes
    var_sf = sf**2 * (
        var_data / np.clip(data, 1e-6, None) ** 2 + var_mc / np.clip(mc, 1e-6, None) ** 2
    )
    edges = np.asarray(pt_edges, dtype=float)
    centres = 0.5 * (edges[1:] + edges[:-1])
    lo, hi = centres.min(), centres.max()
    u = (centres - 0.5 * (lo + hi)) / max(0.5 * (hi - lo), 1e-12)
    design = np.vander(u, degree + 1, increasing=True)  # [pt, degree + 1]
    shifts = np.empty((degree + 1, *sf.shape))
    for ieta in range(sf.shape[0]):
        weights = 1.0 / var_sf[ieta]
        cov = np.linalg.inv(design.T @ (weights[:, None] * design))
        lam, vec = np.linalg.eigh(cov)
        for k in range(degree + 1):
            shifts[k, ieta] = design @ (np.sqrt(max(lam[k], 0.0)) * vec[:, k])
    return sf, shifts


def scale_factor_correction(
    name: str,
    table: Mapping[str, list],
    eta_edges: list[float],
    pt_edges: list[float],
    *,
    degree: int = 2,
    probes: float = 20000.0,
    description: str = "",
) -> cs.Correction:
    """A correction ``name(eta, pt, variation) -> SF`` from ``{"data": [[..]], "mc": [[..]]}``."""
    sf, shifts = eigen_variations(
        np.asarray(table["data"]),
        np.asarray(table["mc"]),
        np.asarray(pt_edges),
        degree=degree,
        probes=probes,
    )
    edges = [eta_edges, pt_edges]
    nodes = {"nominal": multibinning(["eta", "pt"], edges, sf)}
    for k, shift in enumerate(shifts):
        nodes[f"eig{k}_up"] = multibinning(["eta", "pt"], edges, sf + shift)
        nodes[f"eig{k}_down"] = multibinning(["eta", "pt"], edges, sf - shift)
    return cs.Correction(
        name=name,
        description=description
        or f"muon {name} data/MC scale factor; eig<k>_up/down: stat eigen-variations "
        f"(degree-{degree} polynomial in pT per eta bin, {probes:g} probes per bin)",
        version=1,
        inputs=[real("eta", "muon eta"), real("pt", "muon pT [GeV]"), string("variation")],
        output=real("sf", "data/MC efficiency ratio"),
        data=by_variation("variation", nodes),
    )
