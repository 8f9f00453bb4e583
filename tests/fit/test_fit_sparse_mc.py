"""Fits of models made from sparse simulation: bins with a tiny prediction and data > 0.

The case of ``wmass setup-fit`` on a 50k-event sample: bins where no process predicts get a
floor on the signal (1e-4) while its variation templates stay 0 there, so every variation is
clipped to a factor 10 in those bins (log-kappa ``-log 10`` up and down: a V-shaped
``logk(x)``); low-statistics bins where the data are well above the prediction, with a minor
process carrying large variations, make the NLL non-convex at the start. The expected
information (the minimiser's preconditioner) sees neither the V's curvature nor the negative
one, so its step overshoots by orders of magnitude; the minimiser used to take that step again
and again (200 iterations, ``edm=inf``). It now switches to the exact, shifted Hessian.
"""

from __future__ import annotations

import hist
import numpy as np
import pytest

from fit import FitInputBuilder, fit
from fit.model import BinTerms, Model

NBINS = 60
FLOORED = slice(48, 60)  # no MC prediction: the signal floored at 1e-4, variations 0
UNDER = slice(40, 48)  # low statistics: data = 3x the prediction


def _hist(values: np.ndarray, variance: np.ndarray) -> hist.Hist:
    h = hist.Hist(hist.axis.Regular(NBINS, 0, 1, name="x"), storage=hist.storage.Weight())
    h.view().value = values
    h.view().variance = variance
    return h


def sparse_mc_model(n_floor_data: int = 4, n_eff: int = 5):
    rng = np.random.default_rng(1)
    x = np.linspace(0, 1, NBINS)
    floor = np.zeros(NBINS, dtype=bool)
    floor[FLOORED] = True
    sig = np.linspace(40, 2, NBINS)
    sig[floor] = 1e-4
    npr = np.where(floor, 0.0, 0.1 * sig)
    data = rng.poisson(sig + npr).astype(float)
    data[floor] = 0.0
    data[NBINS - n_floor_data :] = 1.0  # events where the simulation has none
    data[UNDER] = np.round(3 * (sig + npr)[UNDER])
    shapes = [np.exp(-0.5 * ((x - i / n_eff) / 0.2) ** 2) for i in range(n_eff)]
    for s in shapes:  # the data want pulls of the efficiency nuisances
        data[~floor] = np.round(data[~floor] * (1 + 0.05 * s[~floor]))

    def var(factor):
        v = np.where(floor, 0.0, sig * factor)
        return _hist(v, 0 * v)

    b = FitInputBuilder()
    b.add_channel("sr", _hist(data, data))
    b.add_process("sr", "sig", _hist(sig, np.where(floor, 0.0, 0.05 * sig)), signal=True)
    b.add_process("sr", "np", _hist(npr, 0.3 * npr))  # BB-lite: k = 1/0.3 per unit yield
    slope = np.linspace(-1, 1, NBINS)
    b.add_poi(
        "mW",
        variations={("sr", "sig"): (var(1 + 0.01 * slope), var(1 - 0.01 * slope))},
        offset=80379.0,
        scale=100.0,
        unit="MeV",
    )
    for i, s in enumerate(shapes):
        b.add_systematic(f"eff{i}", {("sr", "sig"): (var(1 + 0.03 * s), var(1 - 0.02 * s))})
    idx = np.arange(NBINS)
    for i in range(3):  # a minor process with large (clipped) variations in the low-stat bins
        f = np.where((idx >= 40 + 3 * i) & (idx < 43 + 3 * i), 30.0, 1.0)
        b.add_systematic(
            f"np{i}", {("sr", "np"): (_hist(npr * f, 0 * npr), _hist(npr / f, 0 * npr))}
        )
    b.add_norm("norm_W", ["sig"], 2.0, constraint="none")
    return b.build()


def test_the_model_is_the_pathological_one():
    fi = sparse_mc_model()
    m = Model(fi)
    x0 = np.zeros(fi.nparams)
    w = np.linalg.eigvalsh(m.hessian(x0))
    assert w[0] < 0  # non-convex at the start
    # in the floored bins with data the expected information misses the curvature of the
    # V-shaped interpolation by > 10x for every efficiency nuisance
    eff = [fi.index(f"eff{i}") for i in range(5)]
    ratio = np.diag(m.hessian(x0 + 0.1))[eff] / np.diag(m.fisher(x0 + 0.1))[eff]
    assert (ratio > 10).all()


@pytest.mark.parametrize("n_floor_data", [4, 12])
def test_a_model_from_sparse_simulation_fits(n_floor_data):
    fi = sparse_mc_model(n_floor_data)
    res = fit(fi)
    assert res.status == "converged"
    assert res.edm < 1e-10
    # a true minimum: zero gradient, positive-definite Hessian, every neighbour higher
    m = Model(fi)
    f0, g = m.value_and_grad(res.values)
    assert np.abs(g).max() < 1e-4
    assert np.linalg.eigvalsh(m.hessian(res.values))[0] > 0
    rng = np.random.default_rng(3)
    for _ in range(20):
        assert m.value(res.values + 1e-3 * rng.standard_normal(fi.nparams)) > f0
    assert np.isfinite(res.pois["mW"]["error"]) and res.pois["mW"]["error"] > 0


def test_bin_terms_stay_finite_when_the_prediction_is_far_below_the_data():
    # BB-lite with k = 1e-8 effective MC events and n = 1e-30: beta n / d ~ 1e-22, where
    # 1 + delta rounds to 0 and log1p(delta) was -inf; the closed form is finite
    d, k, n = 2.0, 1e-8, 1e-30
    bins = BinTerms(np.array([d]), np.array([True]), np.array([k]), np.array([1.0]))
    value, d1, d2 = bins.terms(np.array([n]))
    beta = (d + k) / (n + k)
    direct = beta * n - d * np.log(beta * n) + k * (beta - np.log(beta)) - (d - d * np.log(d) + k)
    assert np.isfinite(value[0]) and value[0] == pytest.approx(direct, rel=1e-12)
    assert d1[0] == pytest.approx(beta - d / n, rel=1e-12)
    # and without BB-lite
    plain = BinTerms(np.array([d]), np.array([True]), np.array([np.inf]), np.array([1.0]))
    value, _, _ = plain.terms(np.array([n]))
    assert value[0] == pytest.approx(n - d * np.log(n) - (d - d * np.log(d)), rel=1e-12)
