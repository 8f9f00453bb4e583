"""Running on a real Dask cluster started from the command line (``dask scheduler`` + two
``dask worker`` processes): a worker SIGKILLed mid-run has exactly its chunks redone, a file
that breaks half-way through a dataset is given up with the dataset normalised without it, and
the histograms are those of an uninterrupted run in this process, every chunk counted once."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from analysis.datasets import load_datasets
from analysis.runner.badfiles import ChunkFailed
from analysis.runner.execute import held_chunks
from analysis.runner.run import run
from processors import WMassProcessor
from processors.errors import MissingBranch
from tests.analysis import scale_samples as h5
from tests.processors import synthetic as synthetic

HERE = Path(__file__).resolve().parent
CHUNK = 300


pytestmark = [pytest.mark.dask, pytest.mark.slow]


def _processor(sample: Path, datasets):
    return WMassProcessor(
        datasets, corrections=str(sample.parent / "corrections.json"), variations=("pileup",)
    )


def _planned(result, name):
    return {(c.filename, c.entrystart, c.entrystop) for c in result.chunks if c.dataset == name}


def test_file_failing_mid_dataset_is_skipped_and_the_dataset_redone(
    generated_sample, cli_cluster, tmp_path
):
    """The broken file sits between two good ones: the good chunks of its dataset merged
    before it failed are dropped and redone, so the result equals a run without it."""
    bad = synthetic.write_sample(tmp_path / "no_met.root", 300, seed=3, drop=("MET_pt",))
    good = load_datasets(h5.fileset(generated_sample, tmp_path / "good.yaml"))
    files = list(good["wmunu"].files)
    with_bad = h5.fileset(generated_sample, tmp_path / "bad.yaml", extra={"wmunu": [str(bad)]})
    doc = h5.yaml.safe_load(with_bad.read_text())
    doc["datasets"]["wmunu"]["files"] = [files[0], str(bad), files[1]]
    with_bad.write_text(h5.yaml.safe_dump(doc))
    datasets = load_datasets(with_bad)

    reference = run(
        _processor(generated_sample, good),
        good,
        executor="iterative",
        chunksize=CHUNK,
        progress=False,
    )

    def on_the_cluster(**options):
        proc = _processor(generated_sample, datasets)
        client = cli_cluster.client
        return run(proc, datasets, executor="dask", client=client, chunksize=CHUNK, **options)

    with pytest.raises(MissingBranch, match=r"missing branch 'MET_pt' in .*no_met\.root"):
        on_the_cluster(progress=False)
    result = on_the_cluster(progress=False, skip_bad_files=True)
    [failed] = result.files_failed["wmunu"]
    assert failed["file"] == str(bad)
    assert failed["error"].startswith(f"missing branch 'MET_pt' in {bad}")
    assert "PFMET_pt" in failed["error"]  # the v15 name was looked for too
    assert result.stats.resets == 1
    h5.assert_same_output(result.output, reference.output)
    assert result.output["wmunu"]["sumw"] == pytest.approx(h5.sum_genweight(files), rel=1e-12)


class _FailsOnSecondFile:
    """A processor whose chunks of ``nano_1.root`` raise: a bug, not a bad file."""

    def __init__(self, inner):
        self.inner = inner

    def process(self, events):
        if str(events.metadata["filename"]).endswith("nano_1.root"):
            raise ZeroDivisionError("the analysis divided by zero")
        return self.inner.process(events)

    def postprocess(self, acc):
        return acc


def test_a_chunk_that_keeps_failing_stops_the_run_naming_chunk_file_and_error(
    generated_sample, tmp_path
):
    datasets = load_datasets(
        h5.fileset(generated_sample, tmp_path / "datasets.yaml", keep=("wmunu",))
    )
    proc = _FailsOnSecondFile(WMassProcessor(datasets, variations=False))
    with pytest.raises(ChunkFailed) as info:
        run(proc, datasets, executor="iterative", chunksize=CHUNK, progress=False)
    err = info.value
    assert err.filename == datasets["wmunu"].files[1]
    assert err.chunk.startswith(f"chunk wmunu:{err.filename}[0:")  # its first chunk
    assert "ZeroDivisionError: the analysis divided by zero" in str(err)


def test_worker_dying_while_the_accumulators_are_added_up_loses_nothing(generated_sample, tmp_path):
    """The harvest adds the workers' accumulators pairwise on the workers; the worker that runs
    the first addition dies as it starts (once). The chunks of that harvest are redone and the
    histograms equal an uninterrupted run, every chunk counted once."""
    from distributed.diagnostics.plugin import WorkerPlugin

    marker = tmp_path / "killed-once"

    class DieOnFirstAddition(WorkerPlugin):  # local: pickled by value for the workers
        def transition(self, key, start, finish, **kwargs):
            adding = str(key).startswith("wmass-add") and finish == "executing"
            if adding and not marker.exists():
                marker.write_text(str(key))
                os._exit(1)

    datasets = load_datasets(h5.fileset(generated_sample, tmp_path / "datasets.yaml"))
    proc = _processor(generated_sample, datasets)
    reference = run(proc, datasets, executor="iterative", chunksize=CHUNK, progress=False)
    (tmp_path / "cluster").mkdir()
    three = h5.CommandLineCluster(tmp_path / "cluster", workers=3)
    try:
        three.client.register_plugin(DieOnFirstAddition(), name="die-on-first-addition")
        result = run(
            proc, datasets, executor="dask", client=three.client, chunksize=CHUNK, progress=False
        )
    finally:
        three.close()
    assert marker.exists(), "no addition ran on a worker: the harvest was not a tree"
    assert len(result.stats.workers_lost) == 1 and result.stats.redone >= 1
    for name in datasets:
        assert result.output[name]["chunks"] == _planned(result, name)
    h5.assert_same_output(result.output, reference.output)


def test_the_harvest_adds_a_received_accumulator_entry_by_entry(
    generated_sample, cli_cluster, tmp_path
):
    """The efficiency eigen-variations are zero outside their eta bin: a worker's accumulator
    travels as its nonzero entries, and the addition on the worker that holds the other operand
    adds those entries into it. No worker makes a received accumulator dense (only the driver
    does, to write it), and the sums are those of one process."""
    from distributed.diagnostics.plugin import WorkerPlugin

    class CountDense(WorkerPlugin):  # local: pickled by value for the workers
        """Counts the mostly-zero arrays made dense on the worker."""

        name = "count-dense"

        def setup(self, worker):
            from processors.fill import SparseArray

            self.original = original = SparseArray.dense
            worker.dense_made = 0

            def dense(array):
                worker.dense_made += 1
                return original(array)

            SparseArray.dense = dense

        def teardown(self, worker):
            from processors.fill import SparseArray

            SparseArray.dense = self.original

    datasets = load_datasets(h5.fileset(generated_sample, tmp_path / "datasets.yaml"))
    proc = WMassProcessor(
        datasets,
        corrections=str(generated_sample.parent / "corrections.json"),
        variations=("effStat",),
    )
    reference = run(proc, datasets, executor="iterative", chunksize=CHUNK, progress=False)
    client = cli_cluster.client
    client.register_plugin(CountDense())
    try:
        result = run(
            proc, datasets, executor="dask", client=client, chunksize=CHUNK, progress=False
        )
        made = client.run(lambda dask_worker: dask_worker.dense_made)
    finally:
        client.unregister_worker_plugin("count-dense")
    assert len({chunk[0] for chunk in result.timeline.chunks}) == 2, "both workers held chunks"
    assert list(made.values()) == [0, 0], made
    h5.assert_same_output(result.output, reference.output)


def test_worker_killed_mid_run_has_its_chunks_redone_once(generated_sample, cli_cluster, tmp_path):
    datasets = load_datasets(h5.fileset(generated_sample, tmp_path / "datasets.yaml"))
    proc = _processor(generated_sample, datasets)
    reference = run(proc, datasets, executor="iterative", chunksize=CHUNK, progress=False)

    finished = threading.Event()
    killed: dict = {}

    def kill_a_worker_holding_chunks():
        while not finished.is_set():
            held = cli_cluster.client.run(held_chunks)
            for address, n in held.items():
                if n >= 2:
                    killed.update(address=address, held=n)
                    cli_cluster.kill(address)
                    return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_a_worker_holding_chunks)
    watcher.start()
    try:
        result = run(
            proc,
            datasets,
            executor="dask",
            client=cli_cluster.client,
            chunksize=CHUNK,
            progress=False,
        )
    finally:
        finished.set()
        watcher.join()

    assert killed, "the run ended before a worker held two chunks: make it longer"
    assert result.stats.workers_lost == [killed["address"]]
    # its accumulator was lost with it: the chunks it held were processed again (those the
    # driver had heard of by the ledger, those it had not by Dask's own rescheduling)
    assert result.stats.redone >= 1
    survivor = set(cli_cluster.workers)
    assert set(result.placement) == survivor
    for name in datasets:
        assert result.output[name]["chunks"] == _planned(result, name)
        assert result.output[name]["events_read"] == h5.n_events(list(datasets[name].files))
    h5.assert_same_output(result.output, reference.output)
    # nothing of the run is left on the surviving worker
    assert sum(cli_cluster.client.run(held_chunks).values()) == 0
