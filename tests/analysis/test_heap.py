"""A process running chunks keeps the memory a chunk frees: the next chunk's arrays reuse it
instead of faulting fresh pages in (analysis.heap).

Each case runs in a fresh interpreter, so that glibc reads its environment at start and no
other test's allocations are in its heap. A 100 MB array is the size of one chunk's weights
times variations; made a second time it takes a handful of page faults when the heap kept it,
and one per page (25,600 of 4 kB, or 50 of 2 MB with transparent huge pages) when glibc gave
it back to the system.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from analysis.heap import MALLOC_ENVIRONMENT, supported

pytestmark = pytest.mark.skipif(
    not supported() or not sys.platform.startswith("linux"), reason="glibc's malloc on Linux"
)

REFAULTS = """
import resource, numpy as np
def refaults(megabytes=100):
    n = megabytes * 2**20 // 8
    np.ones(n).sum()  # the pages come from the system once
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    np.ones(n).sum()
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
"""

#: at least one fault per 2 MB huge page of 100 MB, when the array's pages are new
FRESH = 50
#: the array's pages reused: a few faults for the interpreter's own small allocations
KEPT = 10


def _faults(body: str, env: dict[str, str] | None = None) -> dict[str, int]:
    code = REFAULTS + body
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_block_that_keeps_freed_memory_reuses_a_chunks_arrays_and_gives_them_back_after():
    faults = _faults(
        "import json\n"
        "from analysis.heap import kept_freed_memory\n"
        "default = refaults()\n"
        "with kept_freed_memory() as kept:\n"
        "    inside = refaults()\n"
        "after = refaults()\n"
        "print(json.dumps({'default': default, 'inside': inside, 'after': after, 'kept': kept}))\n"
    )
    assert faults["kept"] == 1
    assert faults["inside"] < KEPT, faults
    assert faults["default"] >= FRESH and faults["after"] >= FRESH, faults


def test_a_worker_started_with_the_environment_reuses_memory_on_its_pool_thread():
    body = (
        "import json\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "with ThreadPoolExecutor(1) as pool:\n"
        "    print(json.dumps({'pool': pool.submit(refaults).result()}))\n"
    )
    assert _faults(body, MALLOC_ENVIRONMENT)["pool"] < KEPT
    assert _faults(body)["pool"] >= FRESH  # the control: glibc's defaults
