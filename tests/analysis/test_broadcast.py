"""A worker that dies while the processor is broadcast does not fail the run: the broadcast is
tried again on the workers that are left (the fault campaign once killed a worker at that very
moment and the run stopped with a CommClosedError from the scatter)."""

from __future__ import annotations

import distributed
import pytest
from distributed.comm.core import CommClosedError

from analysis.datasets import load_datasets
from analysis.runner import run
from processors import WMassProcessor
from processors.errors import RetryLimitExceeded
from tests.analysis import h3_samples as h3
from tests.support import loopback_cluster


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("broadcast")
    yaml_path = h3.make_fileset(tmp, mc_files=1, mc_events=200, data_events=200)
    return load_datasets(yaml_path), h3.corrections_for(tmp)


def test_a_broadcast_cut_by_a_dying_worker_is_tried_again(sample, monkeypatch):
    datasets, corrections = sample
    processor = WMassProcessor(corrections=corrections, variations=False)
    reference = run(processor, datasets, executor="iterative", progress=False).output
    scatter, calls = distributed.Client.scatter, []

    def flaky(self, data, *args, **kwargs):
        calls.append(kwargs.get("broadcast"))
        if len(calls) == 1:  # what a worker SIGKILLed mid-broadcast looks like to the driver
            raise CommClosedError("in <TCP (closed) ConnectionPool.scatter>: Stream is closed")
        return scatter(self, data, *args, **kwargs)

    monkeypatch.setattr(distributed.Client, "scatter", flaky)
    with loopback_cluster(protocol="tcp://") as cluster, distributed.Client(cluster) as client:
        out = run(processor, datasets, executor="dask", client=client, progress=False).output
    assert calls[:2] == [True, True]
    for name, ds in reference.items():
        for hname, h in ds["histograms"].items():
            assert (out[name]["histograms"][hname].values(flow=True) == h.values(flow=True)).all()


def test_a_broadcast_that_keeps_failing_stops_with_a_named_error(sample, monkeypatch):
    datasets, corrections = sample
    processor = WMassProcessor(corrections=corrections, variations=False)

    def dead(self, data, *args, **kwargs):
        raise CommClosedError("every worker gone")

    monkeypatch.setattr(distributed.Client, "scatter", dead)
    monkeypatch.setattr("time.sleep", lambda s: None)
    with (
        loopback_cluster(protocol="tcp://") as cluster,
        distributed.Client(cluster) as client,
        pytest.raises(RetryLimitExceeded, match="broadcast of the processor.*every worker gone"),
    ):
        run(processor, datasets, executor="dask", client=client, progress=False)
