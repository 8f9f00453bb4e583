"""Local Dask workers forked from one warm process instead of each starting a new interpreter.

Each worker a ``LocalCluster`` spawns is a fresh Python that imports the stack (distributed,
numpy, awkward, uproot, numba, correctionlib, hist, our processors: ~2.5 s of CPU) and, at
its first chunk, loads the numba fill kernels from their on-disk cache (~1.2 s, most of it
numba's code generator starting). With n workers that is n times the same work, and on two
cores it competes with the driver's own start: command start to first chunk done was 8.4 s
with two workers against 4.0 s in one process (``docs/scaling.md``).

Here the workers are forked from a ``multiprocessing`` *forkserver* that imported and warmed
all of it once (:func:`warm`): each worker then starts in milliseconds, already warm, and
shares the server's pages until it writes them. The ``wmass`` command starts the server
before it imports anything heavy itself (:func:`start_early`), so that the two import side
by side. (So this module lives at ``analysis/``'s root beside the CLI, not in
``analysis/runner/``, whose ``__init__`` imports the whole runner: 1.4 s before the server
could start.)

Only for processes that end after their run, like the ``wmass`` command: a server keeps the
modules it imported, so in a notebook a processor edited after the first cluster started
would not reach the workers. Library callers keep distributed's ``spawn`` unless they call
:func:`enable` (or pass ``warm_workers=True`` to
:func:`analysis.runner.cluster.dask_client`).

>>> enabled()  # nothing turned it on in this process
False
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from analysis.heap import WORKER_ENVIRONMENT

__all__ = [
    "PRELOAD",
    "claim_preload",
    "configure",
    "enable",
    "enabled",
    "freeze_heap",
    "report_versions_from_metadata",
    "spawn_environment",
    "start_early",
    "warm",
    "warm_kernels",
    "warm_kernels_in_background",
    "yield_to_workers",
    "young_heap",
]

#: the modules the server imports before it forks a worker; importing the last one warms
#: the processors (:mod:`analysis._warm_server` calls :func:`warm`)
PRELOAD = ("distributed", "analysis._warm_server")

#: the processor modules a worker needs (all of them: the server does not know which one)
_PROCESSOR_MODULES = (
    "processors.wmass",
    "processors.zdilepton",
    "processors.wlike",
    "analysis.runner.chunks",
)

_STATE: dict[str, Any] = {"configured": False, "enabled": False, "started": False}

#: collect the youngest generation every this many allocations (Python's default: 700) while
#: a process runs chunks: a chunk makes hundreds of thousands of short-lived objects
YOUNG_THRESHOLD = 10_000


def freeze_heap() -> tuple[int, int, int]:
    """Leave the objects alive now (the imports: ~300k in one process, more in a Dask worker)
    out of the garbage collector's full collections (:func:`gc.freeze`), and collect the
    youngest generation every :data:`YOUNG_THRESHOLD` allocations from now on; returns the
    thresholds before. For a process that keeps it so (a worker, the forkserver);
    :func:`young_heap` undoes it when its block ends.

    Full collections come every few hundred thousand allocations and each walks every object
    alive: in the demo's histmaker step (297k events, one process) 5 of them took 0.34 s.
    Frozen objects are still freed when nothing refers to them; only cycles among them wait
    for an unfreeze. In a forkserver, frozen objects also keep their pages shared with the
    processes it forks: a collection no longer writes their headers.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], YOUNG_THRESHOLD), *thresholds[1:])
    return thresholds


@contextlib.contextmanager
def young_heap() -> Any:
    """:func:`freeze_heap` until the block ends, then the thresholds as they were and
    :func:`gc.unfreeze` (unless something had frozen the heap before).

    >>> with young_heap():
    ...     gc.get_threshold()[0] >= YOUNG_THRESHOLD and gc.get_freeze_count() > 0
    True
    """
    frozen_before = gc.get_freeze_count()
    thresholds = freeze_heap()
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if frozen_before == 0:
            gc.unfreeze()


def warm_kernels() -> int:
    """Load every signature of the numba fill kernels that their on-disk cache holds (what a
    worker's first chunk would otherwise do); returns how many were loaded. A kernel without
    a cache entry is left to compile on first use, as before."""
    from processors import fill

    loaded = 0
    for name in dir(fill):
        dispatcher = getattr(fill, name)
        if not hasattr(dispatcher, "_cache") or not hasattr(dispatcher, "compile"):
            continue
        # numba's cache index: {(signature, codegen magic tuple, ...): file}; private, so any
        # change in numba only costs the warm-up, never the run
        with contextlib.suppress(Exception):
            index = dispatcher._cache._cache_file._load_index()
            magic = dispatcher.targetctx.codegen().magic_tuple()
            for key in index:
                if key[1] == magic:
                    dispatcher.compile(key[0])
                    loaded += 1
    return loaded


def warm_kernels_in_background() -> threading.Thread:
    """Start :func:`warm_kernels` on a daemon thread and return the thread: for a run in this
    process (``--executor iterative``, what ``auto`` picks for the demo), whose first chunk
    would otherwise wait for numba's code generator to start (~1 s: its registries, the
    extensions of awkward and vector, scipy's BLAS) after the files are planned.

    Both threads mostly hold the GIL, yet the demo's histmaker step measured 0.25 s less to
    the last chunk (median of 8 alternating runs): the thread runs while this one waits (the
    provenance's ``git`` processes, reading files, numpy and uproot's decompression) and numba's
    LLVM calls run beside this thread. A chunk that reaches a kernel first waits for numba's
    compiler lock and then finds the kernel loaded."""

    def run() -> None:
        with contextlib.suppress(Exception):  # only a warm-up: the run loads what it needs
            warm_kernels()

    thread = threading.Thread(target=run, name="wmass-warm-kernels", daemon=True)
    thread.start()
    return thread


def warm() -> float:
    """Import what a histmaker worker imports and load the fill kernels; returns seconds."""
    t = time.perf_counter()
    for name in _PROCESSOR_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    warm_kernels()
    return time.perf_counter() - t


def enabled() -> bool:
    """Whether local clusters started in this process fork their workers from the server."""
    return bool(_STATE["enabled"])


#: how much lower than now this process's priority goes once its local workers are busy
DRIVER_NICENESS = 10


def yield_to_workers(niceness: int = DRIVER_NICENESS) -> bool:
    """Lower the priority of every thread of this process by ``niceness`` (at most to 19), so
    that the workers of its local cluster win the cores while they process; returns whether
    it did. Only in a process that enabled warm workers (:func:`enabled`): one that ends after
    its run, like the ``wmass`` command, since no process can raise its priority back.

    On two cores, the driver's scheduler, nannies and client (~6 % of a core) preempted the
    workers' compute threads. Lowered after the first chunk, the compute threads went from
    92-94 % to 96-98 % of a core, and the rate per worker from 0.77 and 0.86 to 0.87 of the
    single process in two A/Bs of 5 rounds (``docs/scaling.md``, eighth pass). When nothing
    else wants the cores, a lower priority costs the driver nothing. Linux keeps a nice value
    per thread, so each thread is set; threads started later inherit it from their starter.

    >>> yield_to_workers()  # this process did not enable warm workers: nothing changes
    False
    """
    if not enabled():
        return False
    tasks = "/proc/self/task"
    threads = [int(t) for t in os.listdir(tasks)] if os.path.isdir(tasks) else [0]
    lowered = False
    for tid in threads:
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            now = os.getpriority(os.PRIO_PROCESS, tid)
            os.setpriority(os.PRIO_PROCESS, tid, min(19, now + niceness))
            lowered = True
    return lowered


def spawn_environment() -> dict[str, str]:
    """The environment of a local worker process: what distributed's nanny sets before it
    spawns one (``distributed.nanny.pre-spawn-environ``: one BLAS/OpenMP thread...), read
    without importing distributed (its defaults file, overlaid with dask's config), with
    glibc's switches for a one-thread worker (:data:`analysis.heap.WORKER_ENVIRONMENT`) in
    place of distributed's ``MALLOC_TRIM_THRESHOLD_`` (see
    :func:`analysis.runner.cluster.worker_environment`).

    >>> spawn_environment()["OMP_NUM_THREADS"], spawn_environment()["MALLOC_ARENA_MAX"]
    ('1', '1')
    """
    import importlib.util
    from pathlib import Path

    import dask.config
    import yaml

    env: dict[str, Any] = {}
    spec = importlib.util.find_spec("distributed")  # finds the package, does not import it
    for where in (spec.submodule_search_locations or []) if spec else []:
        defaults = Path(where) / "distributed.yaml"
        if defaults.is_file():
            loaded = yaml.safe_load(defaults.read_text()) or {}
            env.update(loaded.get("distributed", {}).get("nanny", {}).get("pre-spawn-environ", {}))
    env.update(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    env.update(WORKER_ENVIRONMENT)
    return {k: str(v) for k, v in env.items() if v is not None}


def configure() -> bool:
    """Give the forkserver context our preload list (once); False where the platform has no
    forkserver. What :func:`analysis.runner.cluster.dask_client` calls for ``warm_workers``."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    if not _STATE["configured"]:
        multiprocessing.get_context("forkserver").set_forkserver_preload(list(PRELOAD))
        _STATE["configured"] = True
    return True


def enable(start: bool = False) -> bool:
    """Make local clusters started in this process fork their workers from a warm server by
    default; ``start``: start the server now (it imports while the caller goes on). Returns
    False where the platform has no forkserver (then distributed's spawn stays)."""
    if not configure():
        return False
    _STATE["enabled"] = True
    if start and not _STATE["started"]:
        from multiprocessing import forkserver

        # the server's environment is the workers' (set before it imports numpy); the
        # nanny sets the same in this process when the cluster starts
        os.environ.update(spawn_environment())
        forkserver.ensure_running()
        _STATE["started"] = True
    return True


def report_versions_from_metadata() -> bool:
    """Make distributed report the version of a package this process has not imported from its
    installed metadata (:func:`importlib.metadata.version`) instead of importing it; returns
    whether it changed anything (once per process). For the driver of a local or batch cluster
    (whose scheduler runs there), the server of warm workers, and spawned and batch workers (as
    a preload: :mod:`analysis._spawned_worker`), all set up by
    :func:`analysis.runner.cluster.dask_client`.

    Every worker, when it registers, sends the versions of distributed's packages, and the
    scheduler answers with its own: ``distributed.versions.get_versions`` imports each package
    to read its ``__version__``. Nothing in a histmaker worker or its driver imports pandas
    otherwise, and importing it took 0.4-0.5 s in each worker and again in the scheduler's event
    loop: registering a freshly forked worker took 0.6-0.8 s, 0.05 s without it
    (``docs/scaling.md``, thirteenth pass). The versions reported are the same; a package
    already imported, or one whose distribution has another name, is read as before.
    """
    if _STATE.get("versions"):
        return False
    import importlib.metadata
    import sys

    from distributed import versions

    read = versions.get_package_info

    def get_package_info(packages: Any) -> dict[str, str | None]:
        packages = list(packages)
        imported = []
        found: dict[str, str | None] = {}
        for package in packages:
            name = package[0] if isinstance(package, (tuple, list)) else package
            if name in sys.modules:
                imported.append(package)
                continue
            try:
                found[name] = importlib.metadata.version(name)
            except (importlib.metadata.PackageNotFoundError, ValueError):
                imported.append(package)  # another distribution's name: import it, as before
        return {**read(imported), **found}

    versions.get_package_info = get_package_info
    _STATE["versions"] = True
    return True


def claim_preload() -> None:
    """Keep distributed from replacing our preload list by its own when it first asks for the
    forkserver context (``distributed.utils.get_mp_context``; call when distributed is
    imported, before the cluster starts)."""
    import distributed.utils

    distributed.utils._forkserver_preload_set = True


def start_early(argv: Sequence[str]) -> bool:
    """For the ``wmass histmaker`` / ``wmass demo`` command line ``argv``: when it will start a
    local cluster for certain (``--executor dask``, or ``--workers`` without ``--scheduler``
    or ``--cluster``), enable warm workers and start their server now, before the command
    imports its own stack. Returns whether it did.

    >>> start_early(["--executor", "iterative", "--workers", "2"])
    False
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--executor")
    pre.add_argument("--workers")
    pre.add_argument("--scheduler")
    pre.add_argument("--cluster")
    known, _ = pre.parse_known_args(list(argv))
    if known.scheduler or known.cluster or known.executor not in (None, "auto", "dask"):
        return False
    if known.executor != "dask" and not known.workers:
        return False
    return enable(start=True)
