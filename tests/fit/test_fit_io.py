"""fitinput.h5 and fitresult.h5 round trips, and ``describe`` against the inspect contract."""

from __future__ import annotations

import json

import h5py
import jsonschema
import numpy as np
import pytest

from analysis.schemas import schema
from fit import FitInput, FitResult, describe, fit


@pytest.mark.parametrize("storage", ["dense", "sparse"])
def test_fitinput_round_trip(tmp_path, w_model, storage):
    path = w_model.write(tmp_path / "fitinput.h5", storage=storage)
    with h5py.File(path) as f:
        assert f.attrs["kind"] == "fitinput"
        assert f.attrs["format_version"] == 1
        assert f.attrs["logk_storage"] == storage
        assert "git_hash" in f["meta"].attrs
    back = FitInput.read(path)
    assert back.parameters == w_model.parameters
    assert back.processes == w_model.processes
    assert [c.name for c in back.channels] == ["sr", "sr_inclusive"]
    assert back.channels[1].masked and back.channels[0].shape == (15, 4, 2)
    np.testing.assert_array_equal(back.nominal, w_model.nominal)
    np.testing.assert_array_equal(back.sumw2, w_model.sumw2)
    np.testing.assert_array_equal(back.data[back.bin_mask], w_model.data[w_model.bin_mask])
    np.testing.assert_array_equal(back.logk_up.toarray(), w_model.logk_up.toarray())
    np.testing.assert_array_equal(back.logk_down.toarray(), w_model.logk_down.toarray())
    assert back.pois == w_model.pois
    assert list(back.constraints) == list(w_model.constraints)
    assert list(back.groups) == list(w_model.groups)
    # the same file fits to the same answer
    a = fit(w_model, data="asimov", yields=False)
    b = fit(back, data="asimov", yields=False)
    np.testing.assert_array_equal(a.errors, b.errors)


def test_fitresult_round_trip(tmp_path, w_model):
    res = fit(w_model, impacts=True, global_impacts=True, scan=["mW"], scan_points=3)
    path = res.write(tmp_path / "fitresult.h5")
    with h5py.File(path) as f:
        assert f.attrs["kind"] == "fitresult"
    back = FitResult.read(path)
    assert back.parameters == res.parameters
    np.testing.assert_array_equal(back.values, res.values)
    np.testing.assert_array_equal(back.covariance, res.covariance)
    np.testing.assert_array_equal(back.pulls, res.pulls)
    assert back.pois["mW"]["value"] == res.pois["mW"]["value"]
    assert back.pois["mW"]["unit"] == "MeV"
    np.testing.assert_array_equal(back.impacts["mW"], res.impacts["mW"])
    assert back.group_impacts == res.group_impacts
    assert back.global_impacts == res.global_impacts
    assert back.gof == res.gof
    np.testing.assert_array_equal(back.yields["sr"]["postfit_err"], res.yields["sr"]["postfit_err"])
    np.testing.assert_array_equal(back.scans["mW"]["dnll"], res.scans["mW"]["dnll"])
    assert back.nll == res.nll and back.status == "converged"


def test_fitresult_keeps_names_with_slashes_dots_and_percent_signs(tmp_path, w_model):
    """Names come from the input (a pyhf workspace's channels, POIs, groups): an HDF5 link
    name cannot hold '/', so they are escaped on the way in and restored on the way out."""
    import dataclasses

    plain = fit(w_model, impacts=True)
    odd = {"sr": "eta/charge 50%", "mW": "m/W"}

    def rename(d):
        return {odd.get(k, k): v for k, v in d.items()}

    res = dataclasses.replace(
        plain,
        yields={**rename(plain.yields), ".": plain.yields["sr"]},
        pois=rename(plain.pois),
        impacts=rename(plain.impacts),
        group_impacts={f"{k}/x": v for k, v in plain.group_impacts.items()},
    )
    back = FitResult.read(res.write(tmp_path / "fitresult.h5"))
    assert set(back.yields) == set(res.yields) and {"eta/charge 50%", "."} <= set(back.yields)
    assert set(back.pois) == {"m/W"} and set(back.impacts) == {"m/W"}
    assert back.group_impacts == res.group_impacts
    np.testing.assert_array_equal(back.yields["."]["prefit"], plain.yields["sr"]["prefit"])
    assert set(describe(tmp_path / "fitresult.h5")["pois"]) == {"m/W"}


def test_describe_fitresult_validates_against_the_contract(tmp_path, w_model):
    res = fit(w_model, data="asimov", global_impacts=True)
    path = res.write(tmp_path / "fitresult.h5")
    doc = describe(path)
    jsonschema.validate(json.loads(json.dumps(doc)), schema("fitresult"))  # packaged contract
    assert doc["pois"]["mW"]["value"] == 80379.0
    assert doc["pois"]["mW"]["error"] == pytest.approx(res.pois["mW"]["error"])
    assert doc["n_parameters"] == w_model.nparams


def test_describe_fitinput(tmp_path, w_model):
    doc = describe(w_model.write(tmp_path / "fitinput.h5"))
    assert doc["kind"] == "fitinput"
    assert doc["channels"] == {
        "sr": {"bins": 120, "masked": False},
        "sr_inclusive": {"bins": 15, "masked": True},
    }
    assert doc["systematics_per_group"]["muon efficiency"] == 4
    assert doc["pois"][0]["name"] == "mW" and doc["pois"][0]["offset"] == 80379.0


@pytest.mark.parametrize(
    "error",
    [
        OSError("Can't synchronously read data (address of object past end of allocation)"),
        KeyError("Unable to synchronously open object (unable to determine object type)"),
    ],
)
def test_a_fit_file_whose_root_attributes_do_not_read_is_named(tmp_path, monkeypatch, error):
    """What HDF5 raises for a corrupted attribute (both seen in the fuzz benchmark's byte flips
    of a fitinput.h5) is a FitInputError naming the file, not a traceback."""
    from fit.errors import FitInputError
    from fit.h5file import open_fit_file

    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.attrs["kind"] = "fitinput"

    def broken(self, name, default=None):
        raise error

    monkeypatch.setattr(h5py.AttributeManager, "get", broken)
    with (
        pytest.raises(FitInputError, match="unreadable root attributes") as info,
        open_fit_file(path, "fitinput"),
    ):
        pass
    assert str(path) in str(info.value)
