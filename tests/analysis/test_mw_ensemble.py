"""The measured W mass is unbiased over independent pseudo-experiments, and the nonprompt
background closes in shape on the QCD simulation.

Ten full-chain pseudo-experiments (own seeds: data and MC independent of each other's), with
data 50 or 100 MeV above the reference mass of the simulation. Before the mass templates
were freed of their simulation noise, the fit followed the reference instead of the data
(mean pull -1.2 at +50 MeV over 24 pseudo-experiments, docs/validation.md); this test sits
where that failure shows. The benchmark of record is benchmarks/mw_bias.py.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pytest

from tests.analysis.ensemble import pseudo_experiment

SEEDS = range(5001, 5011)
MASSES_GEV = (80.429, 80.479)
EVENTS = 100_000


@pytest.fixture(scope="module")
def ensemble() -> list[dict]:
    jobs = [(seed, MASSES_GEV[i % 2], EVENTS) for i, seed in enumerate(SEEDS)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        return list(pool.map(pseudo_experiment, *zip(*jobs, strict=True)))


@pytest.mark.slow
def test_the_fitted_w_mass_follows_the_truth_over_pseudo_experiments(ensemble):
    assert all(pe["status"] == "converged" for pe in ensemble)
    pulls = np.array([(pe["value"] - pe["truth"]) / pe["error"] for pe in ensemble])
    assert len(pulls) >= 10
    # mean pull within +-0.6 (2 standard errors of 10 unit-width pulls), width not too narrow
    assert abs(pulls.mean()) <= 0.6, pulls.round(2)
    assert 0.5 <= pulls.std(ddof=1) <= 1.6, pulls.round(2)


@pytest.mark.slow
def test_the_nonprompt_estimate_closes_in_shape_on_the_qcd_simulation(ensemble):
    for axis in ("pt", "eta", "charge"):
        chi2 = sum(pe["closure"][axis][0] for pe in ensemble)
        ndf = sum(pe["closure"][axis][1] for pe in ensemble)
        # summed over the pseudo-experiments: chi2/ndf of an estimate that closes is ~1
        assert chi2 / ndf < 1.5, (axis, chi2, ndf)
