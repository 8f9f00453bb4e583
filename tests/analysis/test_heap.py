"""A chunk's arrays reuse the memory the last chunk freed instead of faulting fresh pages in
(analysis.heap).

The case runs in a fresh interpreter (without ``MALLOC_*`` variables), so that no other
test's allocations are in its heap. A 100 MB array is the size of one chunk's weights
times variations; made again by the next chunk it takes a handful of page faults when the heap
kept it, and one per page (25,600 of 4 kB, or 50 of 2 MB with transparent huge pages) when
glibc gave it back to the system.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from analysis.heap import supported

pytestmark = pytest.mark.skipif(
    not supported() or not sys.platform.startswith("linux"), reason="glibc's malloc on Linux"
)

REFAULTS = """
import contextlib, json, resource, numpy as np
from analysis.heap import chunk_heap, release_freed_memory

def chunk(heap, megabytes=100):
    with heap():
        np.ones(megabytes * 2**20 // 8).sum()

def refaults(heap=chunk_heap):
    chunk(heap)  # the first chunk: its pages come from the system
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    chunk(heap)
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
"""

#: at least one fault per 2 MB huge page of 100 MB, when the array's pages are new
FRESH = 50
#: the array's pages reused: a few faults for the interpreter's own small allocations
KEPT = 10


def _faults(body: str) -> dict[str, int]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", REFAULTS + body],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_next_chunk_reuses_what_the_last_one_freed_until_the_memory_is_released():
    faults = _faults(
        "plain = refaults(contextlib.nullcontext)\n"
        "kept = refaults()\n"
        "release_freed_memory()\n"
        "after = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt\n"
        "np.ones(100 * 2**20 // 8).sum()  # outside a chunk, after the release\n"
        "after = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - after\n"
        "print(json.dumps({'plain': plain, 'kept': kept, 'after': after}))\n"
    )
    assert faults["kept"] < KEPT, faults
    assert faults["plain"] >= FRESH and faults["after"] >= FRESH, faults
