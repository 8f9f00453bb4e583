"""A chunk run in this process reuses the memory the last chunk freed, instead of new pages.

A chunk allocates arrays of events times variations: 200k W events and 100 PDF weights are
160 MB. glibc's ``malloc`` serves every allocation above its mmap threshold (at most 32 MB) with
a fresh ``mmap`` and gives it back with ``munmap`` when it is freed, so the next chunk's arrays
fault their pages in again: 0.125 faults per event, many of them 2 MB huge pages that the
kernel zeroes. With the chunks' arrays taken from the heap, and the heap kept between chunks,
the same chunks ran 1.2x faster in one process with 0.0007 faults per event
(``benchmarks/heap.py``; ``docs/scaling.md``, tenth pass).

- :func:`chunk_heap`: while a chunk runs, no ``mmap``; and from the first chunk on, up to
  :data:`KEEP_FREED_BYTES` of freed memory stay at the heap's top for the next chunk. The
  iterative executor runs each chunk under it (``analysis.runner.execute``).
- :func:`release_freed_memory`: glibc's default again, and the kept memory handed back; the
  iterative executor calls it when its run ends, so a notebook's kernel keeps nothing.
- :data:`WORKER_ENVIRONMENT`: the same switches for a whole worker process, set in its
  environment before it starts (``analysis.runner.cluster``), with every thread on the main
  heap: a Dask worker runs its chunks on a pool thread, whose own heaps map large arrays
  whatever the switches say. On one worker alone, the same chunks then ran as fast as in one
  process under :func:`chunk_heap` (1.22x the worker without them; ``benchmarks/heap.py``).
  The worker hands its kept memory back when a run ends
  (``release_freed_memory(keep_switches=True)``). Only for workers with one thread: on one
  heap, the threads of a worker with several would share one lock (not measured), so those
  keep glibc's defaults.

All are glibc's own switches (``mallopt``, ``malloc_trim``, its ``MALLOC_*`` variables);
elsewhere (macOS, musl) nothing changes.

>>> import numpy as np
>>> with chunk_heap():
...     total = sum(float(np.ones(2_000_000).sum()) for _ in range(3))
>>> total
6000000.0
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import threading
from collections.abc import Iterator
from typing import Any

__all__ = [
    "KEEP_FREED_BYTES",
    "WORKER_ENVIRONMENT",
    "chunk_heap",
    "release_freed_memory",
    "supported",
]

#: freed memory at the heap's top is kept up to this many bytes (a chunk of 200k events frees
#: up to ~250 MB at once; more goes back to the system as it is freed)
KEEP_FREED_BYTES = 1 << 30

#: glibc's environment for a worker process whose chunks run on one thread (a Dask worker with
#: one thread, as every local cluster started here has): no ``mmap`` at all, up to
#: :data:`KEEP_FREED_BYTES` of freed memory kept at the heap's top, and every thread on the
#: process's main heap. A worker's tasks run on a pool thread, and a thread's own heaps (64 MB
#: each at most) map any larger array afresh whatever the other switches say.
WORKER_ENVIRONMENT: dict[str, str] = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(KEEP_FREED_BYTES),
    "MALLOC_ARENA_MAX": "1",
}

# mallopt's parameters (malloc.h) and glibc's defaults for them
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536

_LOCK = threading.Lock()
_RUNNING = [0]  # chunks running now under chunk_heap, in all threads


@functools.cache
def _glibc() -> Any:
    """The C library's ``mallopt`` and ``malloc_trim`` when it is glibc, else None."""
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl has a mallopt that does nothing)
        mallopt, malloc_trim = libc.mallopt, libc.malloc_trim
    except (AttributeError, OSError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    malloc_trim.argtypes, malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return mallopt, malloc_trim


def supported() -> bool:
    """Whether this process's C library is glibc, whose switches this module sets."""
    return _glibc() is not None


@contextlib.contextmanager
def chunk_heap() -> Iterator[bool]:
    """While the block runs (a chunk): large arrays come from the heap, not from ``mmap``; and
    from now on up to :data:`KEEP_FREED_BYTES` of freed memory stay in the process. ``mmap``
    comes back when no block is running in any thread. Yields whether it took effect (False
    where the C library is not glibc).

    Setting a switch stops glibc from moving its mmap threshold by itself; it stays where it
    was (128 kB in a new process).
    """
    libc = _glibc()
    if libc is None:
        yield False
        return
    mallopt = libc[0]
    with _LOCK:
        if _RUNNING[0] == 0:
            mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES)
            mallopt(_M_MMAP_MAX, 0)
        _RUNNING[0] += 1
    try:
        yield True
    finally:
        with _LOCK:
            _RUNNING[0] -= 1
            if _RUNNING[0] == 0:
                mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)


def release_freed_memory(*, keep_switches: bool = False) -> bool:
    """Hand the freed memory that the process keeps back to the system, with glibc's trim
    threshold again unless ``keep_switches`` (a worker started with
    :data:`WORKER_ENVIRONMENT` keeps its switches, and keeps freed memory again in its next
    run). Returns False where the C library is not glibc."""
    libc = _glibc()
    if libc is None:
        return False
    mallopt, malloc_trim = libc
    with _LOCK:
        if _RUNNING[0] == 0 and not keep_switches:
            mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
    malloc_trim(0)
    return True
