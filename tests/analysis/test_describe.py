"""One ``describe`` for any wmass output: ``analysis.inspect.describe`` hands each kind to its
own description (``analysis.io.describe``, ``fit.describe``) and gives the same dictionaries they
give; a malformed file of a known kind is a named :class:`BadInputFile`, not a traceback."""

from __future__ import annotations

import h5py
import hist
import numpy as np
import pytest

import fit
from analysis import inspect, io
from analysis.cli import main
from fit import FitInputBuilder
from processors.errors import BadInputFile


def _fitinput(tmp_path):
    b = FitInputBuilder()
    b.add_channel("sr", np.array([110.0, 95.0, 130.0]))
    b.add_process("sr", "sig", np.array([20.0, 30.0, 25.0]), signal=True)
    b.add_process("sr", "bkg", np.array([90.0, 70.0, 100.0]))
    b.add_poi("mu")
    b.add_norm("lumi", ["sig", "bkg"], 1.02, group="luminosity")
    return b.build().write(tmp_path / "fitinput.h5")


def test_each_kind_is_described_by_its_own_module(tmp_path):
    path = _fitinput(tmp_path)
    assert inspect.describe(path) == fit.describe(str(path))
    assert inspect.describe(path)["systematics_per_group"] == {"POI": 1, "luminosity": 1}
    h = hist.Hist.new.Reg(3, 0, 3, name="x").Weight()
    h.fill(x=[0.5, 2.5])
    ds = io.DatasetHistograms("w", process="Wmunu", sumw=2.0, histograms={"nominal": h})
    hists = io.write_histograms(tmp_path / "hists.h5", [ds], meta={"command": "test"})
    assert inspect.describe(hists) == io.describe(hists)
    assert inspect.describe_file is inspect.describe


def test_a_malformed_file_of_a_known_kind_is_named(tmp_path, capsys):
    odd = tmp_path / "fitresult.h5"
    with h5py.File(odd, "w") as f:
        f.attrs["kind"] = "fitresult"
    with pytest.raises(BadInputFile, match="malformed fitresult file") as info:
        inspect.describe(odd)
    assert info.value.path == str(odd)
    assert main(["inspect", str(odd), "--json"]) == BadInputFile.exit_code
    err = capsys.readouterr().err
    assert str(odd) in err and "Traceback" not in err
