"""Freed memory stays in the process while it runs chunks, instead of going back to the system.

A chunk allocates arrays of events times variations: 200k W events and 100 PDF weights are
160 MB. glibc's ``malloc`` serves every allocation above its mmap threshold (at most 32 MB) with
a fresh ``mmap`` and gives it back with ``munmap`` when it is freed, so the next chunk's arrays
fault their pages in again, one 4 kB page at a time: 0.125 faults per event, and on this VM a
fault costs 2-12 µs. Processing the same chunks with the heap kept (``mmap`` off, freed memory
kept up to :data:`KEEP_FREED_BYTES` at the heap's top) took 1.36-1.44 µs per event against
1.89-1.97, with 0.0007 faults per event (``docs/scaling.md``, tenth pass). The peak memory is
the chunk's, as before (+7 % on that run, from fragmentation); the difference is that a process
between chunks keeps the memory its last chunk used.

Two ways in, both glibc's own switches; elsewhere (macOS, musl) nothing changes:

- :func:`kept_freed_memory`: for the block, in this process (``histmaker`` runs its chunks
  under it with ``--executor iterative``). ``mallopt`` at run time; at the block's end the
  defaults come back and ``malloc_trim`` hands the kept memory back. Not for the driver of a
  Dask run, which runs no chunk: there it made the harvest and the whole command slower
  (12.7 s against 14.3 s, medians of 7 runs).
- :data:`MALLOC_ENVIRONMENT`: the same as environment variables, read by glibc when a process
  starts, for the worker processes of the clusters started here
  (:func:`analysis.warmstart.spawn_environment`). It also keeps every thread on the main heap
  (``MALLOC_ARENA_MAX=1``): a worker runs its chunks on a pool thread, whose own heaps (64 MB at
  most each) would still hand large arrays to ``mmap``.

>>> MALLOC_ENVIRONMENT["MALLOC_MMAP_MAX_"]
'0'
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Iterator
from typing import Any

__all__ = [
    "KEEP_FREED_BYTES",
    "MALLOC_ENVIRONMENT",
    "keep_freed_memory",
    "kept_freed_memory",
    "supported",
]

#: freed memory at the heap's top is kept up to this many bytes (a chunk of 200k events frees
#: up to ~250 MB at once; the rest goes back to the system as it is freed)
KEEP_FREED_BYTES = 1 << 30

#: glibc's environment variables for the same settings, for processes started from here
MALLOC_ENVIRONMENT: dict[str, str] = {
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(KEEP_FREED_BYTES),
    "MALLOC_ARENA_MAX": "1",
}

# mallopt's parameters (malloc.h) and glibc's defaults for them
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536

_DEPTH = [0]  # blocks of kept_freed_memory open in this process


@functools.cache
def _glibc() -> Any:
    """The C library's ``mallopt`` and ``malloc_trim`` when it is glibc, else None."""
    try:
        libc = ctypes.CDLL(None)
        gnu_get_libc_version = libc.gnu_get_libc_version  # glibc only (musl has a stub mallopt)
        mallopt, malloc_trim = libc.mallopt, libc.malloc_trim
    except (AttributeError, OSError):
        return None
    gnu_get_libc_version.restype = ctypes.c_char_p
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    malloc_trim.argtypes, malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return mallopt, malloc_trim


def supported() -> bool:
    """Whether this process's C library is glibc, whose switches this module sets."""
    return _glibc() is not None


def keep_freed_memory(keep: bool = True) -> bool:
    """From now on, in this whole process: ``keep`` freed memory (no ``mmap``, up to
    :data:`KEEP_FREED_BYTES` kept at the heap's top), or, with ``keep=False``, glibc's defaults
    again and the kept memory handed back. Returns False where the C library is not glibc.

    Setting either switch stops glibc from moving its mmap threshold by itself; after
    ``keep=False`` it stays where it was.
    """
    libc = _glibc()
    if libc is None:
        return False
    mallopt, malloc_trim = libc
    if keep:
        done = mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, KEEP_FREED_BYTES)
    else:
        done = mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX) and mallopt(
            _M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD
        )
        malloc_trim(0)
    return bool(done)


@contextlib.contextmanager
def kept_freed_memory() -> Iterator[bool]:
    """:func:`keep_freed_memory` for the block; at its end glibc's defaults come back and the
    kept memory is handed back (when the outermost such block ends). Yields whether it took
    effect (False where not glibc).

    >>> import numpy as np
    >>> with kept_freed_memory():
    ...     total = sum(float(np.ones(2_000_000).sum()) for _ in range(3))
    >>> total
    6000000.0
    """
    kept = keep_freed_memory()
    _DEPTH[0] += 1
    try:
        yield kept
    finally:
        _DEPTH[0] -= 1
        if kept and _DEPTH[0] == 0:  # an enclosing block keeps it until its own end
            keep_freed_memory(False)
