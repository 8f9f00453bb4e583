"""Bad input gives a named error: the channel, process, bin or parameter is in the message."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from fit import FitDidNotConverge, FitInput, FitInputBuilder, FitInputError, FitResult, fit
from fit.minimize import minimize
from tests.support import rosenbrock, rosenbrock_hess


def _builder(data=(10.0, 20.0, 30.0), sig=(5.0, 10.0, 15.0), bkg=(5.0, 10.0, 15.0)):
    b = FitInputBuilder()
    b.add_channel("sr", np.array(data))
    b.add_process("sr", "sig", np.array(sig), signal=True)
    b.add_process("sr", "bkg", np.array(bkg))
    b.add_poi("mu")
    return b


@pytest.mark.parametrize("bad", [np.nan, -1.0])
def test_nan_or_negative_yield_names_channel_process_bin(bad):
    b = _builder(bkg=(5.0, bad, 15.0))
    with pytest.raises(FitInputError, match=r"channel 'sr' process 'bkg' bin 1"):
        b.build()


def test_negative_data_names_the_bin():
    with pytest.raises(FitInputError, match=r"data is -3.0.*|channel 'sr' bin 2"):
        _builder(data=(10.0, 20.0, -3.0)).build()


def test_data_in_a_bin_without_prediction():
    with pytest.raises(FitInputError, match=r"channel 'sr' bin 2.*prediction is 0|prediction is 0"):
        _builder(sig=(5.0, 10.0, 0.0), bkg=(5.0, 10.0, 0.0)).build()


def test_unconstrained_parameter_without_effect_is_singular():
    b = _builder()
    b.add_systematic("dead", {("sr", "bkg"): np.array([5.0, 10.0, 15.0])}, constraint="none")
    with pytest.raises(FitInputError, match=r"parameter 'dead'.*singular"):
        b.build()


def test_unknown_process_and_channel_are_named():
    b = _builder()
    with pytest.raises(FitInputError, match="unknown process 'ttbar'"):
        b.add_systematic("s", {("sr", "ttbar"): np.ones(3)})
        b.build()
    b = _builder()
    b.add_systematic("s", {("cr", "bkg"): np.ones(3)})
    with pytest.raises(FitInputError, match="unknown channel 'cr'"):
        b.build()


def test_nan_variation_is_named():
    b = _builder()
    b.add_systematic("jes", {("sr", "bkg"): np.array([5.0, np.nan, 15.0])})
    with pytest.raises(FitInputError, match=r"parameter 'jes' process 'bkg'"):
        b.build()


def test_malformed_files(tmp_path):
    not_h5 = tmp_path / "x.h5"
    not_h5.write_text("not hdf5")
    with pytest.raises(FitInputError, match="cannot open as HDF5"):
        FitInput.read(not_h5)
    wrong = tmp_path / "wrong.h5"
    with h5py.File(wrong, "w") as f:
        f.attrs["kind"] = "histograms"
    with pytest.raises(FitInputError, match="kind is 'histograms'"):
        FitInput.read(wrong)
    with pytest.raises(FitInputError, match="not 'fitresult'"):
        FitResult.read(wrong)
    good = _builder().build().write(tmp_path / "good.h5")
    with h5py.File(good, "a") as f:
        del f["nominal"]
    with pytest.raises(FitInputError, match="missing.*nominal"):
        FitInput.read(good)
    newer = _builder().build().write(tmp_path / "newer.h5")
    with h5py.File(newer, "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(FitInputError, match="format_version 99"):
        FitInput.read(newer)


def test_a_corrupted_dataset_is_a_named_error(tmp_path):
    path = _builder().build().write(tmp_path / "fi.h5")
    with h5py.File(path, "a") as f:
        values = f["nominal"][()]
        del f["nominal"]
        f.create_dataset("nominal", data=values, chunks=values.shape, compression="gzip")
        offset = f["nominal"].id.get_chunk_info(0).byte_offset
    with open(path, "r+b") as raw:  # the compressed bytes of the chunk, overwritten
        raw.seek(offset)
        raw.write(b"\xff" * 8)
    with pytest.raises(FitInputError, match=r"fi\.h5.*unreadable"):
        FitInput.read(path)


def test_minimizer_gives_up_with_the_reason():
    fi = _builder(data=(30.0, 60.0, 90.0)).build()
    with pytest.raises(FitDidNotConverge, match="max iterations"):
        fit(fi, max_iter=1)

    def nan_objective(x):
        return float("nan"), np.zeros_like(x)

    with pytest.raises(FitDidNotConverge, match="non-finite NLL"):
        minimize(nan_objective, np.zeros(2), hess=lambda x: np.eye(2))
    res = minimize(rosenbrock, np.array([-1.2, 1.0]), hess=rosenbrock_hess)
    np.testing.assert_allclose(res.x, [1.0, 1.0], atol=1e-5)


def test_unknown_minimizer_is_named():
    with pytest.raises(FitInputError, match="minimizer 'lbfgs'"):
        fit(_builder().build(), minimizer="lbfgs")


def test_inconsistent_sparse_tensor_is_a_named_error(tmp_path):
    path = _builder().build().write(tmp_path / "fi.h5")
    with h5py.File(path, "a") as f:
        del f["logk_sparse/col"]
        f["logk_sparse/col"] = np.array([0, 1, 2], dtype=np.int32)  # wrong length
    with pytest.raises(FitInputError, match="malformed file"):
        FitInput.read(path)
