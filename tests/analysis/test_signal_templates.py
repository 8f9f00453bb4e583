"""The W signal template in pt x eta x charge from a simulation of finite size: the
factorised template loses the eta dependence of the Jacobian peak's width, the correlated one
puts it back without the per-bin noise of the simulation."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.postprocess.mass_templates import correlated, factorised

PT = np.arange(26.5, 56.0, 1.0)  # the W histogram's 30 pT bin centres
ETA = np.linspace(-2.35, 2.35, 48)


def jacobian_peak(resolution_at_eta: np.ndarray, charge_share: float) -> np.ndarray:
    """Expected W -> mu nu yields [pt, eta, charge]: a Jacobian edge at m_W / 2 smeared by
    a resolution that worsens with |eta|, a falling tail, more W+ than W-."""
    edge = 40.2
    width = np.hypot(1.0, resolution_at_eta * edge)[None, :]  # GeV: W width and pT_W + detector
    below = np.exp(0.04 * (PT[:, None] - edge))
    shape = below / (1.0 + np.exp((PT[:, None] - edge) / width))
    # forward muons come from boosted Ws: a softer spectrum (the acceptance's pT-eta tilt)
    shape = shape * (1.0 - 0.3 * (ETA[None, :] / 2.4) ** 2 * (PT[:, None] - edge) / 15.0)
    return np.stack([charge_share * shape, (1.0 - charge_share) * shape], axis=-1)


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    return 40.0 * jacobian_peak(0.009 + 0.05 * (np.abs(ETA) / 2.4) ** 2, 0.56)


def chi2(template: np.ndarray, truth: np.ndarray) -> float:
    return float(((template - truth) ** 2 / truth).sum())


def test_the_correlated_template_is_closer_to_the_truth_than_factorised_or_raw(truth):
    rng = np.random.default_rng(11)
    wins = []
    for _ in range(10):
        simulation = rng.poisson(truth).astype(float)
        wins.append(
            chi2(correlated(simulation, axis=1, along=0, per=2), truth)
            < min(chi2(factorised(simulation, axis=1, per=2), truth), chi2(simulation, truth))
        )
    assert all(wins)


def test_the_correlated_template_keeps_both_marginals_of_the_simulation(truth):
    simulation = np.random.default_rng(12).poisson(truth).astype(float)
    template = correlated(simulation, axis=1, along=0, per=2)
    np.testing.assert_allclose(template.sum(axis=1), simulation.sum(axis=1), rtol=1e-9)
    np.testing.assert_allclose(template.sum(axis=0), simulation.sum(axis=0), rtol=1e-6)


def test_a_thin_simulation_leaves_no_empty_bin_in_the_correlated_template(truth):
    simulation = np.random.default_rng(13).poisson(truth / 10.0).astype(float)
    assert (simulation == 0).mean() > 0.2  # many empty bins above the Jacobian peak
    filled = factorised(simulation, axis=1, per=2) > 0
    assert filled.mean() > 0.7
    template = correlated(simulation, axis=1, along=0, per=2)
    assert (template[filled] > 0).all()
    assert (template[~filled] == 0).all()


def test_without_a_correlation_in_the_truth_the_correlation_is_only_noise():
    flat_truth = 40.0 * jacobian_peak(np.full(ETA.size, 0.015), 0.56)
    rng = np.random.default_rng(14)
    simulation = rng.poisson(flat_truth).astype(float)
    # the fitted correlation has 5 coefficients per slice: its noise is a small part of a bin's
    excess = chi2(correlated(simulation, axis=1, along=0, per=2), flat_truth) - chi2(
        factorised(simulation, axis=1, per=2), flat_truth
    )
    assert 0.0 < excess < 0.3 * chi2(simulation, flat_truth)
