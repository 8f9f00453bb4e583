"""The full chain on a generated sample: pseudo-data at a W mass 100 MeV above the reference
are generated, histogrammed, post-processed and fitted, and the fit gives that mass back.

Every step is the ``wmass`` command a user types (through ``analysis.cli.main``)."""

from __future__ import annotations

import json

import h5py
import pytest

from analysis.cli import main as wmass
from benchmarks._common import histmaker_argv

MW_TRUE_GEV = 80.479
EVENTS = 600_000


@pytest.mark.slow
def test_generate_histmaker_setup_fit_gives_back_the_generated_w_mass(tmp_path):
    samples, hists = tmp_path / "samples", tmp_path / "hists.h5"
    fitinput, fitresult = tmp_path / "fitinput.h5", tmp_path / "fitresult.h5"
    args = ["--out", samples, "--events", EVENTS, "--mw", MW_TRUE_GEV, "--seed", 11]
    assert wmass(["generate", *map(str, args)]) == 0
    # the mass templates and the momentum scale: the variations the mass measurement needs
    argv = histmaker_argv(
        samples / "datasets.yaml",
        hists,
        executor="iterative",
        variations=["massWeight", "muonScale"],
        extra=["--analysis", "wmass"],
    )
    assert wmass(argv) == 0
    assert wmass(["setup-fit", str(hists), "--out", str(fitinput)]) == 0
    assert wmass(["fit", str(fitinput), "--out", str(fitresult)]) == 0

    from fit import describe

    with h5py.File(fitresult) as f:
        result = describe(f)
    assert result["status"] == "converged"
    mw = result["pois"]["mW"]
    print(json.dumps(mw))
    assert 20 < mw["error"] < 120  # MeV, ~25k selected W -> mu nu data events
    assert abs(mw["value"] - 1000 * MW_TRUE_GEV) < 3 * mw["error"]
