"""Exactly-once accounting of chunks: where each chunk is, and when its output may be counted.

The histmaker's partial results live in **accumulators on the workers** (one per worker, see
:mod:`analysis.runner.execute`); the driver only learns that "chunk 17 was added on worker A".
Workers die, tasks are recomputed, files turn out to be broken half-way, so the driver keeps a
ledger with one state per chunk::

    todo -> running -> held (by worker W) -> done (merged into the driver's total)
                  \\-> failed (its file was given up, --skip-bad-files)

and merges a worker's accumulator into the total only when that is safe. The rules:

- A harvested accumulator says which chunks it contains, per dataset. Its dataset entry is
  merged only if none of those chunks is already done or failed, none appears twice, and the
  entry is not older than the dataset's last reset (its *epoch*). Otherwise the entry is
  dropped whole and its chunks go back to ``todo``: output is never counted twice, and a
  dropped entry only costs recomputation.
- A chunk the ledger believed held by W but absent from W's accumulator (W was restarted) or
  held by a worker that left the cluster goes back to ``todo``. Each such loss is counted per
  chunk (``losses``), so the executor can bound how often one chunk is redone.
- When a file fails (``--skip-bad-files``) its dataset is reset: the dataset's entry is removed
  from the total, its other chunks are redone, and accumulators made before the reset no
  longer count for that dataset. The histograms, sum of weights and luminosity are therefore
  exactly those of the files processed.
- A report from an older attempt of a chunk (a task Dask retried, or one that was requeued) is
  ignored; only the current attempt moves a chunk from ``running`` to ``held``.

>>> ledger = ChunkLedger([("ds", "a.root", 0, 10), ("ds", "a.root", 10, 20)])
>>> [(i, ledger.start(i)) for i in ledger.todo()]
[(0, (1, 0)), (1, (1, 0))]
>>> ledger.reported(0, 1, "w1"), ledger.reported(1, 1, "w1")
(True, True)
>>> ledger.merge("w1", 0, {"ds": {"n": 20}}, {"ds": [(0, 1), (1, 1)]})
>>> ledger.finished, ledger.total
(True, {'ds': {'n': 20}})
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from coffea.processor.accumulator import iadd

from analysis.runner.chunks import chunk_key

__all__ = ["ChunkLedger", "LedgerStats"]

TODO, RUNNING, HELD, DONE, FAILED = "todo", "running", "held", "done", "failed"


@dataclass
class LedgerStats:
    """What recovery cost: chunks redone, accumulator entries dropped, workers lost."""

    submitted: int = 0
    redone: int = 0
    dropped_entries: int = 0
    workers_lost: list[str] = field(default_factory=list)
    resets: int = 0


class ChunkLedger:
    """The state of every chunk of a run (see the module docstring).

    ``chunks`` are coffea ``WorkItem`` s or ``(dataset, file, start, stop)`` tuples; chunks are
    referred to by their index.
    """

    def __init__(self, chunks: Sequence[Sequence[Any]]) -> None:
        self.chunks = list(chunks)
        n = len(self.chunks)
        self.state: list[str] = [TODO] * n
        self.holder: list[Hashable | None] = [None] * n
        #: the worker whose accumulator brought each done chunk into the total
        self.merged_by: list[Hashable | None] = [None] * n
        self.attempt: list[int] = [0] * n
        #: how often each chunk's output was lost (worker gone, restarted, task cancelled)
        self.losses: list[int] = [0] * n
        self.epoch = 0
        self.dataset_epoch: dict[str, int] = defaultdict(int)
        self.total: dict[str, Any] = {}
        #: dataset -> {file: reason}
        self.files_failed: dict[str, dict[str, str]] = defaultdict(dict)
        self.stats = LedgerStats()
        self._by_file: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._by_dataset: dict[str, list[int]] = defaultdict(list)
        for i, c in enumerate(self.chunks):
            dataset, filename, _, _ = chunk_key(c)
            self._by_file[(dataset, filename)].append(i)
            self._by_dataset[dataset].append(i)

    # -- queries --------------------------------------------------------------------------------

    def todo(self) -> list[int]:
        """Chunks waiting to be (re)submitted."""
        return [i for i, s in enumerate(self.state) if s == TODO]

    def held_by(self, worker: Hashable) -> list[int]:
        return [
            i
            for i, (s, h) in enumerate(zip(self.state, self.holder, strict=True))
            if s == HELD and h == worker
        ]

    def holders(self) -> set[Hashable]:
        """Workers whose accumulators hold chunks not yet merged."""
        return {h for s, h in zip(self.state, self.holder, strict=True) if s == HELD}

    def done_keys(self) -> list[tuple[str, str, int, int]]:
        """``(dataset, file, start, stop)`` of every done chunk (what a checkpoint stores)."""
        return [chunk_key(c) for c, s in zip(self.chunks, self.state, strict=True) if s == DONE]

    def placement(self) -> dict[Hashable, list[Any]]:
        """Worker -> the done chunks whose output came from its accumulator."""
        out: dict[Hashable, list[Any]] = defaultdict(list)
        for c, s, w in zip(self.chunks, self.state, self.merged_by, strict=True):
            if s == DONE:
                out[w].append(c)
        return dict(out)

    def count(self, state: str) -> int:
        return sum(1 for s in self.state if s == state)

    @property
    def finished(self) -> bool:
        """Every chunk merged into the total or given up with its file."""
        return all(s in (DONE, FAILED) for s in self.state)

    @property
    def quiet(self) -> bool:
        """Nothing to submit and nothing running: only harvesting is left."""
        return all(s in (HELD, DONE, FAILED) for s in self.state)

    # -- transitions ----------------------------------------------------------------------------

    def start(self, i: int) -> tuple[int, int]:
        """Chunk ``i`` is submitted: returns ``(attempt, epoch)`` to tag the task with."""
        if self.state[i] != TODO:
            raise RuntimeError(f"chunk {self.chunks[i]} is {self.state[i]}, not todo")
        if self.attempt[i] > 0:
            self.stats.redone += 1
        self.attempt[i] += 1
        self.state[i] = RUNNING
        self.stats.submitted += 1
        return self.attempt[i], self.epoch

    def reported(self, i: int, attempt: int, worker: Hashable) -> bool:
        """The task of attempt ``attempt`` added chunk ``i`` to ``worker``'s accumulator.

        Returns False (and changes nothing) for a stale attempt or a chunk already settled.
        """
        if self.state[i] != RUNNING or self.attempt[i] != attempt:
            return False
        self.state[i], self.holder[i] = HELD, worker
        return True

    def requeue(self, i: int, *, lost: bool = False) -> None:
        """Chunk ``i`` must be processed again (its output was dropped; ``lost``: it was lost
        to a failure, which counts in ``losses``)."""
        if self.state[i] in (HELD, RUNNING, DONE):
            self.state[i], self.holder[i] = TODO, None
            if lost:
                self.losses[i] += 1

    def worker_lost(self, worker: Hashable) -> int:
        """``worker`` left: the chunks its accumulator held are redone. Returns how many."""
        lost = self.held_by(worker)
        for i in lost:
            self.requeue(i, lost=True)
        if worker not in self.stats.workers_lost:
            self.stats.workers_lost.append(worker)
        return len(lost)

    def merge(
        self,
        worker: Hashable,
        epoch: int,
        accumulator: Mapping[str, Any] | None,
        chunk_ids: Mapping[str, Iterable[tuple[int, int]]],
    ) -> None:
        """Count a harvested accumulator of ``worker`` into the total, dataset entry by entry,
        where safe. ``epoch``: when its tasks were submitted; ``chunk_ids``: per dataset, the
        ``(chunk, attempt)`` pairs added to it. (:meth:`admit` then :meth:`add`.)"""
        accumulator = accumulator or {}
        for dataset in self.admit(worker, epoch, chunk_ids, accumulator):
            self.add({dataset: accumulator[dataset]})

    def admit(
        self,
        worker: Hashable,
        epoch: int,
        chunk_ids: Mapping[str, Iterable[tuple[int, int]]],
        present: Iterable[str],
    ) -> list[str]:
        """Decide which dataset entries of a harvested accumulator count, before its content
        has arrived: returns the datasets whose entries must be added to the total with
        :meth:`add` (their chunks are ``done`` from now on; :meth:`unadmit` takes them back if
        the content is lost on its way). The other entries are dropped and their chunks redone.
        ``present``: the datasets the accumulator has an entry for."""
        present = set(present)
        admitted = []
        for dataset, pairs in chunk_ids.items():
            pairs = [(int(i), int(a)) for i, a in pairs]
            counts = Counter(i for i, _ in pairs)
            safe = (
                dataset in present
                and epoch >= self.dataset_epoch[dataset]
                and all(n == 1 for n in counts.values())
                and all(self.state[i] not in (DONE, FAILED) for i in counts)
            )
            if safe:
                for i in counts:
                    self.state[i], self.holder[i], self.merged_by[i] = DONE, None, worker
                admitted.append(dataset)
                continue
            self.stats.dropped_entries += 1
            for i, attempt in pairs:
                if attempt != self.attempt[i]:
                    continue  # another attempt of this chunk is in flight or held elsewhere
                if self.state[i] == RUNNING:
                    # this attempt's output is dropped: its report must not count
                    self.attempt[i] += 1
                    self.state[i] = TODO
                elif self.state[i] == HELD and self.holder[i] == worker:
                    self.requeue(i)
        return admitted

    def add(self, entries: Mapping[str, Any]) -> None:
        """Add admitted dataset entries (see :meth:`admit`) to the total."""
        for dataset, entry in entries.items():
            if dataset in self.total:
                self.total[dataset] = iadd(self.total[dataset], entry)
            else:
                self.total[dataset] = entry

    def unadmit(self, chunks: Iterable[int]) -> int:
        """Admitted chunks whose content was lost before it reached the total (a worker died
        during the reduction) are redone; each counts as a loss. Returns how many."""
        lost = [i for i in chunks if self.state[i] == DONE]
        for i in lost:
            self.requeue(i, lost=True)
            self.merged_by[i] = None
        return len(lost)

    def harvested(self, worker: Hashable, seen: Iterable[int]) -> int:
        """After all of ``worker``'s accumulators were merged: chunks it was believed to hold
        but did not (a restarted worker) are redone. Returns how many."""
        seen = set(seen)
        lost = [i for i in self.held_by(worker) if i not in seen]
        for i in lost:
            self.requeue(i, lost=True)
        return len(lost)

    def file_failed(self, dataset: str, filename: str, reason: str) -> None:
        """Give up ``filename`` of ``dataset``: its chunks fail, the dataset is reset (its
        entry leaves the total, its other chunks are redone, older accumulators are void)."""
        self.files_failed[dataset][filename] = reason
        for i in self._by_file[(dataset, filename)]:
            self.state[i], self.holder[i] = FAILED, None
        self.epoch += 1
        self.dataset_epoch[dataset] = self.epoch
        self.stats.resets += 1
        self.total.pop(dataset, None)
        for i in self._by_dataset[dataset]:
            if self.state[i] == RUNNING:
                self.attempt[i] += 1  # its accumulator is void for this dataset now
                self.state[i] = TODO
            elif self.state[i] in (HELD, DONE):
                self.requeue(i)

    def restore(
        self,
        total: Mapping[str, Any],
        done: Iterable[int],
        failed: Mapping[str, Mapping[str, str]],
    ) -> None:
        """Start from a checkpoint: its total, the chunks in it and the files given up."""
        for dataset, files in failed.items():
            for filename, reason in files.items():
                self.files_failed[dataset][filename] = reason
                for i in self._by_file[(dataset, filename)]:
                    self.state[i] = FAILED
        for i in done:
            if self.state[i] == FAILED:
                raise RuntimeError(f"checkpoint lists chunk {self.chunks[i]} as done and failed")
            self.state[i] = DONE
        self.total = dict(total)
