"""The embedded local cluster starts while the command plans its chunks: the chunks are planned
before the workers are ready, the histograms equal those of one process, and a cluster that
cannot start says why without leaving a thread behind."""

from __future__ import annotations

import dataclasses
import gc
import importlib
import threading
from pathlib import Path

import pytest
import uproot

from analysis import cli
from analysis.datasets import load_datasets
from analysis.io import read_histograms
from analysis.runner import PendingClient, chunk_key, dask_client, run
from analysis.runner.cluster import worker_heap_plugin
from analysis.runner.run import choose_executor
from processors import WMassProcessor
from processors.errors import ConfigError

# the module, not the function ``analysis.runner.run`` that its package re-exports
run_module = importlib.import_module("analysis.runner.run")


@pytest.fixture(scope="module")
def sample(small_fileset):
    yaml_path, corrections = small_fileset
    return load_datasets(yaml_path), corrections


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


def test_auto_runs_a_small_input_in_this_process_and_a_large_one_on_a_cluster(sample, monkeypatch):
    datasets, _ = sample
    events = sum(
        uproot.open(f)[ds.treename].num_entries for ds in datasets.values() for f in ds.files
    )
    executor, why = choose_executor(datasets, workers=2)
    assert executor == "iterative" and f"{events:,} events" in why
    # the break-even falls with the workers as n / (2 (n - 1)): 4 workers need 2/3 of 2
    monkeypatch.setattr(run_module, "AUTO_DASK_EVENTS", int(1.4 * events))
    assert choose_executor(datasets, workers=2)[0] == "iterative"
    assert choose_executor(datasets, workers=4)[0] == "dask"
    monkeypatch.setattr(run_module, "AUTO_DASK_EVENTS", events)
    assert choose_executor(datasets, workers=2)[0] == "dask"
    assert choose_executor(datasets, workers=1)[0] == "iterative"


def test_auto_takes_the_cluster_for_remote_files(sample):
    datasets, _ = sample
    remote = {
        name: dataclasses.replace(
            ds, files=[f"root://eos.example//{Path(f).name}" for f in ds.files]
        )
        for name, ds in datasets.items()
    }
    assert choose_executor(remote, workers=2) == ("dask", "remote files")


def test_the_histmaker_says_what_auto_chose(small_fileset, tmp_path, capsys):
    yaml_path, corrections = small_fileset
    out = tmp_path / "hists.h5"
    argv = ["histmaker", "--datasets", str(yaml_path), "--out", str(out)]
    assert cli.main([*argv, "--corrections", str(corrections), "--variations"]) == 0
    assert "[auto] iterative:" in capsys.readouterr().err
    assert len(read_histograms(out)) == len(load_datasets(yaml_path))


def test_workers_we_start_freeze_their_heap_at_teardown_so_they_exit_at_once():
    plugin = worker_heap_plugin()
    try:
        plugin.teardown(None)
        assert gc.get_freeze_count() > 0  # the last collections of the interpreter skip these
    finally:
        gc.unfreeze()
    with dask_client(workers=1, quiet=True) as client:
        registered = client.run(lambda dask_worker: sorted(dask_worker.plugins))
    assert [plugin.name in names for names in registered.values()] == [True]


def _heap() -> dict:
    import gc

    return {"frozen": gc.get_freeze_count(), "young_threshold": gc.get_threshold()[0]}


@pytest.mark.parametrize("warm", [False, True], ids=["spawned", "warm"])
def test_workers_we_start_keep_their_imports_out_of_full_collections(warm):
    from analysis.warmstart import YOUNG_THRESHOLD

    with dask_client(workers=1, quiet=True, warm_workers=warm) as client:
        heaps = list(client.run(_heap).values())
    assert len(heaps) == 1
    # distributed's objects at least (the whole stack, with warm workers) are frozen
    assert heaps[0]["frozen"] > 50_000, heaps
    assert heaps[0]["young_threshold"] == YOUNG_THRESHOLD, heaps


def _registration(dask_worker) -> dict:
    import sys

    return {
        "pandas_imported": "pandas" in sys.modules,
        "preloads": [preload.name for preload in dask_worker.preloads],
    }


def test_spawned_workers_register_without_importing_pandas_and_keep_a_users_preload():
    import dask

    # a user's own worker preload (any importable module) runs too, before ours
    with (
        dask.config.set({"distributed.worker.preload": ["analysis.heap"]}),
        dask_client(workers=1, quiet=True, warm_workers=False) as client,
    ):
        state = list(client.run(_registration).values())
        versions = client.get_versions(check=True)  # raises on a mismatch
    assert [s["preloads"] for s in state] == [["analysis.heap", "analysis._spawned_worker"]]
    # registering imported pandas only for its version (0.4 s per worker)
    assert [s["pandas_imported"] for s in state] == [False]
    pandas = importlib.metadata.version("pandas")
    assert {w["packages"]["pandas"] for w in versions["workers"].values()} == {pandas}
