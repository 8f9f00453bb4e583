"""Reading the fit's own HDF5 files: one place that turns every failure into a named error.

>>> with open_fit_file("fitresult.h5", "fitresult") as f:  # doctest: +SKIP
...     names = strings(f["parameters/names"])
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import h5py

from .errors import FitInputError

__all__ = ["open_fit_file", "strings"]


@contextlib.contextmanager
def open_fit_file(path: str | os.PathLike, kind: str) -> Iterator[h5py.File]:
    """Open ``path`` for reading and check its root attribute ``kind``.

    A file that is not HDF5, is of another kind, or lacks or mangles what the reader inside the
    ``with`` block asks for raises :class:`FitInputError` naming the file.
    """
    where = str(path)
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise FitInputError(f"cannot open as HDF5: {err}", where=where) from None
    with f:
        try:
            found = f.attrs.get("kind")
        except (OSError, KeyError, ValueError, TypeError) as err:  # corrupted attribute storage
            message = f"malformed file, unreadable root attributes: {err}"
            raise FitInputError(message, where=where) from None
        if found != kind:
            raise FitInputError(f"root attribute kind is {found!r}, not {kind!r}", where=where)
        try:
            yield f
        except FitInputError:
            raise
        except KeyError as err:
            raise FitInputError(f"malformed file, missing {err}", where=where) from None
        except (ValueError, TypeError, IndexError) as err:
            raise FitInputError(f"malformed file: {err}", where=where) from None
        except OSError as err:  # HDF5 failing to read an object, e.g. a corrupted chunk
            raise FitInputError(f"malformed file, unreadable: {err}", where=where) from None


def strings(ds: h5py.Dataset) -> list[str]:
    """A dataset of (byte) strings as a list of ``str``."""
    return [s.decode() if isinstance(s, bytes) else str(s) for s in ds[()]]
