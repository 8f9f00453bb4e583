"""The tag-and-probe systematic shifts on hand-made fits with a known answer: |alt - nominal|
per alternative, bins without a valid alternative take the largest shift of their eta row,
and the total is the quadrature sum."""

from __future__ import annotations

import numpy as np

from analysis.calibrate.peakfit import N_PARAMS, EfficiencyFit
from analysis.calibrate.systematics import systematic_shifts


def _fit(eff_data, valid=None):
    eff_data = np.asarray(eff_data, float)
    shape = eff_data.shape
    valid = np.ones(shape, bool) if valid is None else np.asarray(valid, bool)
    return EfficiencyFit(
        kind="idip",
        eta_edges=np.linspace(-1, 1, shape[0] + 1),
        pt_edges=np.linspace(20, 60, shape[1] + 1),
        eff_data=eff_data,
        err_data=np.full(shape, 0.01),
        valid_data=valid,
        eff_mc=np.full(shape, 0.95),
        err_mc=np.full(shape, 0.001),
        valid_mc=np.ones(shape, bool),
        probes_data=np.full(shape, 1000.0),
        theta_data=np.zeros((*shape, N_PARAMS)),
        theta_mc=np.zeros((*shape, N_PARAMS)),
    )


def test_known_shifts_fill_and_quadrature():
    nominal = _fit([[0.95, 0.95 * 0.99], [0.95, 0.95]])
    alt_a = _fit([[0.95 * 1.03, 0.95 * 0.99], [0.95 * 0.98, 0.95]], valid=[[1, 1], [1, 0]])
    alt_b = _fit([[0.95, 0.95 * 0.95], [0.95 * 1.04, 0.95 * 1.01]])
    out = systematic_shifts({"idip": nominal}, {"a": {"idip": alt_a}, "b": {"idip": alt_b}})
    s = out["idip"]
    np.testing.assert_allclose(s.per_source["a"], [[0.03, 0.0], [0.02, 0.02]], atol=1e-12)
    np.testing.assert_allclose(s.per_source["b"], [[0.0, 0.04], [0.04, 0.01]], atol=1e-12)
    np.testing.assert_allclose(s.total, np.hypot(s.per_source["a"], s.per_source["b"]))
