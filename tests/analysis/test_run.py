"""Running a processor over files: the iterative and Dask executors give the same histograms,
every chunk is processed once, and a file-level fill equals an independent reference."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import uproot

from analysis.datasets import Dataset, load_datasets, tree_entries
from analysis.histmaker import to_histograms
from analysis.io import read_histograms, write_histograms
from analysis.runner.run import plan, run
from processors import WMassProcessor
from processors.errors import BadInputFile
from tests.analysis import h3_samples as h3
from tests.processors import test_reference as reference
from tests.support import loopback_cluster

HERE = Path(__file__).resolve().parent


VARIATIONS = reference.VARIATIONS  # every variation the reference knows how to compute
SOME = ("pdf", "pileup", "prefiringStat", "muonScale")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    yaml_path = h3.make_fileset(tmp, mc_files=2, mc_events=400, data_events=500)
    return yaml_path, h3.corrections_for(tmp)


def _assert_same(a: dict, b: dict, rtol=1e-12):
    assert set(a) == set(b)
    for name in a:
        for key in ("events_read", "events_selected", "chunks", "lumisections"):
            assert a[name][key] == b[name][key], (name, key)
        assert a[name]["sumw"] == pytest.approx(b[name]["sumw"], rel=rtol)
        assert set(a[name]["histograms"]) == set(b[name]["histograms"])
        for h, ha in a[name]["histograms"].items():
            hb = b[name]["histograms"][h]
            assert ha.axes == hb.axes, (name, h)
            scale = max(float(np.abs(ha.values()).max()), 1.0)
            np.testing.assert_allclose(
                ha.view(flow=True)["value"]
                if ha.storage_type.__name__ == "Weight"
                else ha.values(flow=True),
                hb.view(flow=True)["value"]
                if hb.storage_type.__name__ == "Weight"
                else hb.values(flow=True),
                rtol=rtol,
                atol=rtol * scale,
                err_msg=f"{name} {h}",
            )


def test_chunks_cover_every_file_once(sample):
    yaml_path, _ = sample
    datasets = load_datasets(yaml_path)
    chunks, failed = plan(datasets, chunksize=300)
    assert failed == {}
    by_file: dict[str, list] = {}
    for c in chunks:
        by_file.setdefault(c.filename, []).append((c.entrystart, c.entrystop))
    for path, ranges in by_file.items():
        n = uproot.open(path)["Events"].num_entries
        ranges.sort()
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False)), path
    result = run(
        WMassProcessor(variations=False),
        datasets,
        executor="iterative",
        chunksize=300,
        progress=False,
    )
    for name, ds in datasets.items():
        got = result.output[name]["chunks"]
        want = {(c.filename, c.entrystart, c.entrystop) for c in chunks if c.dataset == name}
        assert got == want
        assert result.output[name]["events_read"] == sum(
            uproot.open(f)["Events"].num_entries for f in ds.files
        )
    assert result.events == 2 * 400 + 500


def test_chunks_start_where_the_files_clusters_start(tmp_path):
    """A basket is decompressed by one chunk only: chunks start at cluster starts when the
    clusters are at most twice the chunk size; a file of larger clusters is cut evenly."""
    path = tmp_path / "clustered.root"
    with uproot.recreate(path) as f:
        f.mktree("Events", {"x": "float64"})
        for n in (750, 750, 750, 300):  # one cluster (basket) per extend
            f["Events"].extend({"x": np.arange(n, dtype=np.float64)})
    assert tree_entries(str(path)).clusters == (0, 750, 1500, 2250, 2550)
    datasets = {"w": Dataset("w", "w", (str(path),), False, 1.0, None, None, None, None)}

    def ranges(chunksize):
        chunks, _ = plan(datasets, chunksize)
        return [(c.entrystart, c.entrystop) for c in chunks]

    assert ranges(500) == [(0, 750), (750, 1500), (1500, 2250), (2250, 2550)]
    assert ranges(1000) == [(0, 1500), (1500, 2550)]
    evenly = ranges(300)  # clusters of 750 > 2 x 300: equal chunks, as coffea cuts them
    assert len(evenly) == 8 and all(abs(b - a - 2550 / 8) < 2 for a, b in evenly)
    assert evenly[0][0] == 0 and evenly[-1][1] == 2550


@pytest.mark.slow
@pytest.mark.dask
def test_dask_equals_iterative(sample):
    from analysis.runner.cluster import dask_client

    yaml_path, corrections = sample
    datasets = load_datasets(yaml_path)
    # the smaller variation tensors keep the test quick; the fill is the same for all
    proc = WMassProcessor(datasets, corrections=corrections, variations=SOME)
    local = run(proc, datasets, executor="iterative", chunksize=250, progress=False)
    # on Dask the chunks return raw TensorFill accumulators, made into hist.Hist at the end
    proc = WMassProcessor(datasets, corrections=corrections, variations=SOME, hist_output=False)
    with dask_client(workers=2, quiet=True) as client:
        dask = run(proc, datasets, executor="dask", chunksize=250, client=client, progress=False)
        assert len(client.scheduler_info()["workers"]) == 2
    assert dask.executor == "dask" and dask.workers == 2
    _assert_same(local.output, dask.output)
    # the driver knows which worker merged which chunk: every chunk exactly once
    placed = [c for items in dask.placement.values() for c in items]
    assert sorted(placed, key=str) == sorted(dask.chunks, key=str)
    assert len(dask.chunks) == len({(c.filename, c.entrystart) for c in dask.chunks}) > 4
    assert set(local.output["wmunu"]["histograms"]) == {"nominal", *SOME}
    # what each chunk cost, timed in the thread that ran it, on both executors
    for result in (local, dask):
        timeline = result.timeline
        assert len(timeline.chunk_costs) == len(timeline.chunks) == len(dask.chunks)
        for (_, _, seconds, _), (cpu, faults, waited) in zip(
            timeline.chunks, timeline.chunk_costs, strict=True
        ):
            assert 0.0 <= waited <= seconds and 0.0 < cpu <= seconds + 0.01 and faults >= 0


@pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or not Path("/proc/thread-self/schedstat").exists(),
    reason="needs Linux's per-thread scheduler statistics",
)
def test_a_chunk_thread_that_shares_its_core_with_a_busy_process_waits_for_its_turns():
    """Two runnable threads on one core take turns by their weights: beside a busy process at
    nice 5 (weight 335 against 1024), what the chunk timing calls the wait for a core is about a
    quarter of the wall time, its CPU three quarters, and the two add up to the wall."""
    from analysis.runner.execute import _thread_waited

    mine = os.sched_getaffinity(0)
    core = min(mine)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.sched_setaffinity(busy.pid, {core})
        os.setpriority(os.PRIO_PROCESS, busy.pid, 5)
        os.sched_setaffinity(0, {core})  # this thread only
        time.sleep(0.2)
        waited0, cpu0, t0 = _thread_waited(), time.thread_time(), time.perf_counter()
        while time.perf_counter() - t0 < 1.0:
            pass
        wall = time.perf_counter() - t0
        waited, cpu = _thread_waited() - waited0, time.thread_time() - cpu0
    finally:
        os.sched_setaffinity(0, mine)
        busy.kill()
        busy.wait()
    assert 0.1 < waited / wall < 0.4, (waited, cpu, wall)
    assert cpu / wall > 0.6, (waited, cpu, wall)
    assert abs(cpu + waited - wall) < 0.1 * wall, (waited, cpu, wall)


def test_file_level_fill_equals_reference_through_hists_h5(sample, tmp_path):
    """Several files, several chunks each, merged, written to hists.h5 and read back: equal to
    a per-event Python loop over plain uproot arrays filling one hist per variation."""
    yaml_path, corrections = sample
    datasets = load_datasets(yaml_path)
    proc = WMassProcessor(
        datasets, corrections=corrections, variations=VARIATIONS, hist_output=False
    )
    result = run(proc, datasets, executor="iterative", chunksize=170, progress=False)
    content, _ = to_histograms(result, datasets)
    path = write_histograms(tmp_path / "hists.h5", content, {"command": "test"})
    back = read_histograms(path)
    truth = h3.truth_factory.tiny_truth()
    for name, ds in datasets.items():
        rows = []
        for f in ds.files:
            ref = reference.Reference(f, corrections, truth, ds.is_data)
            ev = ref.ev
            for i in range(len(ev["event"])):
                sel, mus = ref.select(i, 1)
                if sel is None:
                    continue
                if ds.is_data and int(ev["luminosityBlock"][i]) != 1:
                    continue  # the golden JSON certifies ls 1 only
                (m,) = sel
                w, var = ref.weight(i, sel, mus, 0)

                def values(pt, m=m, i=i, ev=ev):
                    mt = reference._mt(
                        pt, m["phi"], float(ev["MET_pt"][i]), float(ev["MET_phi"][i])
                    )
                    return (pt, m["eta"], m["q"], m["iso"] < reference.ISO, mt)

                shapes = {k: values(p[0]) for k, p in ref.scale_shifts(sel).items()}
                rows.append((values(m["pt"]), w, var, shapes))
        got = back[name]
        names = () if ds.is_data else VARIATIONS
        labels = {n: list(got.histograms[n].axes[-1]) for n in names}
        ref_hists = reference._reference_fill(proc, rows, labels)
        reference._compare({"histograms": got.histograms}, ref_hists)
        assert got.events_selected == int(ref_hists["nominal"].sum().value) if ds.is_data else True
        assert len(got.chunks) >= 3 and got.files_processed == sorted(ds.files)


def test_bad_file_is_named_or_recorded(sample, tmp_path):
    yaml_path, _ = sample
    datasets = load_datasets(yaml_path)
    bad = tmp_path / "broken.root"
    bad.write_bytes(Path(datasets["wmunu"].files[0]).read_bytes()[:5000])
    from dataclasses import replace

    broken = {
        **datasets,
        "wmunu": replace(datasets["wmunu"], files=(*datasets["wmunu"].files, str(bad))),
    }
    with pytest.raises(BadInputFile) as info:
        run(WMassProcessor(variations=False), broken, executor="iterative", progress=False)
    assert info.value.path == str(bad)
    result = run(
        WMassProcessor(variations=False),
        broken,
        executor="iterative",
        progress=False,
        skip_bad_files=True,
    )
    assert [f["file"] for f in result.files_failed["wmunu"]] == [str(bad)]
    assert "truncated" in result.files_failed["wmunu"][0]["error"]  # the header says longer
    assert result.output["wmunu"]["events_read"] == 2 * 400
    content, _ = to_histograms(result, broken)
    assert content["wmunu"].files_processed == sorted(datasets["wmunu"].files)


# -- every recovery loop is bounded (issue 14) ---------------------------------------------------


def _count_chunk(processor, item):
    """Stand-in for reading a chunk: its dataset's entry counts its events."""
    return {item.dataset: {"events": len(item)}}


def _always_restarted(run_id):
    """Stand-in for a worker that restarts before every harvest: its accumulator is gone."""
    ex = importlib.import_module("analysis.runner.execute")  # the package exports execute()
    with ex._LOCK:
        ex._RUNS.pop(run_id, None)
    return []


def _harvest_breaks(run_id):
    raise RuntimeError("cannot pickle the accumulator")


@pytest.fixture(scope="module")
def tiny_client():
    from distributed import Client

    with loopback_cluster(protocol="tcp://") as cluster, Client(cluster) as client:
        yield client


def _tiny_ledger():
    from coffea.processor.executor import WorkItem

    from analysis.runner.ledger import ChunkLedger

    return ChunkLedger(
        [WorkItem("ds", "f.root", "Events", a, a + 10, "u") for a in range(0, 30, 10)]
    )


@pytest.mark.dask
def test_dask_execute_with_a_stand_in_chunk_counts_each_chunk_once(tiny_client, monkeypatch):
    ex = importlib.import_module("analysis.runner.execute")  # the package exports execute()

    monkeypatch.setattr(ex, "process_chunk", _count_chunk)
    ledger = ex.execute(_tiny_ledger(), object(), client=tiny_client, say=lambda *_: None)
    assert ledger.total == {"ds": {"events": 30}} and ledger.losses == [0, 0, 0]


@pytest.mark.dask
def test_a_chunk_lost_again_and_again_stops_with_a_named_error(tiny_client, monkeypatch):
    ex = importlib.import_module("analysis.runner.execute")  # the package exports execute()
    from processors.errors import RetryLimitExceeded

    monkeypatch.setattr(ex, "process_chunk", _count_chunk)
    monkeypatch.setattr(ex, "_pop_run", _always_restarted)
    ledger = _tiny_ledger()
    with pytest.raises(RetryLimitExceeded, match=r"chunk ds:f\.root\[0:10\].*lost 3 times") as info:
        ex.execute(ledger, object(), client=tiny_client, max_losses=2, say=lambda *_: None)
    assert info.value.attempts == 3 and max(ledger.losses) == 3
    assert tiny_client.run(ex.held_chunks) == {w: 0 for w in tiny_client.nthreads()}


@pytest.mark.dask
def test_a_live_worker_whose_harvest_fails_is_not_called_lost(tiny_client, monkeypatch):
    ex = importlib.import_module("analysis.runner.execute")  # the package exports execute()
    from processors.errors import RetryLimitExceeded

    monkeypatch.setattr(ex, "process_chunk", _count_chunk)
    monkeypatch.setattr(ex, "_pop_run", _harvest_breaks)
    monkeypatch.setattr(ex, "HARVEST_RETRY_DELAY", 0.05)
    ledger = _tiny_ledger()
    with pytest.raises(RetryLimitExceeded, match="harvest of worker .*cannot pickle") as info:
        ex.execute(ledger, object(), client=tiny_client, say=lambda *_: None)
    assert info.value.attempts == ex.MAX_HARVEST_FAILURES
    assert ledger.losses == [0, 0, 0] and ledger.stats.redone == 0  # nothing redone blindly


def test_ledger_counts_losses_only_for_lost_output():
    ledger = _tiny_ledger()
    for i in ledger.todo():
        ledger.reported(i, ledger.start(i)[0], "w1")
    assert ledger.worker_lost("w1") == 3 and ledger.losses == [1, 1, 1]
    for i in ledger.todo():
        ledger.reported(i, ledger.start(i)[0], "w2")
    assert ledger.harvested("w2", seen=[0, 1]) == 1 and ledger.losses == [1, 1, 2]
    ledger.file_failed("ds", "f.root", "broken")  # a reset is not a loss
    assert ledger.losses == [1, 1, 2]
