"""Provenance for every output file, and atomic HDF5 writes.

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
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import h5py

__all__ = ["PACKAGES", "atomic_h5", "provenance", "read_meta", "write_meta"]

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


@contextlib.contextmanager
def atomic_h5(
    path: str | os.PathLike, meta: Mapping[str, Any] | None = None
) -> Iterator[h5py.File]:
    """Open ``path`` for writing under a temporary name; rename it into place only on success.

    A crash or exception leaves no file that looks complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            if meta is not None:
                write_meta(f, meta)
            yield f
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
