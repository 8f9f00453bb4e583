"""A small ``truth.json`` following docs/samples.md, for tests that run before the generator."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["tiny_truth", "write_tiny_truth"]


def tiny_truth(seed: int = 1) -> dict:
    """Truth with smooth, non-trivial efficiencies, profiles, scale bias and prefiring."""
    eta_edges = np.linspace(-2.4, 2.4, 49)
    pt_edges = np.array([10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 80, 100], dtype=float)
    eta_c = 0.5 * (eta_edges[1:] + eta_edges[:-1])
    pt_c = 0.5 * (pt_edges[1:] + pt_edges[:-1])
    turn_on = 1.0 / (1.0 + np.exp(-(pt_c[None, :] - 22.0) / 2.0))
    idip_mc = 0.97 - 0.02 * np.abs(eta_c)[:, None] + 0.0 * pt_c[None, :]
    idip_data = idip_mc * (0.99 - 0.01 * np.abs(eta_c)[:, None] + 0.0002 * (pt_c[None, :] - 40))
    trig_mc = (0.93 - 0.03 * np.abs(eta_c)[:, None]) * turn_on
    trig_data = trig_mc * (0.98 + 0.005 * np.sin(eta_c)[:, None])
    nint = np.arange(100) + 0.5
    mc = np.exp(-0.5 * ((nint - 30) / 12) ** 2)
    data = np.exp(-0.5 * ((nint - 32) / 11) ** 2)
    up = np.exp(-0.5 * ((nint - 34) / 11.5) ** 2)
    down = np.exp(-0.5 * ((nint - 30) / 10.5) ** 2)
    scale_edges = np.linspace(-2.4, 2.4, 7)
    scale_c = 0.5 * (scale_edges[1:] + scale_edges[:-1])
    pref_edges = np.array([-2.4, -2.0, -1.6, -1.2, 1.2, 1.6, 2.0, 2.4])
    return {
        "seed": seed,
        "mw_ref_gev": 80.379,
        "mw_data_gev": 80.379,
        "gamma_w_gev": 2.085,
        "mass_weights_mev": list(range(-100, 101, 10)),
        "lumi_pb": 123.4,
        "efficiency": {
            "eta_edges": eta_edges.tolist(),
            "pt_edges": pt_edges.tolist(),
            "idip": {"data": idip_data.tolist(), "mc": idip_mc.tolist()},
            "trigger": {"data": trig_data.tolist(), "mc": trig_mc.tolist()},
        },
        "pileup": {
            "edges": list(range(101)),
            "mc": (mc / mc.sum()).tolist(),
            "data": (data / data.sum()).tolist(),
            "data_up": (up / up.sum()).tolist(),
            "data_down": (down / down.sum()).tolist(),
        },
        "momentum_scale": {
            "eta_edges": scale_edges.tolist(),
            "data_bias": (0.001 * scale_c).tolist(),
            "uncertainty": (0.0002 + 0.0001 * np.abs(scale_c)).tolist(),
        },
        "prefiring": {
            "eta_edges": pref_edges.tolist(),
            "probability": [0.02, 0.01, 0.004, 0.0, 0.004, 0.01, 0.02],
            "stat_uncertainty": [0.004, 0.002, 0.001, 0.0, 0.001, 0.002, 0.004],
        },
    }


def write_tiny_truth(path: Path, seed: int = 1) -> Path:
    path.write_text(json.dumps(tiny_truth(seed)))
    return path
