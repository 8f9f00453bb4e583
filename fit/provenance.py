"""Provenance for every output file, and the one atomic writer of every output.

:func:`atomic_path` is how every file of the chain is written: under a unique temporary name
in the target's directory, fsynced, renamed into place, the directory fsynced; on failure the
temporary file is removed and the previous output is left intact. :func:`atomic_h5` and
:func:`atomic_write_text` are built on it.

This lives in ``fit`` because ``fit`` is the one room that must stand alone (it imports nothing
else of ours); ``analysis.io`` re-exports it so every output of the chain carries the same
``meta`` group: command, args, time, git hash, git diff, package versions, inputs.

>>> meta = provenance(args={"events": 10}, inputs=["a.root"])
>>> sorted(meta)
['args', 'command', 'git_diff', 'git_hash', 'inputs', 'time', 'versions']
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import glob
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import h5py

__all__ = [
    "PACKAGES",
    "atomic_h5",
    "atomic_path",
    "atomic_write_text",
    "provenance",
    "read_meta",
    "write_meta",
]

#: Packages whose versions are recorded in every output.
PACKAGES = (
    "wmass",
    "numpy",
    "scipy",
    "awkward",
    "uproot",
    "coffea",
    "hist",
    "boost-histogram",
    "numba",
    "correctionlib",
    "dask",
    "distributed",
    "dask-awkward",
    "jax",
    "jaxlib",
    "h5py",
    "pyhf",
    "iminuit",
)


def _git(*cmd: str, cwd: Path) -> str:
    try:
        out = subprocess.run(
            ["git", *cmd], cwd=cwd, capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _source_dir() -> Path:
    return Path(__file__).resolve().parent.parent


def _versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    return str(value)


def provenance(
    args: Mapping[str, Any] | None = None,
    inputs: Sequence[str | os.PathLike] = (),
    command: str | None = None,
) -> dict[str, Any]:
    """The provenance record of an output: who made it, how, from what, with which code."""
    src = _source_dir()
    return {
        "command": command if command is not None else " ".join(sys.argv),
        "args": _jsonable(dict(args or {})),
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "git_hash": _git("rev-parse", "HEAD", cwd=src),
        "git_diff": _git("diff", "HEAD", cwd=src),
        "versions": _versions(),
        "inputs": [str(p) for p in inputs],
    }


def write_meta(group: h5py.Group, meta: Mapping[str, Any]) -> None:
    """Store a provenance record as the ``meta`` group: one JSON-encoded attribute per key."""
    g = group.require_group("meta")
    for key, value in meta.items():
        g.attrs[key] = json.dumps(_jsonable(value))


def read_meta(group: h5py.Group) -> dict[str, Any]:
    """Read back what :func:`write_meta` stored (empty dict when there is no ``meta``)."""
    if "meta" not in group:
        return {}
    return {k: json.loads(v) for k, v in group["meta"].attrs.items()}


def _fsync(path: Path, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _host_prefix(path: Path) -> str:
    """How the temporaries of ``path`` written on this host begin (the pid follows)."""
    host = socket.gethostname().replace(".", "_") or "host"
    return f".{path.name}.{host}."


def temporary_prefix(path: Path, pid: int) -> str:
    """How :func:`atomic_path` begins the name of process ``pid``'s temporary for ``path``."""
    return f"{_host_prefix(path)}{pid}."


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of :func:`atomic_path` writes of ``path`` whose process (on this
    host) is gone -- a writer killed mid-write; returns the paths removed.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.h5"
    >>> dead = target.parent / (temporary_prefix(target, 2**22 + 1) + "abc.tmp")  # no such pid
    >>> _ = dead.write_text("half")
    >>> [p.name == dead.name for p in remove_stale_temporaries(target)], dead.exists()
    ([True], False)
    """
    path = Path(path)
    host_prefix = _host_prefix(path)
    removed = []
    for tmp in path.parent.glob(f"{glob.escape(host_prefix)}*.tmp"):
        pid_text = tmp.name[len(host_prefix) :].split(".", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(FileNotFoundError):  # another writer removed it first
            tmp.unlink()
            removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A unique temporary path beside ``path`` to write to; on success it is fsynced and renamed
    to ``path`` (and the directory fsynced), on an exception removed: ``path`` is either the
    complete new file or what it was before. Two processes writing the same ``path`` do not
    collide (the last rename wins).

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('done', ['out.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, name = tempfile.mkstemp(
        prefix=temporary_prefix(path, os.getpid()), suffix=".tmp", dir=path.parent
    )
    os.close(fd)
    tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's file is private; an output is not
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent, directory=True)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_path`; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


_IMAGES = itertools.count()  # names of the in-memory files of atomic_h5


@contextlib.contextmanager
def atomic_h5(
    path: str | os.PathLike, meta: Mapping[str, Any] | None = None, *, in_memory: bool = False
) -> Iterator[h5py.File]:
    """An HDF5 file written through :func:`atomic_path`, with the provenance ``meta`` group.

    A crash or exception leaves no file that looks complete. ``in_memory``: the file is made
    in memory and written as bytes at the end, so a full disk fails one plain write (an
    ``OSError``) instead of HDF5 writes, which leave objects that fail again when freed and can
    crash the interpreter at exit; costs the file's size in memory.
    """
    if not in_memory:
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            if meta is not None:
                write_meta(f, meta)
            yield f
        return
    # HDF5's own in-memory driver: its reads and writes are memcpy, not calls into Python as
    # with an io.BytesIO (thousands while the axes of a W-mass hists.h5 are copied)
    name = f"wmass-image-{os.getpid()}-{next(_IMAGES)}"
    with h5py.File(name, "w", driver="core", backing_store=False, block_size=1 << 20) as f:
        if meta is not None:
            write_meta(f, meta)
        yield f
        f.flush()
        image = f.id.get_file_image()
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        out.write(image)
