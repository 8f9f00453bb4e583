"""What the histmaker does in one process to start fast (the demo's step, issue 13): the files
``--executor auto`` counted are not opened again to be planned, the heap of the imports is kept
out of the full garbage collections while the command runs, the memory its chunks free is
kept for the next chunk, and the numba kernels are loaded on a thread while the run is
prepared. None of it may change what is computed."""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import threading

import pytest

from analysis import heap, warmstart
from analysis import histmaker as histmaker_module
from analysis.datasets import load_datasets
from analysis.histmaker import histmaker
from analysis.io import read_histograms
from analysis.runner.run import choose_executor, plan

# the module, not the function ``analysis.runner.run`` that its package re-exports
run_module = importlib.import_module("analysis.runner.run")
execute_module = importlib.import_module("analysis.runner.execute")


@pytest.fixture(scope="module")
def sample(small_fileset):
    return small_fileset


@pytest.fixture
def opened(monkeypatch):
    """The files whose entries were read (each time one is opened for it)."""
    seen: list[str] = []
    real = run_module.tree_entries

    def counting(path, treename="Events", **kwargs):
        seen.append(path)
        return real(path, treename, **kwargs)

    monkeypatch.setattr(run_module, "tree_entries", counting)
    monkeypatch.setattr(run_module, "_COUNTED", {})
    return seen


def test_plan_takes_the_entries_auto_counted_once(sample, opened):
    datasets = load_datasets(sample[0])
    files = [f for ds in datasets.values() for f in ds.files]
    fresh, _ = plan(datasets)  # nothing counted: each file opened
    assert sorted(opened) == sorted(files)
    opened.clear()
    assert choose_executor(datasets, workers=2)[0] == "iterative"
    assert sorted(opened) == sorted(files)
    opened.clear()
    chunks, _ = plan(datasets)
    assert opened == [] and chunks == fresh  # what auto counted, the same chunks
    plan(datasets)  # taken once: a later plan reads the files again
    assert sorted(opened) == sorted(files)


def test_a_file_changed_after_auto_counted_it_is_read_again(sample, opened):
    datasets = load_datasets(sample[0])
    choose_executor(datasets, workers=2)
    opened.clear()
    changed = next(iter(datasets.values())).files[0]
    st = os.stat(changed)
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    plan(datasets)
    assert opened == [changed]


def test_the_heap_of_the_imports_is_frozen_only_while_the_command_runs():
    if gc.get_freeze_count():
        pytest.skip("something in this process froze the heap already")
    thresholds = gc.get_threshold()
    with warmstart.young_heap():
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] >= thresholds[0]
    assert gc.get_freeze_count() == 0 and gc.get_threshold() == thresholds
    gc.freeze()  # someone froze it before (the command at its exit): it stays frozen
    try:
        before = gc.get_freeze_count()
        with warmstart.young_heap():
            pass
        assert gc.get_freeze_count() >= before > 0 and gc.get_threshold() == thresholds
    finally:
        gc.unfreeze()


def test_one_process_loads_the_kernels_on_a_thread_and_fills_the_same(
    sample, tmp_path, monkeypatch
):
    yaml_path, corrections = sample
    started: list[threading.Thread] = []

    def recording() -> threading.Thread:
        started.append(warmstart.warm_kernels_in_background())
        return started[-1]

    monkeypatch.setattr(histmaker_module, "warm_kernels_in_background", recording)
    options = dict(corrections=corrections, variations=["pdf", "effStat"], progress=False)
    frozen = gc.get_freeze_count()
    histmaker("wmass", yaml_path, tmp_path / "a.h5", executor="iterative", **options)
    assert len(started) == 1 and started[0].daemon
    started[0].join(timeout=120)
    assert not started[0].is_alive()
    assert frozen or gc.get_freeze_count() == 0  # the command gave the heap back

    def nothing() -> threading.Thread:  # no warm-up: a kernel loads when first called
        thread = threading.Thread(target=lambda: None)
        thread.start()
        return thread

    monkeypatch.setattr(histmaker_module, "warm_kernels_in_background", nothing)
    histmaker("wmass", yaml_path, tmp_path / "b.h5", executor="iterative", **options)
    a, b = read_histograms(tmp_path / "a.h5"), read_histograms(tmp_path / "b.h5")
    assert list(a.datasets) == list(b.datasets)
    for name in a.datasets:
        assert set(a[name].histograms) == set(b[name].histograms)
        for h in a[name].histograms:
            assert a[name].histograms[h] == b[name].histograms[h], (name, h)


def test_chunks_reuse_freed_memory_and_one_process_hands_it_back_when_its_run_ends(
    sample, tmp_path, monkeypatch
):
    yaml_path, corrections = sample
    calls: list[str] = []

    @contextlib.contextmanager
    def recording_chunk_heap():
        calls.append("chunk")
        with heap.chunk_heap() as kept:
            yield kept

    def recording_release() -> bool:
        calls.append("release")
        return heap.release_freed_memory()

    monkeypatch.setattr(execute_module, "chunk_heap", recording_chunk_heap)
    monkeypatch.setattr(execute_module, "release_freed_memory", recording_release)
    options = dict(corrections=corrections, variations=["pdf"], progress=False)
    result = histmaker("wmass", yaml_path, tmp_path / "a.h5", executor="iterative", **options)[2]
    # every chunk ran under it, and the memory went back once, after the last one
    assert calls == ["chunk"] * len(result.chunks) + ["release"]
    calls.clear()
    histmaker("wmass", yaml_path, tmp_path / "b.h5", executor="dask", workers=1, **options)
    assert calls == []  # the driver ran no chunk, and kept nothing to hand back
