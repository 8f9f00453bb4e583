"""Every output carries provenance, and a crash never leaves a file that looks complete."""

from __future__ import annotations

import h5py
import pytest

from fit.provenance import atomic_h5, provenance, read_meta

REQUIRED = {"command", "args", "time", "git_hash", "git_diff", "versions", "inputs"}


def test_provenance_names_command_args_inputs_and_versions():
    meta = provenance(args={"events": 10, "out": "x"}, inputs=["a.root"], command="wmass x")
    assert set(meta) >= REQUIRED
    assert meta["command"] == "wmass x"
    assert meta["args"] == {"events": 10, "out": "x"}
    assert meta["inputs"] == ["a.root"]
    assert meta["versions"]["numpy"]
    assert meta["versions"]["h5py"] == h5py.__version__


def test_meta_round_trips_through_hdf5(tmp_path):
    meta = provenance(args={"mw": 80.379, "seeds": [1, 2]}, inputs=["in.h5"])
    path = tmp_path / "out.h5"
    with atomic_h5(path, meta) as f:
        f["x"] = [1, 2, 3]
    with h5py.File(path) as f:
        assert read_meta(f) == meta
        assert list(f["x"][:]) == [1, 2, 3]


def test_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "out.h5"
    with pytest.raises(RuntimeError, match="boom"), atomic_h5(path, provenance()) as f:
        f["x"] = [1.0]
        raise RuntimeError("boom")
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []
