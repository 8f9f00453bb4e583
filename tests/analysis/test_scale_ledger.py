"""The chunk ledger counts every chunk exactly once through the races a cluster produces:
a task recomputed by Dask after its result was lost, a stale report, a restarted worker, a
file failing after its dataset was partly merged, a resumed checkpoint."""

from __future__ import annotations

from analysis.runner.ledger import DONE, FAILED, TODO, ChunkLedger

CHUNKS = [
    ("w", "a.root", 0, 10),
    ("w", "a.root", 10, 20),
    ("w", "b.root", 0, 5),
    ("z", "c.root", 0, 7),
]


def output(*indices: int) -> dict:
    """What a worker accumulator holds after processing ``indices``: events and chunk sets."""
    out: dict = {}
    for i in indices:
        ds, f, a, b = CHUNKS[i]
        entry = out.setdefault(ds, {"events_read": 0, "chunks": set()})
        entry["events_read"] += b - a
        entry["chunks"].add((f, a, b))
    return out


def ids(ledger: ChunkLedger, *indices: int) -> dict:
    d: dict = {}
    for i in indices:
        d.setdefault(CHUNKS[i][0], []).append((i, ledger.attempt[i]))
    return d


def run_on(ledger: ChunkLedger, worker: str, *indices: int) -> None:
    for i in indices:
        attempt, _ = ledger.start(i)
        assert ledger.reported(i, attempt, worker)


def assert_each_chunk_once(ledger: ChunkLedger, skip=()) -> None:
    assert ledger.finished
    for ds in ("w", "z"):
        want = [c for k, c in enumerate(CHUNKS) if c[0] == ds and k not in skip]
        got = ledger.total.get(ds, {"events_read": 0, "chunks": set()})
        assert got["chunks"] == {(f, a, b) for _, f, a, b in want}
        assert got["events_read"] == sum(b - a for *_, a, b in want)


def test_a_chunk_in_two_accumulators_is_counted_once():
    ledger = ChunkLedger(CHUNKS)
    run_on(ledger, "A", 0, 1, 2, 3)
    ledger.merge("A", 0, output(0, 1, 2, 3), ids(ledger, 0, 1, 2, 3))
    # worker B got chunk 1 again (Dask recomputed a result it thought lost), plus nothing new
    ledger.merge("B", 0, output(1), {"w": [(1, 1)]})
    assert ledger.stats.dropped_entries == 1
    assert_each_chunk_once(ledger)


def test_dropped_entry_redoes_only_its_own_chunks():
    ledger = ChunkLedger(CHUNKS)
    run_on(ledger, "A", 0)
    run_on(ledger, "B", 1, 2)
    ledger.merge("A", 0, output(0), ids(ledger, 0))
    # B's accumulator repeats chunk 0 (a duplicate): its whole "w" entry is dropped
    ledger.merge("B", 0, output(0, 1, 2), {"w": [(0, 1), (1, 1), (2, 1)]})
    assert [ledger.state[i] for i in (0, 1, 2)] == [DONE, TODO, TODO]
    run_on(ledger, "A", 1, 2, 3)
    ledger.merge("A", 0, output(1, 2, 3), ids(ledger, 1, 2, 3))
    assert ledger.stats.redone == 2
    assert_each_chunk_once(ledger)


def test_stale_report_and_restarted_worker():
    ledger = ChunkLedger(CHUNKS)
    a0, _ = ledger.start(0)
    ledger.requeue(0)  # e.g. its worker was reported lost
    a1, _ = ledger.start(0)
    assert not ledger.reported(0, a0, "A")  # the old attempt does not count
    assert ledger.reported(0, a1, "B")
    run_on(ledger, "B", 1, 2, 3)
    # B was restarted in place: its accumulator is empty at the harvest
    ledger.harvested("B", seen=[])
    assert ledger.todo() == [0, 1, 2, 3]
    run_on(ledger, "C", 0, 1, 2, 3)
    ledger.merge("C", 0, output(0, 1, 2, 3), ids(ledger, 0, 1, 2, 3))
    assert_each_chunk_once(ledger)


def test_worker_lost_requeues_exactly_what_it_held():
    ledger = ChunkLedger(CHUNKS)
    run_on(ledger, "A", 0, 1)
    run_on(ledger, "B", 2, 3)
    assert ledger.worker_lost("A") == 2
    assert ledger.todo() == [0, 1]
    run_on(ledger, "B", 0, 1)
    ledger.merge("B", 0, output(2, 3, 0, 1), ids(ledger, 2, 3, 0, 1))
    assert ledger.stats.workers_lost == ["A"]
    assert_each_chunk_once(ledger)


def test_file_failing_after_its_dataset_was_merged_resets_the_dataset_only():
    ledger = ChunkLedger(CHUNKS)
    run_on(ledger, "A", 0, 3)
    ledger.merge("A", 0, output(0, 3), ids(ledger, 0, 3))
    run_on(ledger, "A", 1)  # held in the old epoch's accumulator
    ledger.start(2)
    ledger.file_failed("w", "b.root", "bad input file b.root: truncated")
    assert ledger.state[2] == FAILED and "w" not in ledger.total and "z" in ledger.total
    # the old accumulator (epoch 0) still arrives: its "w" entry no longer counts
    ledger.merge("A", 0, output(1), {"w": [(1, 1)]})
    assert ledger.todo() == [0, 1]
    run_on(ledger, "A", 0, 1)
    ledger.merge("A", ledger.epoch, output(0, 1), ids(ledger, 0, 1))
    assert ledger.files_failed == {"w": {"b.root": "bad input file b.root: truncated"}}
    assert_each_chunk_once(ledger, skip=(2,))


def test_restore_from_a_checkpoint_continues_with_the_rest():
    done = ChunkLedger(CHUNKS)
    run_on(done, "A", 0, 3)
    done.merge("A", 0, output(0, 3), ids(done, 0, 3))
    resumed = ChunkLedger(CHUNKS)
    resumed.restore(done.total, [0, 3], {})
    assert resumed.todo() == [1, 2]
    run_on(resumed, "A", 1, 2)
    resumed.merge("A", 0, output(1, 2), ids(resumed, 1, 2))
    assert_each_chunk_once(resumed)
