"""Run a processor over a fileset, chunk by chunk, on Dask or in this process.

The unit of work is a **chunk**: coffea's :class:`~coffea.processor.executor.WorkItem`
``(dataset, filename, treename, entrystart, entrystop, fileuuid, usermeta)``, made by coffea's
own ``FileMeta.chunks`` after reading each file's entry count and UUID (:func:`plan`). Every
chunk is processed once and appears once in the output (the processors return ``chunks``);
:func:`run` checks that the events read equal the sum of the chunk lengths.

How partial results are merged (``executor="dask"``): each worker keeps **one accumulator in its
own memory** and adds every chunk it processes into it (coffea's in-place ``iadd``); a chunk
task returns only a few numbers (the worker, the events). At each checkpoint and at the end the
workers' accumulators are added pairwise on the workers and the driver fetches the sum. Histogram memory is
therefore (workers + 2) x the size of one output, whatever the number of chunks, and a 100 MB
W histogram is never serialised per chunk. (coffea's ``DaskExecutor`` instead returns every
chunk's output and tree-reduces them in groups of 20, so up to ~20 outputs per reduction stay
alive and each is pickled and shipped once or twice. Measured for a 100k-event W chunk with all
variations: the output is 107 MB; pickling + unpickling it costs 0.1 CPU-s (before any LZ4 or
network), the in-place merge 0.016 s, processing the chunk ~0.3 s.)
The driver keeps a ledger of which worker holds which chunks (:mod:`analysis.runner.ledger`): a
worker that dies has exactly its chunks redone, no chunk is counted twice, a broken file
stops the run or (``skip_bad_files``) is given up with its dataset normalised without it, and
with ``checkpoint=PATH`` the merged output is checkpointed so an interrupted run can
``resume`` (:mod:`analysis.runner.execute`, :mod:`analysis.runner.badfiles`,
:mod:`analysis.runner.checkpoint`).

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
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from coffea.processor.executor import FileMeta, WorkItem

from analysis.datasets import Dataset, TreeEntries, tree_entries
from analysis.runner.checkpoint import read_checkpoint, run_config, write_checkpoint
from analysis.runner.chunks import chunk_key
from analysis.runner.cluster import PendingClient
from analysis.runner.execute import Timeline, execute
from analysis.runner.ledger import ChunkLedger, LedgerStats
from fit.provenance import provenance, remove_stale_temporaries
from processors.errors import BadInputFile, ConfigError

__all__ = [
    "DEFAULT_CHECKPOINT_INTERVAL",
    "DEFAULT_CHUNKSIZE",
    "AUTO_DASK_EVENTS",
    "EXECUTORS",
    "RunResult",
    "chunk_metadata",
    "choose_executor",
    "plan",
    "run",
]

DEFAULT_CHUNKSIZE = 200_000
#: seconds between checkpoints (each one harvests the workers' accumulators)
DEFAULT_CHECKPOINT_INTERVAL = 60.0
EXECUTORS = ("dask", "iterative")
#: below this many events one process beats an embedded cluster of 2 local workers (measured on
#: 2 cores, docs/scaling.md: the workers' start and imports cost more than the halved processing
#: saves); with n workers the break-even falls as n / (2 (n - 1)) of it
AUTO_DASK_EVENTS = 6_000_000
#: with more local files than this, ``auto`` takes the cluster without counting their events
AUTO_MAX_FILES_COUNTED = 64


@dataclass
class RunResult:
    """What :func:`run` returns.

    ``output``: the merged processor output ``{dataset: {...}}``; ``chunks``: every planned
    chunk; ``files_failed``: ``{dataset: [{"file", "error"}]}`` (only with
    ``skip_bad_files``); ``placement``: worker address -> chunks merged into its accumulator;
    ``events``: events processed in this session (without those of a resumed checkpoint);
    ``stats``: recovery counts (chunks redone, workers lost, ...); ``resumed_chunks``: chunks
    taken from a checkpoint; ``timeline``: when each phase happened and what each chunk cost.
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
    stats: LedgerStats | None = None
    resumed_chunks: int = 0
    timeline: Timeline | None = None

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


#: (path, tree) -> (size, mtime in ns, TreeEntries) of the local files that
#: :func:`choose_executor` counted, for the :func:`plan` that follows to take instead of opening
#: each file again (~10 ms a file: uproot parses the tree's metadata); each is taken once
_COUNTED: dict[tuple[str, str], tuple[int, int, TreeEntries]] = {}
_COUNTED_MAX = 4096


def _file_info(path: str, treename: str, *, keep: bool = False) -> TreeEntries:
    """The file's :class:`~analysis.datasets.TreeEntries`; the one :func:`choose_executor`
    kept (``keep``) when the file's size and modification time are still the same, else read
    now."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):  # a remote path, or a missing file (tree_entries says so)
        return tree_entries(path, treename)
    stamp = (st.st_size, st.st_mtime_ns)
    found = _COUNTED.pop((path, treename), None)
    if found is not None and found[:2] == stamp:
        return found[2]
    info = tree_entries(path, treename)
    if keep:
        if len(_COUNTED) >= _COUNTED_MAX:
            _COUNTED.clear()
        _COUNTED[(path, treename)] = (*stamp, info)
    return info


def plan(
    datasets: Mapping[str, Dataset],
    chunksize: int = DEFAULT_CHUNKSIZE,
    *,
    file_info: Callable[[list[tuple[str, str]]], list[Any]] | None = None,
    skip_bad_files: bool = False,
) -> tuple[list[WorkItem], dict[str, list[dict[str, str]]]]:
    """The chunks of every file (coffea's ``FileMeta.chunks``) and the files that failed.

    Chunks start where the file's clusters start (:func:`cluster_aligned`) when its clusters
    are at most twice ``chunksize``: a basket is then decompressed by one chunk, not by the
    two on either side of a boundary inside it. A chunk then holds ``chunksize`` events or
    the whole clusters just past it. Otherwise (clusters much larger than the chunks) the file
    is cut into equal chunks of about ``chunksize``.

    ``file_info`` maps ``[(path, treename)]`` to ``[TreeEntries or exception]`` (default: read
    here, one file after another). A bad file raises :class:`BadInputFile` unless
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
        n, file_uuid, clusters = info
        meta = {"numentries": n, "uuid": file_uuid, "clusters": list(clusters)}
        fm = FileMeta(ds.name, path, ds.treename, {**meta, **chunk_metadata(ds)})
        align = cluster_aligned(clusters, chunksize)
        chunks.extend(item for item in fm.chunks(chunksize, align) if len(item) > 0 or n == 0)
    return chunks, dict(failed)


def cluster_aligned(clusters: Sequence[int], chunksize: int) -> bool:
    """Whether chunks of ``chunksize`` events start at the cluster starts ``clusters`` of a
    file (see :func:`plan`): when no cluster is larger than twice the chunk size, so that a
    chunk never grows past three times it.

    >>> cluster_aligned([0, 75_000, 150_000, 225_000], 50_000)  # 3 chunks of 75k, not 4 of 56k
    True
    >>> cluster_aligned([0, 225_000], 50_000)  # one basket: equal chunks, as before
    False
    """
    sizes = [b - a for a, b in zip(clusters[:-1], clusters[1:], strict=True)]
    return len(sizes) > 1 and max(sizes) <= 2 * chunksize


def choose_executor(
    datasets: Mapping[str, Dataset], *, workers: int | None = None
) -> tuple[str, str]:
    """``("dask" or "iterative", why)``: what ``--executor auto`` runs ``datasets`` with.

    A local cluster of ``workers`` processes (default: one per core) when the input is large
    enough to repay its start (:data:`AUTO_DASK_EVENTS`, scaled to the number of workers), when
    a file is remote, or when there are too many files to count; this process otherwise.

    >>> choose_executor({}, workers=1)
    ('iterative', 'one worker: a cluster would only add its start')
    """
    n = workers or os.cpu_count() or 1
    if n < 2:
        return "iterative", "one worker: a cluster would only add its start"
    files = [(path, ds.treename) for ds in datasets.values() for path in ds.files]
    if any("://" in path for path, _ in files):
        return "dask", "remote files"
    if len(files) > AUTO_MAX_FILES_COUNTED:
        return "dask", f"{len(files)} files"
    total = 0
    for path, tree in files:
        with contextlib.suppress(BadInputFile):  # the run names it (or skips it)
            total += _file_info(path, tree, keep=True)[0]
    threshold = AUTO_DASK_EVENTS * n / (2 * (n - 1))
    if total >= threshold:
        return "dask", f"{total:,} events: {n} local workers repay their start"
    return "iterative", (
        f"{total:,} events: one process is faster than starting {n} workers "
        f"(break-even ~{threshold / 1e6:.0f}M events; --executor dask to use them anyway)"
    )


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


@contextlib.contextmanager
def _client_for(executor: str, client: Any, workers: int | None, quiet: bool) -> Iterator[Any]:
    """None (iterative), the given client, or a :class:`PendingClient` of a local cluster."""
    if executor != "dask":
        yield None
        return
    if client is not None:
        if not quiet and not isinstance(client, PendingClient):
            print(f"[dask] using {client.scheduler.address}, dashboard {client.dashboard_link}")
        yield client
        return
    with PendingClient(workers=workers, quiet=quiet) as pending:
        yield pending


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
    retries: int = 2,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL,
    resume: bool = False,
    config: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> RunResult:
    """Process every file of ``datasets`` with ``processor`` (a coffea ``ProcessorABC``).

    ``executor``: ``"dask"`` (``client``, or an embedded ``LocalCluster`` of ``workers``
    single-threaded processes, started while the chunks are planned here; ``client`` may also be
    a :class:`~analysis.runner.cluster.PendingClient` still starting) or ``"iterative"``
    (this process). With an existing client the files' entries are read on its workers. ``chunksize``: target
    entries per chunk. ``skip_bad_files``: a file that cannot be read or lacks a branch is
    given up and recorded in ``files_failed`` (and its dataset normalised without it) instead
    of stopping the run (:mod:`analysis.runner.badfiles`). ``retries``: Dask retries of a chunk that
    failed otherwise, before :class:`~analysis.runner.badfiles.ChunkFailed`.

    ``checkpoint``: a path where the merged output and the done chunks are written every
    ``checkpoint_interval`` seconds (:mod:`analysis.runner.checkpoint`; ``meta``: its provenance);
    ``resume=True`` continues from it (refused if ``config`` -- the options that shape the
    output, e.g. analysis and variations -- the datasets, the chunk plan or the code
    differ); an existing checkpoint without ``resume`` is an error, so no work is lost
    silently. Worker deaths and exactly-once accounting: :mod:`analysis.runner.execute`.
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    say = (lambda *_: None) if not progress else (lambda m: print(m, file=sys.stderr))
    t0 = time.perf_counter()
    timeline = Timeline()
    with _client_for(executor, client, workers, not progress) as c:
        if isinstance(c, PendingClient):
            # an embedded local cluster is starting: plan here meanwhile (its files are ours)
            chunks, failed = plan(datasets, chunksize, skip_bad_files=skip_bad_files)
            timeline.planned = time.time()
            c = c.result()
            timeline.client_ready = time.time()
        else:
            timeline.client_ready = time.time()
            info_fn = _dask_file_info(c) if c is not None else None
            chunks, failed = plan(
                datasets, chunksize, file_info=info_fn, skip_bad_files=skip_bad_files
            )
            timeline.planned = time.time()
        ledger = ChunkLedger(chunks)
        on_harvest = None
        if checkpoint is not None:
            on_harvest = _checkpointing(
                ledger, datasets, processor, chunksize, checkpoint, resume, config, meta, say
            )
        initial = set(ledger.done_keys())
        total = sum(len(item) for item in chunks)
        desc = f"{executor}: {len(chunks)} chunks"
        with _progress(total, progress, desc) as bar:
            execute(
                ledger,
                processor,
                client=c,
                retries=retries,
                skip_bad_files=skip_bad_files,
                checkpoint_interval=checkpoint_interval if checkpoint is not None else None,
                on_harvest=on_harvest,
                progress=bar,
                say=say,
                timeline=timeline,
            )
        n_workers = 1 if c is None else len(c.scheduler_info().get("workers", {}))
        dashboard = None if c is None else c.dashboard_link
    output = dict(processor.postprocess(ledger.total) or {}) if ledger.total else {}
    done = [
        item for item, state in zip(ledger.chunks, ledger.state, strict=True) if state == "done"
    ]
    _check_chunks(output, done)
    for name, files in ledger.files_failed.items():
        for path, reason in files.items():
            failed.setdefault(name, []).append({"file": path, "error": reason})
    events = sum(len(item) for item in done if chunk_key(item) not in initial)
    return RunResult(
        output=output,
        chunks=chunks,
        files_failed=failed,
        placement=ledger.placement(),
        events=events,
        seconds=time.perf_counter() - t0,
        executor=executor,
        workers=n_workers,
        dashboard=dashboard,
        stats=ledger.stats,
        resumed_chunks=len(initial),
        timeline=timeline,
    )


def _checkpointing(
    ledger: ChunkLedger,
    datasets: Mapping[str, Dataset],
    processor: Any,
    chunksize: int,
    path: str | os.PathLike,
    resume: bool,
    config: Mapping[str, Any] | None,
    meta: Mapping[str, Any] | None,
    say: Callable[[str], None],
) -> Callable[[ChunkLedger], None]:
    """Restore ``ledger`` from the checkpoint at ``path`` (``resume``) and return the callback
    that writes it after each harvest."""
    options = {"processor": type(processor).__qualname__, "chunksize": chunksize}
    options.update(config or {})
    cfg = run_config(options, chunks=ledger.chunks, datasets=datasets)
    path = Path(path)
    for stale in remove_stale_temporaries(path):  # a checkpoint write of a killed driver
        say(f"[resume] removed {stale.name}, left by an interrupted checkpoint write")
    if path.exists():
        if not resume:
            raise ConfigError(
                "resume",
                f"{path} holds the checkpoint of an interrupted run: rerun with --resume to "
                "continue it, or delete it to start over",
            )
        ck = read_checkpoint(path, cfg)
        index = {chunk_key(c): i for i, c in enumerate(ledger.chunks)}
        ledger.restore(ck.total, [index[k] for k in ck.done], ck.files_failed)
        say(f"[resume] {path}: {len(ck.done)} of {len(ledger.chunks)} chunks already done")
    elif resume:
        say(f"[resume] no checkpoint at {path}: starting from the beginning")
    written = {"done": len(ledger.done_keys())}

    def write(ledger: ChunkLedger) -> None:
        done = ledger.done_keys()
        if not done or len(done) == written["done"]:
            return
        write_checkpoint(path, cfg, ledger.total, done, ledger.files_failed, meta or provenance())
        written["done"] = len(done)

    return write


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
