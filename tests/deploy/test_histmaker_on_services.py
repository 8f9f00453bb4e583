"""The histmaker where it runs for real: workers started by SLURM, files read over xrootd.

A small generated sample is filled once in this process (the reference), then again with its
chunks on a one-node SLURM cluster (dask-jobqueue, ``--cluster deploy-style YAML``) and again
reading every file as ``root://127.0.0.1:PORT//...`` from a real xrootd server. Where the route
is honest, the histograms are the same to the last bit of float64 rounding: same bins, same
sums of weights, same events, same luminosity.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from analysis.generate import generate_samples
from analysis.io import read_histograms
from tests.services import slurm_cluster, xrootd_server
from tests.support import histmaker_quiet

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("WMASS_NO_SERVICES") == "1", reason="WMASS_NO_SERVICES=1"),
]

#: a few variation kinds keep the histograms small; the route, not the physics, is tested
VARIATIONS = ["massWeight", "pileup"]


@pytest.fixture(scope="module")
def sample():
    # not under pytest's tmp dir: xrootd runs as nobody and must traverse every parent
    top = Path(tempfile.mkdtemp(prefix="wmass-services-"))
    top.chmod(0o755)
    try:
        yaml_path = generate_samples(top / "samples", events=6000, seed=5, mw=80.429)
        yield yaml_path
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def reference(sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "hists.h5"
    histmaker_quiet(sample, out, executor="iterative", variations=VARIATIONS)
    return read_histograms(out)


def assert_same_histograms(got, ref) -> None:
    assert sorted(got.datasets) == sorted(ref.datasets)
    assert got.lumi_pb == pytest.approx(ref.lumi_pb, rel=1e-12)
    for name, r in ref.datasets.items():
        g = got[name]
        assert (g.events_read, g.events_selected) == (r.events_read, r.events_selected), name
        assert g.sumw == pytest.approx(r.sumw, rel=1e-12)
        assert sorted(g.histograms) == sorted(r.histograms)
        for hname, rh in r.histograms.items():
            gh = g.histograms[hname]
            assert gh.axes == rh.axes
            np.testing.assert_allclose(gh.values(flow=True), rh.values(flow=True), rtol=1e-12)
            if rh.variances() is not None:
                np.testing.assert_allclose(
                    gh.variances(flow=True), rh.variances(flow=True), rtol=1e-12
                )
    signal = ref["wmunu"].histograms["nominal"]
    assert signal.sum().value > 100  # the comparison is not of empty histograms


def test_histmaker_on_slurm_workers_gives_the_local_histograms(
    sample, reference, tmp_path, monkeypatch
):
    with slurm_cluster(tmp_path / "slurm") as env:
        monkeypatch.setenv("SLURM_CONF", env["SLURM_CONF"])
        spec = tmp_path / "slurm.yaml"
        spec.write_text(
            yaml.safe_dump(
                {
                    "kind": "slurm",
                    "jobs": 1,
                    "wait_timeout": 120,
                    "cluster": {
                        "queue": "debug",
                        "cores": 1,
                        "processes": 1,
                        "memory": "2GB",
                        "walltime": "00:20:00",
                        "log_directory": str(tmp_path / "logs"),
                        "local_directory": str(tmp_path / "work"),
                    },
                }
            )
        )
        out, _, result = histmaker_quiet(
            sample, tmp_path / "hists.h5", cluster=spec, chunksize=4000, variations=VARIATIONS
        )
    assert result.executor == "dask"
    workers = list(result.placement)
    assert workers and all(not w.startswith("local") for w in workers)
    assert_same_histograms(read_histograms(out), reference)


def test_histmaker_reading_root_urls_from_xrootd_gives_the_local_histograms(
    sample, reference, tmp_path
):
    with xrootd_server(sample.parent) as url:
        spec = yaml.safe_load(sample.read_text())
        for ds in spec["datasets"].values():
            ds["files"] = [f"{url}/{(sample.parent / f).resolve()}" for f in ds["files"]]
        remote = sample.parent / "datasets-xrootd.yaml"
        remote.write_text(yaml.safe_dump(spec))
        out, content, _ = histmaker_quiet(
            remote, tmp_path / "hists.h5", executor="iterative", variations=VARIATIONS
        )
    import fsspec

    # uproot hands root:// URLs to fsspec, which resolves them to fsspec-xrootd
    assert fsspec.get_filesystem_class("root").__module__.startswith("fsspec_xrootd")
    processed = [f for ds in content.values() for f in ds.files_processed]
    assert processed and all(f.startswith("root://127.0.0.1:") for f in processed)
    assert_same_histograms(read_histograms(out), reference)
