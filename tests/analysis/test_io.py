"""hists.h5: every histogram and every piece of bookkeeping reads back identical."""

from __future__ import annotations

import dataclasses

import h5py
import hist
import numpy as np
import pytest

from analysis.io import (
    DatasetHistograms,
    describe,
    file_kind,
    read_histograms,
    write_histograms,
)
from processors.errors import BadInputFile
from processors.variations import variation_axis
from processors.wmass import w_axes
from processors.zdilepton import z_axes
from tests.support import raises_naming, written


def _random_fill(h: hist.Hist, rng, n=5000):
    cols = []
    for ax in h.axes:
        if isinstance(ax, hist.axis.StrCategory):
            cols.append(rng.choice(list(ax), n))
        elif isinstance(ax, hist.axis.Boolean):
            cols.append(rng.random(n) < 0.5)
        else:
            lo, hi = ax.edges[0], ax.edges[-1]
            hi = lo + 200 if not np.isfinite(hi) else hi
            span = hi - lo
            cols.append(rng.uniform(lo - 0.1 * span, hi + 0.1 * span, n))
    h.fill(*cols, weight=rng.normal(1, 0.3, n))
    return h


@pytest.fixture
def sample_datasets():
    rng = np.random.default_rng(5)
    pdf = variation_axis("pdf", [f"pdf{i}" for i in range(103)])
    w = DatasetHistograms(
        name="wmunu",
        process="Wmunu",
        is_data=False,
        xsec_pb=20508.9,
        sumw=1234.5,
        sumw2=2345.25,
        events_read=1000,
        events_selected=420,
        files_processed=["/s/wmunu/nano_0.root", "/s/wmunu/nano_1.root"],
        files_failed=[{"file": "/s/wmunu/nano_2.root", "error": "bad input file: truncated"}],
        chunks=[("/s/wmunu/nano_0.root", 0, 500), ("/s/wmunu/nano_1.root", 0, 500)],
        histograms={
            "nominal": _random_fill(hist.Hist(*w_axes(), storage=hist.storage.Weight()), rng),
            "pdf": _random_fill(hist.Hist(*w_axes(), pdf, storage=hist.storage.Double()), rng),
        },
        sumw_yaml=1234.5,
        nevents_yaml=1000,
    )
    z = DatasetHistograms(  # flow bins (ptll overflow) must survive too
        name="data",
        process="Data",
        is_data=True,
        sumw=800.0,
        sumw2=800.0,
        events_read=800,
        events_selected=33,
        lumi_pb=0.004,
        files_processed=["/s/data/nano_0.root"],
        chunks=[("/s/data/nano_0.root", 0, 800)],
        lumisections=[(1, 1), (1, 2), (297050, 12)],
        histograms={
            "nominal": _random_fill(hist.Hist(*z_axes(), storage=hist.storage.Weight()), rng)
        },
    )
    return {"wmunu": w, "data": z}


def test_round_trip_gives_identical_hists_and_bookkeeping(tmp_path, sample_datasets):
    path = write_histograms(
        tmp_path / "hists.h5",
        sample_datasets,
        {"command": "test", "args": {"x": 1}, "inputs": ["a"]},
        analysis="wmass",
        lumi_pb=0.004,
    )
    back = read_histograms(path)
    assert back.analysis == "wmass" and back.lumi_pb == 0.004 and back.format_version == 1
    assert back.meta == {"command": "test", "args": {"x": 1}, "inputs": ["a"]}
    assert list(back) == sorted(sample_datasets)
    for name, ds in sample_datasets.items():
        got = back[name]
        for h_name, h in ds.histograms.items():
            g = got.histograms[h_name]
            assert g == h, (name, h_name)  # axes (names, labels, flow), storage, values
            assert type(g.storage_type) is type(h.storage_type) or g.storage_type == h.storage_type
            assert g.axes.label == h.axes.label
            np.testing.assert_array_equal(g.view(flow=True), h.view(flow=True))
        # every field of the dataclass (the bookkeeping, whatever the writer's list of keys)
        for key in {f.name for f in dataclasses.fields(DatasetHistograms)} - {"histograms"}:
            assert getattr(got, key) == getattr(ds, key), (name, key)
    assert back["data"].xsec_pb is None and back["data"].scale() == 1.0
    assert back["wmunu"].scale(10.0) == pytest.approx(20508.9 * 10 / 1234.5)


def test_layout_is_plain_hdf5_chunked_and_compressed(tmp_path, sample_datasets):
    path = write_histograms(tmp_path / "h.h5", sample_datasets, {"command": "t"})
    with h5py.File(path) as f:
        assert f.attrs["kind"] == "histograms"
        values = f["datasets/wmunu/histograms/pdf/storage/values"]
        assert values.shape == (30, 48, 2, 2, 3, 103) and values.dtype == np.float64
        assert values.compression == "gzip" and values.chunks[-1] == 103
        assert values.chunks[0] < 30  # cut along the leading axis, variations whole
        assert f["datasets/wmunu/histograms/nominal/storage"].attrs["type"] == "weighted"
        assert f["datasets/data/lumisections"].shape == (3, 2)
        assert f["datasets/data"].attrs["lumi_pb"] == 0.004
        assert "xsec_pb" not in f["datasets/data"].attrs  # None is an absent attribute
        # nothing pickled: no opaque byte blobs anywhere
        kinds = []
        f.visititems(lambda _, obj: kinds.append(getattr(obj, "dtype", None)))
        assert not any(k is not None and k.kind == "V" and k.names is None for k in kinds)


def test_partial_read(tmp_path, sample_datasets):
    path = write_histograms(tmp_path / "h.h5", sample_datasets, {"command": "t"})
    only = read_histograms(path, datasets=["wmunu"], histograms=["nominal"])
    assert list(only) == ["wmunu"] and set(only["wmunu"].histograms) == {"nominal"}
    books = read_histograms(path, histograms=False)
    assert books["data"].histograms == {} and books["data"].events_read == 800


def test_describe_sums_and_shapes(tmp_path, sample_datasets):
    path = write_histograms(tmp_path / "h.h5", sample_datasets, {"command": "t"})
    d = describe(path)
    assert d["kind"] == "histograms" and d["meta"] == {"command": "t"}
    w = d["datasets"]["wmunu"]
    assert w["histograms"]["pdf"]["axes"] == ["pt", "eta", "charge", "passIso", "mt", "pdf"]
    assert w["histograms"]["pdf"]["shape"] == [30, 48, 2, 2, 3, 103]
    h = sample_datasets["wmunu"].histograms["pdf"]
    assert w["histograms"]["pdf"]["sum"] == pytest.approx(h.sum(flow=True), rel=1e-12)
    z = d["datasets"]["data"]["histograms"]["nominal"]
    assert z["shape"] == [60, 15, 24]  # the ptll overflow bin is stored
    assert w["files_failed"][0]["file"].endswith("nano_2.root") and w["xsec_pb"] == 20508.9


def test_crash_while_writing_leaves_no_file(tmp_path, sample_datasets):
    bad = DatasetHistograms(name="bad", histograms={"x": "not a histogram"})
    with pytest.raises(Exception):  # noqa: B017 - any failure inside the writer
        write_histograms(tmp_path / "h.h5", [*sample_datasets.values(), bad], {"command": "t"})
    assert list(tmp_path.iterdir()) == []


def test_wrong_files_are_named(tmp_path):
    text = written(tmp_path / "notes.txt", "hello")
    with raises_naming(BadInputFile, "not an HDF5 file", path=str(text)):
        read_histograms(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.attrs["kind"] = "fitresult"
    assert file_kind(other) == "fitresult"
    with pytest.raises(BadInputFile, match="kind is 'fitresult'"):
        read_histograms(other)
    bare = tmp_path / "bare.h5"
    h5py.File(bare, "w").close()
    with pytest.raises(BadInputFile, match="without a 'kind'"):
        describe(bare)
    with pytest.raises(BadInputFile, match="no such file"):
        file_kind(tmp_path / "absent.h5")
