"""``wmass fit``: reads fitinput.h5, writes fitresult.h5, prints POIs and where it wrote."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from analysis.cli import main
from fit import FitInputError, FitResult
from fit.result import rounded

_spec = importlib.util.spec_from_file_location(
    "fit_models", Path(__file__).with_name("fit_models.py")
)
fit_models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fit_models)


@pytest.fixture(scope="module")
def fitinput(tmp_path_factory):
    fi = fit_models.w_like_model(n_eta=2, asymmetric=True, mc_stat=0.02, masked=False)
    return fi.write(tmp_path_factory.mktemp("cli") / "fitinput.h5")


def test_wmass_fit_asimov_with_impacts(tmp_path, fitinput, capsys):
    out = tmp_path / "fitresult.h5"
    rc = main(
        [
            "fit",
            str(fitinput),
            "--out",
            str(out),
            "-t",
            "-1",
            "--impacts",
            "--global-impacts",
            "--scan",
            "mW",
            "--scan-points",
            "3",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    res = FitResult.read(out)
    assert res.data == "asimov" and res.pois["mW"]["value"] == 80379.0
    # printed as a person reads it: rounded to its uncertainty (PDG rule)
    value, error = rounded(res.pois["mW"]["value"], res.pois["mW"]["error"])
    assert f"mW = {value} +- {error} MeV" in printed and f"wrote {out}" in printed
    assert res.meta["inputs"] == [str(fitinput)] and res.meta["args"]["toys"] == -1
    assert "muon efficiency" in res.global_impacts["mW"]
    assert res.scans["mW"]["dnll"].shape == (3,)


def test_wmass_fit_toys(tmp_path, fitinput, capsys):
    out = tmp_path / "toys.h5"
    assert main(["fit", str(fitinput), "--out", str(out), "-t", "4", "--seed", "3"]) == 0
    res = FitResult.read(out)
    assert res.toys["values"].shape[0] == 4
    assert np.all(np.isfinite(res.toys["poi_mW"][:, 0]))
    assert "toys: 4 / 4 converged" in capsys.readouterr().out


def test_wmass_fit_names_a_bad_input(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "missing.h5")]) == FitInputError.exit_code
    assert "missing.h5: no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.h5"
    bad.write_text("nope")
    assert main(["fit", str(bad), "--out", str(tmp_path / "r.h5")]) == FitInputError.exit_code
    assert "cannot open as HDF5" in capsys.readouterr().err
    assert not (tmp_path / "r.h5").exists()


def test_wmass_fit_reads_a_pyhf_workspace(tmp_path, capsys):
    import json

    from fit.pyhf import simple_workspace

    ws = tmp_path / "ws.json"
    ws.write_text(
        json.dumps(simple_workspace(signal=[5.0, 10.0], background=[50.0, 60.0], observed=[60, 75]))
    )
    out = tmp_path / "ws-result.h5"
    assert main(["fit", str(ws), "--out", str(out)]) == 0
    res = FitResult.read(out)
    assert res.status == "converged" and "mu" in res.pois
    # background-only expectation 110, observed 135, signal 15: mu ~ 25 / 15
    assert 1.0 < res.pois["mu"]["value"] < 2.5
    assert f"wrote {out}" in capsys.readouterr().out
