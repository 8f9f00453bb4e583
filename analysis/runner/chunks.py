"""One chunk: its identity ``(dataset, file, start, stop)`` and the processing of its entries.

The lowest module of :mod:`analysis.runner`: the ledger, the bad-file rules, the checkpoint and
the executor all refer to chunks by :func:`chunk_key`, and the executor's tasks call
:func:`process_chunk`.
"""

from __future__ import annotations

import contextlib
import zlib
from typing import Any

from coffea.processor.executor import WorkItem

from analysis.datasets import open_events, release_kept_arrays
from processors.errors import BadInputFile, WMassError

__all__ = ["chunk_key", "process_chunk"]


def chunk_key(chunk: Any) -> tuple[str, str, int, int]:
    """``(dataset, file, start, stop)`` of a coffea ``WorkItem`` or of such a tuple."""
    if hasattr(chunk, "entrystart"):  # WorkItem(dataset, filename, treename, entrystart, ...)
        return (
            str(chunk.dataset),
            str(chunk.filename),
            int(chunk.entrystart),
            int(chunk.entrystop),
        )
    return (str(chunk[0]), str(chunk[1]), int(chunk[2]), int(chunk[3]))


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
    finally:
        release_kept_arrays()
