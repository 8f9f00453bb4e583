"""``wmass demo --calibrate``: the chain on corrections it measured itself (generate, a Z
calibration sample with the same detector truth, calibrate, histmaker with ``calib.json``,
setup-fit, fit), and a sane m_W at the end. The report step is the same as without
``--calibrate`` and is left out here (tests/report covers it)."""

from __future__ import annotations

import argparse
import json

import h5py

from analysis import cli
from analysis.calibrate import closure
from analysis.demo import demo_steps
from fit import FitResult
from fit.provenance import read_meta

MW = 80.429


def test_demo_chain_runs_with_measured_corrections(tmp_path):
    args = argparse.Namespace(
        out=tmp_path,
        events=60_000,
        seed=3,
        mw=MW,
        executor="iterative",
        workers=1,
        calibrate=True,
        calib_events=200_000,
    )
    steps = demo_steps(args)
    assert [name for name, _ in steps] == [
        "generate",
        "generate",
        "calibrate",
        "histmaker",
        "setup-fit",
        "fit",
        "report",
    ]
    for name, argv in steps[:-1]:
        assert cli.main(argv) == 0, name
    calib = tmp_path / "calib.json"
    # the calibration closes on the truth of its sample (logged by the step) ...
    log = calib.with_suffix(".log").read_text()
    assert "closure against" in log
    meta = json.loads(calib.with_name("calib.meta.json").read_text())
    assert meta["counts"]["data"] > 50_000 and meta["counts"]["mc"] > 50_000
    # the momentum scale closes (+0.09 / 0.95 on this sample); the smoothed SF pulls are
    # correlated within an eta bin and need the larger samples of docs/calibration.md
    result = closure(calib, tmp_path / "calib_samples" / "truth.json")
    assert abs(result.scale.mean) <= 0.3 and 0.7 <= result.scale.rms <= 1.4, result.table()
    # ... and the histmaker filled with it, not with the generator's corrections.json
    with h5py.File(tmp_path / "hists.h5", "r") as f:
        hist_meta = read_meta(f)
    assert hist_meta["args"]["corrections"] == str(calib)
    mw = FitResult.read(tmp_path / "fitresult.h5").pois["mW"]
    pull = (mw["value"] - 1000 * MW) / mw["error"]
    assert 20.0 < mw["error"] < 600.0, mw
    assert abs(pull) < 4.0, mw
