"""Broken input, and chunks that cannot be processed: which failures skip a file, which stop.

- A file that cannot be read (:class:`~processors.errors.BadInputFile`: not ROOT, truncated,
  garbage, empty, no ``Events`` tree, unreadable path) or lacks a branch the analysis needs
  (:class:`~processors.errors.MissingBranch`) is a property of the *file*: retrying will not
  help. Without ``--skip-bad-files`` the run stops with that error (it names the file and the
  reason); with it, the file is given up, recorded in ``files_failed`` with the reason, and the
  normalisation (sum of weights, luminosity) counts only the files processed.
- Anything else (a worker killed again and again on the same chunk, a bug, a full disk) is
  retried by Dask and then stops the run with :class:`ChunkFailed`, naming the chunk, its file
  and the error: never silently.

The errors are sent back from the workers as values, so they are registered with
:mod:`copyreg` here to pickle with their fields (their ``__init__`` takes more than a message).
"""

from __future__ import annotations

import copyreg
from typing import Any

from analysis.runner.chunks import chunk_key
from processors.errors import BadInputFile, ConfigError, MissingBranch, WMassError

__all__ = ["SKIPPABLE", "ChunkFailed", "chunk_label", "is_skippable"]

#: failures that belong to a file, which ``--skip-bad-files`` gives up
SKIPPABLE: tuple[type[WMassError], ...] = (BadInputFile, MissingBranch)


class ChunkFailed(WMassError):
    """A chunk could not be processed after its retries; the chunk, file and error are named."""

    exit_code = 10

    def __init__(self, chunk: str, filename: str, error: str) -> None:
        self.chunk, self.filename, self.error = chunk, filename, error
        super().__init__(f"{chunk} could not be processed: {error}")


def chunk_label(item: Any) -> str:
    """``"chunk wmunu:/path/f.root[0:1000]"`` for a coffea ``WorkItem`` (or a tuple
    ``(dataset, file, start, stop)``)."""
    dataset, filename, start, stop = chunk_key(item)
    return f"chunk {dataset}:{filename}[{start}:{stop}]"


def is_skippable(err: BaseException) -> bool:
    """Whether ``err`` is a property of the input file (``--skip-bad-files`` gives it up)."""
    return isinstance(err, SKIPPABLE)


def _rebuild(cls: type, message: str, fields: dict[str, Any]) -> BaseException:
    err = cls.__new__(cls)
    err.args = (message,)
    err.__dict__.update(fields)
    return err


def _reduce(err: BaseException) -> tuple[Any, tuple[Any, ...]]:
    return _rebuild, (type(err), str(err), dict(vars(err)))


for _cls in (BadInputFile, MissingBranch, ConfigError, ChunkFailed):
    copyreg.pickle(_cls, _reduce)
