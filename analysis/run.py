"""Run a processor over a fileset, chunk by chunk, on Dask or in this process.

The unit of work is a **chunk**: coffea's :class:`~coffea.processor.executor.WorkItem`
``(dataset, filename, treename, entrystart, entrystop, fileuuid, usermeta)``, made by coffea's
own ``FileMeta.chunks`` after reading each file's entry count and UUID (:func:`plan`). Every
chunk is processed once and appears once in the output (the processors return ``chunks``);
:func:`run` checks that the events read equal the sum of the chunk lengths.

How partial results are merged (``executor="dask"``): each worker keeps **one accumulator in its
own memory** and adds every chunk it processes into it (coffea's in-place ``iadd``); a chunk
task returns only a few numbers (dataset, events, the chunk). At the end the driver fetches the
workers' accumulators one at a time and adds them up. Histogram memory is therefore
(workers + 1) x the size of one output, whatever the number of chunks, and a 100 MB W
histogram is never serialised per chunk. (coffea's ``DaskExecutor`` instead returns every
chunk's output and tree-reduces them in groups of 20, so up to ~20 outputs per reduction stay
alive and each is pickled and shipped once or twice; ``benchmarks/histmaker.py`` measures it.)
The driver knows which worker holds which chunks (``RunResult.placement``): when a worker is
lost, exactly its chunks must be redone -- the hook for recovery and ``--resume``.

``executor="iterative"`` does the same in this process, one chunk after another (debugging,
profiling). A progress bar (tqdm) counts events and shows events/s; the Dask dashboard
address is printed.

>>> from processors import WMassProcessor
>>> from analysis.datasets import load_datasets
>>> result = run(WMassProcessor(), load_datasets("samples/datasets.yaml"))  # doctest: +SKIP
>>> result.output["wmunu"]["histograms"]["nominal"]  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from coffea.processor.accumulator import iadd
from coffea.processor.executor import FileMeta, WorkItem

from analysis.datasets import Dataset, num_entries, open_events
from processors.errors import BadInputFile, WMassError

__all__ = [
    "DEFAULT_CHUNKSIZE",
    "EXECUTORS",
    "RunResult",
    "chunk_metadata",
    "plan",
    "process_chunk",
    "run",
]

DEFAULT_CHUNKSIZE = 200_000
EXECUTORS = ("dask", "iterative")


@dataclass
class RunResult:
    """What :func:`run` returns.

    ``output``: the merged processor output ``{dataset: {...}}``; ``chunks``: every planned
    chunk; ``files_failed``: ``{dataset: [{"file", "error"}]}`` (only with
    ``skip_bad_files``); ``placement``: worker address -> chunks merged into its accumulator.
    """

    output: dict[str, Any]
    chunks: list[WorkItem]
    files_failed: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    placement: dict[str, list[WorkItem]] = field(default_factory=dict)
    events: int = 0
    seconds: float = 0.0
    executor: str = "iterative"
    workers: int = 1
    dashboard: str | None = None

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def chunk_metadata(dataset: Dataset) -> dict[str, Any]:
    """The per-dataset metadata each chunk's events carry (``events.metadata``)."""
    meta: dict[str, Any] = {"is_data": bool(dataset.is_data), "process": dataset.process}
    if dataset.is_data and dataset.golden_json:
        meta["golden_json"] = dataset.golden_json
    return meta


# -- planning --------------------------------------------------------------------------------


def _file_info(path: str, treename: str) -> tuple[int, bytes]:
    return num_entries(path, treename)


def plan(
    datasets: Mapping[str, Dataset],
    chunksize: int = DEFAULT_CHUNKSIZE,
    *,
    file_info: Callable[[list[tuple[str, str]]], list[Any]] | None = None,
    skip_bad_files: bool = False,
) -> tuple[list[WorkItem], dict[str, list[dict[str, str]]]]:
    """The chunks of every file (coffea's ``FileMeta.chunks``) and the files that failed.

    ``file_info`` maps ``[(path, treename)]`` to ``[(entries, uuid) or exception]`` (default:
    read here, one file after another). A bad file raises :class:`BadInputFile` unless
    ``skip_bad_files``, which records it in the second return value.
    """
    if chunksize < 1:
        raise ValueError(f"chunksize must be >= 1, got {chunksize}")
    wanted = [(ds, path) for ds in datasets.values() for path in ds.files]
    requests = [(path, ds.treename) for ds, path in wanted]
    if file_info is None:
        infos: list[Any] = []
        for path, tree in requests:
            try:
                infos.append(_file_info(path, tree))
            except BadInputFile as err:
                infos.append(err)
    else:
        infos = file_info(requests)
    chunks: list[WorkItem] = []
    failed: dict[str, list[dict[str, str]]] = defaultdict(list)
    for (ds, path), info in zip(wanted, infos, strict=True):
        if isinstance(info, BaseException):
            if not skip_bad_files:
                raise info
            failed[ds.name].append({"file": path, "error": str(info)})
            continue
        n, file_uuid = info
        meta = {"numentries": n, "uuid": file_uuid, **chunk_metadata(ds)}
        fm = FileMeta(ds.name, path, ds.treename, meta)
        chunks.extend(item for item in fm.chunks(chunksize, False) if len(item) > 0 or n == 0)
    return chunks, dict(failed)


# -- one chunk -------------------------------------------------------------------------------

_READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error)


def _read_errors() -> tuple[type[BaseException], ...]:
    errors = list(_READ_ERRORS)
    with contextlib.suppress(ImportError):
        import uproot.deserialization

        errors.append(uproot.deserialization.DeserializationError)
    with contextlib.suppress(ImportError):
        import zstandard

        errors.append(zstandard.ZstdError)
    return tuple(errors)


def process_chunk(processor: Any, item: WorkItem) -> dict[str, Any]:
    """Open the chunk's entries as NanoEvents and run ``processor.process`` on them.

    A file that cannot be read (here or while the processor reads branches) raises
    :class:`BadInputFile` naming it; the processor's own errors (``MissingBranch``, ...) pass.
    """
    metadata = {"dataset": item.dataset, **(item.usermeta or {})}
    for key in ("numentries", "uuid"):
        metadata.pop(key, None)
    events = open_events(
        item.filename,
        treename=item.treename,
        entry_start=item.entrystart,
        entry_stop=item.entrystop,
        metadata=metadata,
    )
    try:
        return processor.process(events)
    except WMassError:
        raise
    except _read_errors() as err:
        reason = f"reading entries {item.entrystart}-{item.entrystop} failed: {err}"
        raise BadInputFile(item.filename, " ".join(reason.split())) from err


# -- worker-side accumulation ------------------------------------------------------------------

_ACCUMULATORS: dict[str, Any] = {}
_LOCK = threading.Lock()


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


def _process_into_worker(processor: Any, item: WorkItem, run_id: str) -> dict[str, Any]:
    """Dask task: process a chunk and add it to this worker's accumulator of run ``run_id``."""
    out = process_chunk(processor, item)
    with _LOCK:
        if run_id in _ACCUMULATORS:
            _ACCUMULATORS[run_id] = iadd(_ACCUMULATORS[run_id], out)
        else:
            _ACCUMULATORS[run_id] = out
    return {"worker": _worker_address(), "events": len(item)}


def _pop_accumulator(run_id: str) -> Any:
    with _LOCK:
        return _ACCUMULATORS.pop(run_id, None)


# -- the loop --------------------------------------------------------------------------------


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        unit="ev",
        unit_scale=True,
        desc=desc,
        disable=not enabled,
        file=sys.stderr,
        smoothing=0.1,
    )


def _check_chunks(output: Mapping[str, Any], chunks: Iterable[WorkItem]) -> None:
    """Every planned chunk exactly once: the events read equal the sum of the chunk lengths."""
    expected: dict[str, int] = defaultdict(int)
    for item in chunks:
        expected[item.dataset] += len(item)
    for name, n in expected.items():
        got = output.get(name, {}).get("events_read", 0)
        if got != n:
            raise RuntimeError(
                f"dataset {name}: {got} events read but the chunks hold {n}: "
                "a chunk was lost or counted twice"
            )


def _run_iterative(processor, chunks, bar) -> tuple[Any, dict[str, list[WorkItem]]]:
    acc = None
    for item in chunks:
        out = process_chunk(processor, item)
        acc = out if acc is None else iadd(acc, out)
        bar.update(len(item))
    return acc, {"local": list(chunks)}


def _run_dask(processor, chunks, bar, client) -> tuple[Any, dict[str, list[WorkItem]]]:
    from distributed import as_completed

    run_id = uuid.uuid4().hex
    proc = client.scatter(processor, broadcast=True, hash=False)
    futures = {
        client.submit(
            _process_into_worker, proc, item, run_id, pure=False, key=f"chunk-{run_id}-{i}"
        ): item
        for i, item in enumerate(chunks)
    }
    placement: dict[str, list[WorkItem]] = defaultdict(list)
    try:
        for future in as_completed(futures):
            info = future.result()  # raises the chunk's exception
            placement[info["worker"]].append(futures[future])
            bar.update(info["events"])
        acc = None
        for worker in list(placement):
            part = client.run(_pop_accumulator, run_id, workers=[worker])[worker]
            if part is None:
                raise RuntimeError(f"worker {worker} lost its accumulator (restarted?)")
            acc = part if acc is None else iadd(acc, part)
            del part
        return acc, dict(placement)
    finally:
        for f in futures:
            f.cancel()
        with contextlib.suppress(Exception):
            client.run(_pop_accumulator, run_id)


@contextlib.contextmanager
def _client_for(executor: str, client: Any, workers: int | None, quiet: bool) -> Iterator[Any]:
    if executor != "dask":
        yield None
        return
    if client is not None:
        if not quiet:
            print(f"[dask] using {client.scheduler.address}, dashboard {client.dashboard_link}")
        yield client
        return
    from analysis.cluster import dask_client

    with dask_client(workers=workers, quiet=quiet) as c:
        yield c


def run(
    processor: Any,
    datasets: Mapping[str, Dataset],
    *,
    executor: str = "dask",
    chunksize: int = DEFAULT_CHUNKSIZE,
    client: Any = None,
    workers: int | None = None,
    progress: bool = True,
    skip_bad_files: bool = False,
) -> RunResult:
    """Process every file of ``datasets`` with ``processor`` (a coffea ``ProcessorABC``).

    ``executor``: ``"dask"`` (``client``, or an embedded ``LocalCluster`` of ``workers``
    single-threaded processes) or ``"iterative"`` (this process). ``chunksize``: target
    entries per chunk. ``skip_bad_files``: files that cannot be opened when the chunks are
    planned are recorded in ``files_failed`` instead of stopping the run; a file that fails
    later, while its entries are read, stops the run with :class:`BadInputFile`.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    t0 = time.perf_counter()
    with _client_for(executor, client, workers, not progress) as c:
        info_fn = _dask_file_info(c) if c is not None else None
        chunks, failed = plan(datasets, chunksize, file_info=info_fn, skip_bad_files=skip_bad_files)
        total = sum(len(item) for item in chunks)
        desc = f"{executor}: {len(chunks)} chunks"
        with _progress(total, progress, desc) as bar:
            if c is None:
                acc, placement = _run_iterative(processor, chunks, bar)
                n_workers = 1
            else:
                acc, placement = _run_dask(processor, chunks, bar, c)
                n_workers = len(c.scheduler_info().get("workers", {}))
        dashboard = None if c is None else c.dashboard_link
    output = dict(processor.postprocess(acc) or {}) if acc is not None else {}
    _check_chunks(output, chunks)
    seconds = time.perf_counter() - t0
    return RunResult(
        output=output,
        chunks=chunks,
        files_failed=failed,
        placement=placement,
        events=total,
        seconds=seconds,
        executor=executor,
        workers=n_workers,
        dashboard=dashboard,
    )


def _dask_file_info(client: Any) -> Callable[[list[tuple[str, str]]], list[Any]]:
    def info(requests: list[tuple[str, str]]) -> list[Any]:
        futures = [
            client.submit(_file_info, path, tree, pure=False, retries=0) for path, tree in requests
        ]
        out: list[Any] = []
        for f in futures:
            try:
                out.append(f.result())
            except BadInputFile as err:
                out.append(err)
        return out

    return info
