"""The embedded local cluster starts while the command plans its chunks: the chunks are planned
before the workers are ready, the histograms equal those of one process, and a cluster that
cannot start says why without leaving a thread behind."""

from __future__ import annotations

import threading

import pytest

from analysis.datasets import load_datasets
from analysis.runner import PendingClient, chunk_key, run
from processors import WMassProcessor
from processors.errors import ConfigError
from tests.analysis import h3_samples as h3


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("start")
    yaml_path = h3.make_fileset(tmp, mc_files=2, mc_events=300, data_events=300)
    return load_datasets(yaml_path), h3.corrections_for(tmp)


def _threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("wmass-cluster-start")}


def test_a_cluster_that_cannot_start_raises_its_error_and_leaves_no_thread():
    before = _threads()
    pending = PendingClient(scheduler="tcp://127.0.0.1:1", cluster="deploy/slurm.yaml")
    with pytest.raises(ConfigError, match="scheduler"):
        pending.result()
    pending.close()
    assert _threads() == before


def test_chunks_are_planned_while_the_local_cluster_starts(sample):
    datasets, corrections = sample
    processor = WMassProcessor(corrections=corrections, variations=("pdf",))
    local = run(processor, datasets, executor="iterative", progress=False)
    dask = run(processor, datasets, executor="dask", workers=1, progress=False)
    tl = dask.timeline
    assert tl is not None and tl.planned is not None and tl.client_ready is not None
    # planned in this process before the worker was up: the overlap the start relies on
    assert tl.planned < tl.client_ready
    assert [chunk_key(c) for c in dask.chunks] == [chunk_key(c) for c in local.chunks]
    for name, out in local.output.items():
        for hname, h in out["histograms"].items():
            other = dask.output[name]["histograms"][hname]
            assert other.values(flow=True) == pytest.approx(h.values(flow=True), rel=1e-12)
    assert _threads() == set()
