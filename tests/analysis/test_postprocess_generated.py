"""The nonprompt estimate on a generated sample closes: the extended-ABCD prediction from the
sidebands equals the true QCD yield in the signal region (the QCD simulation) within the
statistical uncertainties, on MC-only pseudo-data and on the generated data."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from analysis.cli import main as wmass
from analysis.io import read_histograms
from analysis.postprocess.setup import channel_setup


@pytest.fixture(scope="module")
def generated_hists(tmp_path_factory):
    work = tmp_path_factory.mktemp("generated")
    samples, hists = work / "samples", work / "hists.h5"
    argv = ["generate", "--out", samples, "--events", 400_000, "--seed", 21]
    assert wmass([str(a) for a in argv]) == 0
    argv = ["histmaker", "--datasets", samples / "datasets.yaml", "--out", hists]
    argv += ["--executor", "iterative", "--quiet", "--variations"]  # nominal only
    assert wmass([str(a) for a in argv]) == 0
    return read_histograms(hists)


def nonprompt_sigma(setup) -> float:
    """Statistical uncertainty of the smoothed prediction: its eigen-variations in quadrature."""
    total = setup.nominal["Nonprompt"].sum()
    shifts = [
        per["Nonprompt"][0].sum() - total
        for name, per in setup.shapes.items()
        if name.startswith("nonprompt_")
    ]
    return float(np.sqrt(np.sum(np.square(shifts))))


@pytest.mark.slow
@pytest.mark.parametrize("pseudo_data", ["mc-only", "generated data"])
def test_nonprompt_closes_on_the_generated_qcd(generated_hists, pseudo_data):
    hf = generated_hists
    if pseudo_data == "mc-only":  # the sum of all simulation, QCD included, is the data
        hf = copy.copy(hf)
        hf.datasets = {k: v for k, v in hf.datasets.items() if not v.is_data}
    setup = channel_setup(hf, lumi_pb=generated_hists.lumi_pb)
    true_qcd = setup.closure["qcd_mc_in_signal_region"]
    predicted = setup.nominal["Nonprompt"].sum()
    sigma = np.hypot(nonprompt_sigma(setup), setup.closure["qcd_mc_stat"])
    print(pseudo_data, predicted, true_qcd, sigma)
    assert sigma < 0.2 * true_qcd  # a closure test with some power
    assert abs(predicted - true_qcd) < 3 * sigma, (predicted, true_qcd, sigma)
