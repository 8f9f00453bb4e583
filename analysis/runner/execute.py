"""Process a list of chunks exactly once, on Dask workers or in this process, surviving failures.

Each worker keeps **one accumulator per run in its own memory** and adds every chunk it
processes into it; a chunk task returns only ``{"worker", "events"}`` (or the file's error as a
value). Every ``checkpoint_interval`` seconds and at the end the driver *harvests* them: a task
pinned to each worker seals its accumulator, the driver admits from the small manifests what
may be counted, the workers add the admitted accumulators pairwise (a tree, worker to worker,
never through the scheduler) and the driver fetches the one sum (:func:`_harvest_dask`). So
histogram memory is about (workers + 2) x one output whatever the number of chunks, and the
driver receives one accumulator per harvest, not one per worker.

What can go wrong, and what happens (the bookkeeping is
:class:`analysis.runner.ledger.ChunkLedger`):

- a worker dies (SIGKILL, pre-emption, OOM): Dask reruns its running task elsewhere; the chunks
  its accumulator held are redone (the driver notices the worker left, or finds the chunks
  missing at the harvest). Nothing is counted twice: an accumulator that would repeat a chunk
  already counted is dropped and its chunks redone;
- a file is broken: see :mod:`analysis.runner.badfiles` (stop, or ``skip_bad_files``);
- a chunk fails for another reason after Dask's ``retries``: :class:`ChunkFailed`;
- every recovery is bounded: a chunk whose output is lost more than ``max_losses`` times
  (default :data:`MAX_CHUNK_LOSSES`), or a live worker whose accumulator cannot be harvested
  :data:`MAX_HARVEST_FAILURES` times in a row (retried after 1, 2, 4, ... seconds:
  :data:`HARVEST_RETRY_DELAY`, time for the scheduler to notice a worker that is gone), stops
  the run with
  :class:`~processors.errors.RetryLimitExceeded` naming the chunk or worker and the last error.
  Only a worker that has really left the cluster counts as lost: a harvest that fails while the
  worker is still there is not turned into "redo its chunks";
- the driver dies: after a harvest the total and the done chunks are written to a checkpoint
  (``on_harvest``), from which :func:`analysis.runner.run.run` resumes.

Accumulators of runs whose driver is gone (killed) are dropped from the workers when the next
run starts on the same cluster.

Why one module of ~610 lines: exactly-once accounting is one protocol -- the ledger's
admissions, the pinned seal of each worker's accumulator, the tree of additions and what a
lost worker undoes -- and its steps are only correct together; split, each half would need
the other's invariants.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coffea.processor.accumulator import iadd

from analysis import warmstart
from analysis.datasets import drop_kept_files
from analysis.heap import chunk_heap, release_freed_memory
from analysis.runner.badfiles import ChunkFailed, chunk_label, is_skippable
from analysis.runner.chunks import chunk_key, process_chunk
from analysis.runner.ledger import DONE, HELD, RUNNING, ChunkLedger
from processors.errors import RetryLimitExceeded, WMassError

__all__ = [
    "HARVEST_RETRY_DELAY",
    "MAX_CHUNK_LOSSES",
    "MAX_HARVEST_FAILURES",
    "Timeline",
    "execute",
    "harvest_local",
    "held_chunks",
]

#: how often one chunk's output may be lost (its worker died or restarted, its task was
#: cancelled) before the run stops with RetryLimitExceeded: ``execute(max_losses=...)``
MAX_CHUNK_LOSSES = 5
#: failed harvests in a row of a worker that is still in the cluster before the run stops
MAX_HARVEST_FAILURES = 5
#: seconds before the first retry of a failed harvest; doubled after each further failure
HARVEST_RETRY_DELAY = 1.0


@dataclass
class Timeline:
    """When the phases of a run happened (``time.time()`` stamps) and what each chunk cost, for
    profiles (``benchmarks/profile_histmaker.py``) and the histmaker's summary.

    ``chunks``: ``(worker, events, seconds, dataset)`` per chunk processed, timed on the worker
    (reading and processing, without scheduling); ``chunk_costs``: ``(cpu_seconds, faults,
    waited)`` of the same chunks in the same order: the CPU time of the thread that ran it, the
    page faults it took (new memory touched: on a virtual machine ~1-5 s per GB,
    ``docs/scaling.md``, twelfth pass) and the seconds it was ready to run but waited for a
    core that other threads held (:func:`_thread_waited`), ``None`` where a worker did not say;
    ``harvests``: ``(start, seconds)`` of each harvest.
    """

    started: float = field(default_factory=time.time)
    client_ready: float | None = None
    planned: float | None = None
    first_chunk: float | None = None
    processed: float | None = None
    finished: float | None = None
    chunks: list[tuple[str, int, float, str]] = field(default_factory=list)
    chunk_costs: list[tuple[float | None, int | None, float | None]] = field(default_factory=list)
    harvests: list[tuple[float, float]] = field(default_factory=list)
    #: set by the histmaker: histograms converted (postprocess, sums of weights, luminosity)
    #: and the output written
    converted: float | None = None
    written: float | None = None

    def chunk_done(
        self,
        worker: str,
        events: int,
        seconds: float,
        dataset: str = "",
        cpu: float | None = None,
        faults: int | None = None,
        waited: float | None = None,
    ) -> None:
        if self.first_chunk is None:
            self.first_chunk = time.time()
        self.chunks.append((str(worker), int(events), float(seconds), str(dataset)))
        self.chunk_costs.append((cpu, faults, waited))

    def harvest(self, fn: Callable[[], Any]) -> Any:
        """Run the harvest ``fn``, record when and how long, return what it returns."""
        t0 = time.time()
        try:
            return fn()
        finally:
            self.harvests.append((t0, time.time() - t0))


# -- worker side ---------------------------------------------------------------------------------

#: run id -> epoch -> [accumulator, {dataset: [(chunk, attempt)]}]
_RUNS: dict[str, dict[int, list[Any]]] = {}
#: run id -> id of the Dask client (driver) that owns it
_OWNERS: dict[str, str] = {}
#: runs that ended: a task of theirs still running when they ended adds nothing
_CLOSED: set[str] = set()
_LOCK = threading.Lock()


def _local(client: Any) -> bool:
    """Whether ``client``'s workers run on this machine, in a ``LocalCluster``."""
    from distributed import LocalCluster

    return isinstance(getattr(client, "cluster", None), LocalCluster)


def _worker_address() -> str:
    """This Dask worker's address, or ``local`` (the iterative executor: a process that has
    not imported distributed is no worker, and importing it would cost 0.15-0.3 s)."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return "local"
    try:
        return distributed.get_worker().address
    except ValueError:
        return "local"


def _process_into_worker(
    processor: Any, item: Any, run_id: str, owner: str, index: int, attempt: int, epoch: int
) -> dict[str, Any]:
    """Task: process chunk ``index`` and add it to this worker's accumulator of ``run_id``."""
    t0, cpu0, faults0, waited0 = (
        time.perf_counter(),
        time.thread_time(),
        _thread_faults(),
        _thread_waited(),
    )
    try:
        out = process_chunk(processor, item)
    except WMassError as err:
        return {"worker": _worker_address(), "error": err}
    with _LOCK:
        if run_id in _CLOSED:
            return {"worker": _worker_address(), "events": 0, "closed": True}
        _OWNERS[run_id] = owner
        slot = _RUNS.setdefault(run_id, {}).get(epoch)
        if slot is None:
            _RUNS[run_id][epoch] = [out, {item.dataset: [(index, attempt)]}]
        else:
            # the chunk's output is ours alone: a dataset's first chunk is taken as it is
            # (coffea's iadd would deep-copy it, ~0.08 s per dataset for ~100 MB)
            slot[0] = _add(slot[0], out)
            slot[1].setdefault(item.dataset, []).append((index, attempt))
    return {
        "worker": _worker_address(),
        "events": len(item),
        "seconds": time.perf_counter() - t0,
        "cpu": time.thread_time() - cpu0,
        "faults": None if faults0 is None else (_thread_faults() or 0) - faults0,
        "waited": None if waited0 is None else (_thread_waited() or 0.0) - waited0,
    }


def _thread_waited(schedstat: str = "/proc/thread-self/schedstat") -> float | None:
    """Seconds this thread has so far been ready to run but waited for a core that other
    threads held (the scheduler's run-queue delay, the second field of Linux's ``schedstat``);
    None where the system does not say. A chunk's wall time is its thread's CPU time, this
    wait, and the rest (reading from disk, waiting for a lock or the GIL; on a virtual machine
    also the time the hypervisor gave the core to another guest). On a machine with as many
    cores as busy threads the wait is ~0; two workers and their driver on two cores wait for
    each other (``docs/scaling.md``, fifteenth pass).

    >>> waited = _thread_waited()
    >>> waited is None or waited >= 0.0
    True
    """
    try:
        with open(schedstat) as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def _thread_faults() -> int | None:
    """Page faults of this thread so far (minor: memory touched for the first time); None
    where the system does not count them per thread (Linux does)."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    except (ImportError, AttributeError, OSError):
        return None


def _pop_run(run_id: str) -> list[tuple[int, Any, dict[str, list[tuple[int, int]]]]]:
    """Take this worker's accumulators of ``run_id``: ``[(epoch, accumulator, chunk ids)]``."""
    with _LOCK:
        run = _RUNS.pop(run_id, {})
        _OWNERS.pop(run_id, None)
    return [(epoch, acc, ids) for epoch, (acc, ids) in sorted(run.items())]


def _close_run(run_id: str) -> None:
    """The run ended (or failed): drop its accumulators, ignore its late tasks."""
    with _LOCK:
        _RUNS.pop(run_id, None)
        _OWNERS.pop(run_id, None)
        _CLOSED.add(run_id)


def _end_run(run_id: str) -> None:
    """On a worker, when the run ended (or failed): :func:`_close_run`, and the freed memory its
    chunks kept handed back (a worker keeps its switches for the next run, analysis.heap)."""
    _close_run(run_id)
    release_freed_memory(keep_switches=True)


def _drop_orphans(live_owners: list[str]) -> int:
    """Drop accumulators of runs whose driver is no longer connected; returns how many."""
    with _LOCK:
        orphans = [r for r, owner in _OWNERS.items() if owner not in set(live_owners)]
        for r in orphans:
            _RUNS.pop(r, None)
            _OWNERS.pop(r, None)
    return len(orphans)


def held_chunks() -> int:
    """How many chunks this process's accumulators hold (all runs): for tests and monitoring,
    e.g. ``client.run(held_chunks)``."""
    with _LOCK:
        return sum(
            len(ids) for run in _RUNS.values() for _, d in run.values() for ids in d.values()
        )


# -- driver side ---------------------------------------------------------------------------------


def _merge(ledger: ChunkLedger, worker: str, parts: list[Any]) -> None:
    seen: set[int] = set()
    for epoch, acc, ids in parts:
        ledger.merge(worker, epoch, acc, ids)
        seen.update(i for pairs in ids.values() for i, _ in pairs)
    ledger.harvested(worker, seen)


def harvest_local(ledger: ChunkLedger, run_id: str) -> None:
    """Merge this process's accumulators of ``run_id`` (the iterative executor)."""
    _merge(ledger, "local", _pop_run(run_id))


def _seal_run(run_id: str, worker: str) -> list[tuple[int, Any, dict[str, list[tuple[int, int]]]]]:
    """Task pinned to ``worker``: take its accumulators of ``run_id`` (they become this task's
    result, kept in that worker's memory for the reduction). Refuses to run anywhere else, so a
    lost result is never "recomputed" by emptying another worker's accumulator."""
    here = _worker_address()
    if here != worker:
        raise RuntimeError(f"the harvest of {worker} was sent to {here}")
    return _pop_run(run_id)


def _manifest(parts: list[tuple[int, Any, Any]]) -> list[tuple[int, Any, list[str]]]:
    """What a sealed accumulator holds: ``[(epoch, chunk ids, datasets with an entry)]``."""
    return [(epoch, ids, sorted(acc or {})) for epoch, acc, ids in parts]


def _select(parts: list[tuple[int, Any, Any]], admitted: dict[int, list[str]]) -> dict[str, Any]:
    """The admitted dataset entries of one worker's sealed accumulators, added up."""
    out: dict[str, Any] = {}
    for epoch, acc, _ in parts:
        for dataset in admitted.get(epoch, ()):
            out[dataset] = iadd(out[dataset], acc[dataset]) if dataset in out else acc[dataset]
    return out


def _add(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """One step of the tree reduction (in place into ``a``: its only user is this task)."""
    for dataset, entry in b.items():
        a[dataset] = iadd(a[dataset], entry) if dataset in a else entry
    return a


#: task priority of the harvest: ahead of the chunks queued on a worker
_HARVEST_PRIORITY = 1_000


def _await(client: Any, futures: list[Any], holders: set[str]) -> set[str]:
    """Wait until ``futures`` are settled or a worker of ``holders`` leaves the cluster;
    returns the holders that left (a pinned task of theirs would wait forever)."""
    from distributed import wait

    pending = [f for f in futures if not f.done()]
    while pending:
        gone = holders - set(client.nthreads())
        if gone:
            return gone
        # the run's client, not dask's default one (a notebook may hold several clients)
        with contextlib.suppress(TimeoutError), client.as_current():
            wait(pending, timeout=1.0)  # then look at the workers again
        pending = [f for f in pending if not f.done()]
    return set()


def _harvest_dask(
    ledger: ChunkLedger,
    client: Any,
    run_id: str,
    failures: dict[str, tuple[int, float]] | None = None,
    say: Callable[[str], None] = print,
) -> bool:
    """Move every worker's accumulator of ``run_id`` into ``ledger.total``, worker to worker;
    False when the reduction was lost (its chunks are redone), True otherwise.

    1. *seal*: a task pinned to each worker takes its accumulators (the task's result stays in
       that worker's memory) and a small *manifest* (which chunks, per dataset and epoch) comes
       back to the driver;
    2. the ledger *admits* the entries that may be counted (:meth:`ChunkLedger.admit`);
    3. the admitted entries are added pairwise on the workers (a tree: log2(workers) rounds,
       Dask moves the accumulators between workers, never through the scheduler) and the
       driver fetches the one result directly from the worker that holds it.

    A worker that left loses its chunks (redone); if a worker leaves during the reduction, the
    chunks admitted in this harvest are redone. A worker still there whose seal fails keeps
    its chunks and is retried after a growing delay, at most :data:`MAX_HARVEST_FAILURES`
    times in a row (``failures``: worker -> (failures so far, earliest next try)).
    """
    failures = {} if failures is None else failures
    live = set(client.nthreads())
    for worker in sorted(ledger.holders() - live):
        ledger.worker_lost(worker)
        failures.pop(worker, None)
    now = time.monotonic()
    targets = sorted(w for w in live if failures.get(w, (0, 0.0))[1] <= now)
    tag = uuid.uuid4().hex[:8]

    def task(fn: Callable, *args: Any, name: str, worker: str | None = None) -> Any:
        """A harvest task: never retried (a failure is handled here), ahead of the chunks,
        on ``worker`` only when given."""
        where = {} if worker is None else {"workers": [worker], "allow_other_workers": False}
        key = f"wmass-{name}-{run_id}-{tag}"
        return client.submit(
            fn, *args, key=key, pure=False, retries=0, priority=_HARVEST_PRIORITY, **where
        )

    sealed = {w: task(_seal_run, run_id, w, name=f"seal-{w}", worker=w) for w in targets}
    manifests = {
        w: task(_manifest, fut, name=f"manifest-{w}", worker=w) for w, fut in sealed.items()
    }
    _await(client, list(manifests.values()), set(targets))
    admitted_chunks: list[int] = []
    leaves = []
    live = set(client.nthreads())
    for w in targets:
        fut = manifests[w]
        if fut.status != "finished":
            err = fut.exception() if fut.status == "error" else f"the worker left ({fut.status})"
            sealed.pop(w).cancel()
            fut.cancel()
            if w not in live:
                ledger.worker_lost(w)
                failures.pop(w, None)
                continue
            n = failures.get(w, (0, 0.0))[0] + 1
            if n >= MAX_HARVEST_FAILURES:
                raise RetryLimitExceeded(
                    f"harvest of worker {w}", n, f"{type(err).__name__}: {err}"
                )
            failures[w] = (n, time.monotonic() + HARVEST_RETRY_DELAY * 2 ** (n - 1))
            continue  # its chunks stay held; a later harvest tries again
        failures.pop(w, None)
        seen: set[int] = set()
        admitted: dict[int, list[str]] = {}
        for epoch, ids, present in fut.result():
            datasets = ledger.admit(w, epoch, ids, present)
            if datasets:
                admitted[epoch] = datasets
                admitted_chunks.extend(int(i) for d in datasets for i, _ in ids[d])
            seen.update(int(i) for pairs in ids.values() for i, _ in pairs)
        ledger.harvested(w, seen)
        if admitted:
            leaves.append((task(_select, sealed[w], admitted, name=f"select-{w}", worker=w), w))
    del sealed, manifests  # the leaves hold what is still needed
    # each addition runs where its first operand is, so the second one comes to it as it
    # travels (mostly-zero arrays as their entries, processors.fill.SparseArray) and is added
    # entry by entry; run where the second is, it made the first one's arrays dense and added
    # them whole: 0.6-1.5 s against 0.05 s on 7.4M events (docs/scaling.md, eleventh pass)
    level, depth = leaves, 0
    while len(level) > 1:
        depth += 1
        pairs = [
            (task(_add, a, b, name=f"add-{depth}-{i}", worker=where), where)
            for i, ((a, where), (b, _)) in enumerate(zip(level[::2], level[1::2], strict=False))
        ]
        level = pairs + level[len(pairs) * 2 :]
    if not level:
        return True
    holders = set(targets)
    gone = _await(client, [fut for fut, _ in level], holders)
    result = level[0][0]
    if gone or result.status != "finished":
        result.cancel()
        n = ledger.unadmit(admitted_chunks)
        for w in sorted(gone):
            ledger.worker_lost(w)
        why = f"workers {sorted(gone)} left" if gone else f"{result.exception()!r}"
        say(f"[dask] harvest lost ({why}): redoing the {n} chunks it carried")
        return False
    try:
        total = client.gather(result, direct=True)
    # a worker the driver cannot reach directly (a proxy in between): through the scheduler
    except OSError:
        total = client.gather(result, direct=False)
    result.release()
    ledger.add(total)
    return True


def _events_settled(ledger: ChunkLedger) -> int:
    return sum(
        k[3] - k[2]
        for k, s in zip(map(chunk_key, ledger.chunks), ledger.state, strict=True)
        if s in (HELD, DONE)
    )


def _handle_error(
    ledger: ChunkLedger, i: int, err: BaseException, skip_bad_files: bool, say: Callable
) -> None:
    dataset, filename, _, _ = chunk_key(ledger.chunks[i])
    if skip_bad_files and is_skippable(err):
        ledger.file_failed(dataset, filename, str(err))
        say(f"[skip-bad-files] giving up {filename} of dataset {dataset}: {err}")
        return
    raise err


def execute(
    ledger: ChunkLedger,
    processor: Any,
    *,
    client: Any = None,
    retries: int = 2,
    skip_bad_files: bool = False,
    checkpoint_interval: float | None = None,
    on_harvest: Callable[[ChunkLedger], None] | None = None,
    progress: Any = None,
    say: Callable[[str], None] = print,
    max_losses: int = MAX_CHUNK_LOSSES,
    timeline: Timeline | None = None,
) -> ChunkLedger:
    """Process every ``todo`` chunk of ``ledger`` with ``processor`` until all are done or
    failed; ``ledger.total`` is then the merged output.

    ``client``: a ``distributed.Client`` (``None``: this process, one chunk after another).
    ``retries``: Dask retries of a chunk that raised something other than a file's error.
    ``checkpoint_interval``: seconds between harvests, after each of which ``on_harvest(ledger)``
    is called (e.g. to write a checkpoint). ``progress``: a tqdm bar counting events.
    ``max_losses``: how often one chunk's output may be lost before
    :class:`~processors.errors.RetryLimitExceeded` stops the run. ``timeline``: filled with
    the run's phases (a new one when not given).
    """
    run_id = uuid.uuid4().hex
    timeline = Timeline() if timeline is None else timeline
    if client is None:
        _execute_local(
            ledger,
            processor,
            run_id,
            skip_bad_files,
            checkpoint_interval,
            on_harvest,
            progress,
            say,
            timeline,
        )
    else:
        _execute_dask(
            ledger,
            processor,
            client,
            run_id,
            retries,
            skip_bad_files,
            checkpoint_interval,
            on_harvest,
            progress,
            say,
            max_losses,
            timeline,
        )
    timeline.finished = time.time()
    return ledger


def _update(progress: Any, ledger: ChunkLedger) -> None:
    if progress is not None:
        progress.n = _events_settled(ledger)
        progress.refresh()


def _broadcast(client: Any, processor: Any, attempts: int = 5) -> Any:
    """The processor scattered to every worker; a worker that dies during the broadcast (the
    scatter then fails with ``CommClosedError``, an ``OSError``) is not a failed run: the
    scheduler drops it and the broadcast is tried again on the workers that are left, at most
    ``attempts`` times (then :class:`RetryLimitExceeded` with the last error)."""
    for attempt in range(1, attempts + 1):
        try:
            return client.scatter(processor, broadcast=True, hash=False, timeout=60)
        except OSError as err:  # CommClosedError, a timeout: the worker set changed under us
            if attempt == attempts:
                what = f"broadcast of the processor to the workers of {client.scheduler.address}"
                raise RetryLimitExceeded(what, attempts, f"{type(err).__name__}: {err}") from err
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def _execute_local(
    ledger, processor, run_id, skip_bad_files, interval, on_harvest, progress, say, timeline
):
    last = time.monotonic()
    try:
        while not ledger.finished:
            for i in ledger.todo():
                if ledger.state[i] != "todo":
                    continue  # a file failure earlier in this pass settled it
                attempt, epoch = ledger.start(i)
                item = ledger.chunks[i]
                try:
                    # its arrays reuse the memory the last chunk freed (analysis.heap)
                    with chunk_heap():
                        res = _process_into_worker(
                            processor, item, run_id, "local", i, attempt, epoch
                        )
                # broad on purpose: file errors come back as values, so anything raised here is
                # a bug or a library failure; it stops the run naming the chunk (never skipped)
                except Exception as err:
                    error = f"{type(err).__name__}: {err}"
                    raise ChunkFailed(chunk_label(item), chunk_key(item)[1], error) from err
                if "error" in res:
                    _handle_error(ledger, i, res["error"], skip_bad_files, say)
                else:
                    ledger.reported(i, attempt, "local")
                    timeline.chunk_done(
                        "local",
                        res["events"],
                        res["seconds"],
                        chunk_key(item)[0],
                        res["cpu"],
                        res["faults"],
                        res["waited"],
                    )
                _update(progress, ledger)
                if interval is not None and time.monotonic() - last >= interval:
                    timeline.harvest(lambda: harvest_local(ledger, run_id))
                    if on_harvest is not None:
                        on_harvest(ledger)
                    last = time.monotonic()
            if timeline.processed is None:
                timeline.processed = time.time()
            timeline.harvest(lambda: harvest_local(ledger, run_id))
    finally:
        _close_run(run_id)
        drop_kept_files()  # a worker keeps them for its next run; this process is done
        release_freed_memory()  # what chunk_heap kept between the chunks goes back


def _execute_dask(
    ledger,
    processor,
    client,
    run_id,
    retries,
    skip_bad_files,
    interval,
    on_harvest,
    progress,
    say,
    max_losses,
    timeline,
):
    owner = client.id
    harvest_failures: dict[str, tuple[int, float]] = {}
    # best effort, any error: dropping other runs' leftovers only frees memory, and a cluster
    # that refuses run_on_scheduler (e.g. a restricted scheduler) must still run this one
    with contextlib.suppress(Exception):
        live = client.run_on_scheduler(_scheduler_clients)
        client.run(_drop_orphans, live)
    proc = _broadcast(client, processor)
    finished: queue.Queue[str] = queue.Queue()
    futures: dict[str, tuple[Any, int, int]] = {}
    last_harvest = last_check = time.monotonic()
    harvests_lost, harvest_not_before = 0, 0.0

    def submit(i: int) -> None:
        if ledger.losses[i] > max_losses:
            item = ledger.chunks[i]
            raise RetryLimitExceeded(
                chunk_label(item),
                ledger.attempt[i],
                f"its output was lost {ledger.losses[i]} times (workers that died or restarted "
                f"while holding it; the bound is max_losses={max_losses})",
            )
        attempt, epoch = ledger.start(i)
        key = f"wmass-chunk-{run_id}-{i}-{attempt}"
        fut = client.submit(
            _process_into_worker,
            proc,
            ledger.chunks[i],
            run_id,
            owner,
            i,
            attempt,
            epoch,
            key=key,
            pure=False,
            retries=retries,
        )
        futures[key] = (fut, i, attempt)
        fut.add_done_callback(lambda f: finished.put(f.key))

    try:
        while not ledger.finished:
            for i in ledger.todo():
                submit(i)
            keys = []
            with contextlib.suppress(queue.Empty):
                keys.append(finished.get(timeout=0.5))
                while True:
                    keys.append(finished.get_nowait())
            for key in keys:
                if key not in futures:
                    continue
                fut, i, attempt = futures.pop(key)
                current = ledger.state[i] == RUNNING and ledger.attempt[i] == attempt
                if fut.status == "finished":
                    res = fut.result()
                    if "error" in res:
                        if current:
                            _handle_error(ledger, i, res["error"], skip_bad_files, say)
                            _cancel_stale(client, futures, ledger)
                    elif ledger.reported(i, attempt, res["worker"]):
                        if timeline.first_chunk is None and _local(client):
                            warmstart.yield_to_workers()  # the workers are busy now
                        timeline.chunk_done(
                            res["worker"],
                            res["events"],
                            res.get("seconds", 0.0),
                            chunk_key(ledger.chunks[i])[0],
                            res.get("cpu"),
                            res.get("faults"),
                            res.get("waited"),
                        )
                elif current and fut.status == "error":
                    err = fut.exception()
                    item = ledger.chunks[i]
                    raise ChunkFailed(
                        chunk_label(item),
                        chunk_key(item)[1],
                        f"{type(err).__name__}: {err} (after {retries} retries)",
                    ) from err
                elif current:  # cancelled behind our back (e.g. the scheduler restarted)
                    ledger.requeue(i, lost=True)
                del fut
            _update(progress, ledger)
            now = time.monotonic()
            if now - last_check >= 1.0:
                live = set(client.nthreads())
                for worker in sorted(ledger.holders() - live):
                    n = ledger.worker_lost(worker)
                    say(f"[dask] worker {worker} left: redoing the {n} chunks it held")
                last_check = now
            due = interval is not None and now - last_harvest >= interval
            if ledger.quiet and timeline.processed is None:
                timeline.processed = time.time()
            if (ledger.quiet or due) and now >= harvest_not_before:
                complete = timeline.harvest(
                    lambda: _harvest_dask(ledger, client, run_id, harvest_failures, say)
                )
                if due and on_harvest is not None:
                    on_harvest(ledger)
                last_harvest = time.monotonic()
                # a lost reduction (a worker left mid-way) costs each chunk it carried one of
                # its max_losses: give the scheduler time to settle before the next one, or a
                # quiet ledger would retry at once and spend them all on one death
                harvests_lost = 0 if complete else harvests_lost + 1
                harvest_not_before = last_harvest + (
                    HARVEST_RETRY_DELAY * 2 ** (harvests_lost - 1) if harvests_lost else 0.0
                )
    finally:
        # cleanup, any error: the scheduler may be gone (that is often why we are here), and
        # a cleanup failure must not hide the error that ended the run
        with contextlib.suppress(Exception):
            client.cancel([fut for fut, _, _ in futures.values()])
        with contextlib.suppress(Exception):  # same reason as above
            client.run(_end_run, run_id)
            client.run(_drop_orphans, client.run_on_scheduler(_scheduler_clients))


def _cancel_stale(
    client: Any, futures: dict[str, tuple[Any, int, int]], ledger: ChunkLedger
) -> None:
    """Cancel tasks whose attempt no longer counts (their dataset was reset)."""
    stale = [
        key
        for key, (_, i, attempt) in futures.items()
        if not (ledger.state[i] == RUNNING and ledger.attempt[i] == attempt)
    ]
    for key in stale:
        futures.pop(key)[0].cancel()


def _scheduler_clients(dask_scheduler: Any) -> list[str]:
    return list(dask_scheduler.clients)
