"""Process a list of chunks exactly once, on Dask workers or in this process, surviving failures.

Each worker keeps **one accumulator per run in its own memory** and adds every chunk it
processes into it; a chunk task returns only ``{"worker", "events"}`` (or the file's error as a
value). The driver *harvests* the accumulators (pops them from the workers, one worker at a time,
and adds them into its total) every ``checkpoint_interval`` seconds and at the end, so histogram
memory is (workers + 2) x one output, whatever the number of chunks.

What can go wrong, and what happens (the bookkeeping is
:class:`analysis.runner.ledger.ChunkLedger`):

- a worker dies (SIGKILL, pre-emption, OOM): Dask reruns its running task elsewhere; the chunks
  its accumulator held are redone (the driver notices the worker left, or finds the chunks
  missing at the harvest). Nothing is counted twice: an accumulator that would repeat a chunk
  already counted is dropped and its chunks redone;
- a file is broken: see :mod:`analysis.runner.badfiles` (stop, or ``skip_bad_files``);
- a chunk fails for another reason after Dask's ``retries``: :class:`ChunkFailed`;
- the driver dies: after a harvest the total and the done chunks are written to a checkpoint
  (``on_harvest``), from which :func:`analysis.runner.run.run` resumes.

Accumulators of runs whose driver is gone (killed) are dropped from the workers when the next
run starts on the same cluster.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from coffea.processor.accumulator import iadd

from analysis.runner.badfiles import ChunkFailed, chunk_label, is_skippable
from analysis.runner.chunks import chunk_key, process_chunk
from analysis.runner.ledger import DONE, HELD, RUNNING, ChunkLedger
from processors.errors import WMassError

__all__ = ["execute", "harvest_local", "held_chunks"]

# -- worker side ---------------------------------------------------------------------------------

#: run id -> epoch -> [accumulator, {dataset: [(chunk, attempt)]}]
_RUNS: dict[str, dict[int, list[Any]]] = {}
#: run id -> id of the Dask client (driver) that owns it
_OWNERS: dict[str, str] = {}
#: runs that ended: a task of theirs still running when they ended adds nothing
_CLOSED: set[str] = set()
_LOCK = threading.Lock()


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


def _process_into_worker(
    processor: Any, item: Any, run_id: str, owner: str, index: int, attempt: int, epoch: int
) -> dict[str, Any]:
    """Task: process chunk ``index`` and add it to this worker's accumulator of ``run_id``."""
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
            slot[0] = iadd(slot[0], out)
            slot[1].setdefault(item.dataset, []).append((index, attempt))
    return {"worker": _worker_address(), "events": len(item)}


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


def _harvest_dask(ledger: ChunkLedger, client: Any, run_id: str) -> None:
    live = set(client.nthreads())
    for worker in sorted(ledger.holders() - live):
        ledger.worker_lost(worker)
    for worker in sorted(live | ledger.holders()):
        try:
            parts = client.run(_pop_run, run_id, workers=[worker], on_error="raise")[worker]
        except Exception:  # the worker left while we asked
            ledger.worker_lost(worker)
            continue
        _merge(ledger, worker, parts)
        del parts


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
) -> ChunkLedger:
    """Process every ``todo`` chunk of ``ledger`` with ``processor`` until all are done or
    failed; ``ledger.total`` is then the merged output.

    ``client``: a ``distributed.Client`` (``None``: this process, one chunk after another).
    ``retries``: Dask retries of a chunk that raised something other than a file's error.
    ``checkpoint_interval``: seconds between harvests, after each of which ``on_harvest(ledger)``
    is called (e.g. to write a checkpoint). ``progress``: a tqdm bar counting events.
    """
    run_id = uuid.uuid4().hex
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
        )
    return ledger


def _update(progress: Any, ledger: ChunkLedger) -> None:
    if progress is not None:
        progress.n = _events_settled(ledger)
        progress.refresh()


def _execute_local(ledger, processor, run_id, skip_bad_files, interval, on_harvest, progress, say):
    last = time.monotonic()
    try:
        while not ledger.finished:
            for i in ledger.todo():
                if ledger.state[i] != "todo":
                    continue  # a file failure earlier in this pass settled it
                attempt, epoch = ledger.start(i)
                item = ledger.chunks[i]
                try:
                    res = _process_into_worker(processor, item, run_id, "local", i, attempt, epoch)
                except Exception as err:
                    error = f"{type(err).__name__}: {err}"
                    raise ChunkFailed(chunk_label(item), chunk_key(item)[1], error) from err
                if "error" in res:
                    _handle_error(ledger, i, res["error"], skip_bad_files, say)
                else:
                    ledger.reported(i, attempt, "local")
                _update(progress, ledger)
                if interval is not None and time.monotonic() - last >= interval:
                    harvest_local(ledger, run_id)
                    if on_harvest is not None:
                        on_harvest(ledger)
                    last = time.monotonic()
            harvest_local(ledger, run_id)
    finally:
        _close_run(run_id)


def _execute_dask(
    ledger, processor, client, run_id, retries, skip_bad_files, interval, on_harvest, progress, say
):
    owner = client.id
    with contextlib.suppress(Exception):
        live = client.run_on_scheduler(_scheduler_clients)
        client.run(_drop_orphans, live)
    proc = client.scatter(processor, broadcast=True, hash=False)
    finished: queue.Queue[str] = queue.Queue()
    futures: dict[str, tuple[Any, int, int]] = {}
    last_harvest = last_check = time.monotonic()

    def submit(i: int) -> None:
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
                    else:
                        ledger.reported(i, attempt, res["worker"])
                elif current and fut.status == "error":
                    err = fut.exception()
                    item = ledger.chunks[i]
                    raise ChunkFailed(
                        chunk_label(item),
                        chunk_key(item)[1],
                        f"{type(err).__name__}: {err} (after {retries} retries)",
                    ) from err
                elif current:  # cancelled behind our back (e.g. the scheduler restarted)
                    ledger.requeue(i)
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
            if ledger.quiet or due:
                _harvest_dask(ledger, client, run_id)
                if due and on_harvest is not None:
                    on_harvest(ledger)
                last_harvest = time.monotonic()
    finally:
        with contextlib.suppress(Exception):  # the scheduler may be gone
            client.cancel([fut for fut, _, _ in futures.values()])
        with contextlib.suppress(Exception):
            client.run(_close_run, run_id)
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
