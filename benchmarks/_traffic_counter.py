"""Counts the bytes a process sends and receives over distributed's TCP comms.

Loaded by ``benchmarks/scheduler_traffic.py`` into the scheduler (``dask scheduler --preload
benchmarks/_traffic_counter.py``) and into the driver (imported). It wraps the two places every
TCP message passes -- ``TCP.write`` (returns the bytes it wrote) and ``read_bytes_rw`` (reads
each frame) -- so the counts are the payloads themselves, headers aside.
"""

from __future__ import annotations

from typing import Any

import distributed.comm.tcp as tcp

COUNTS = {"read": 0, "written": 0}

if not getattr(tcp, "_wmass_counted", False):
    _read_bytes_rw = tcp.read_bytes_rw
    _write = tcp.TCP.write

    async def _counted_read(stream: Any, n: int) -> Any:
        COUNTS["read"] += n
        return await _read_bytes_rw(stream, n)

    async def _counted_write(
        self: Any, msg: Any, serializers: Any = None, on_error: str = "message"
    ) -> int:
        n = await _write(self, msg, serializers, on_error)
        COUNTS["written"] += n
        return n

    tcp.read_bytes_rw = _counted_read
    tcp.TCP.write = _counted_write
    tcp._wmass_counted = True


def counts(dask_scheduler: Any = None) -> dict[str, int]:
    """The bytes read and written so far (``client.run_on_scheduler(counts)`` for the scheduler's)."""
    return dict(COUNTS)


def dask_setup(scheduler: Any) -> None:
    """The preload hook: the counts hang on the scheduler, where a client's function reads
    them (``client.run_on_scheduler``)."""
    scheduler.wmass_traffic = COUNTS
