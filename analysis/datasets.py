"""The fileset: ``datasets.yaml`` (see ``docs/samples.md``) and opening its files as NanoEvents.

:func:`load_datasets` reads and checks the YAML; every mistake raises
:class:`~processors.errors.ConfigError` naming the key and the file. :func:`open_events` opens one
ROOT file (local path or ``root://`` URL) with coffea's ``NanoEventsFactory`` and
``NanoAODSchema``; a file that cannot be read raises :class:`~processors.errors.BadInputFile`
naming it, and :func:`require_branches` raises :class:`~processors.errors.MissingBranch`.
:func:`read_gen_event_sumw` reads the sum of generator weights of an MC file from its ``Runs``
tree. A dataset without ``process:`` belongs to the process of its own name.

>>> ds = load_datasets("samples/datasets.yaml")  # doctest: +SKIP
>>> ds["wmunu"].files[0]  # doctest: +SKIP
'/abs/path/samples/wmunu/nano_0.root'
>>> events = open_events(ds["wmunu"].files[0], entry_stop=1000)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import http.client
import importlib
import math
import os
import struct
import threading
import warnings
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from processors.errors import BadInputFile, ConfigError

__all__ = [
    "Dataset",
    "Fileset",
    "TreeEntries",
    "drop_kept_files",
    "is_url",
    "load_datasets",
    "num_entries",
    "open_events",
    "read_gen_event_sumw",
    "release_kept_arrays",
    "require_branches",
    "tree_entries",
]

#: key -> (accepted types, required); ``process`` defaults to the dataset's name
_DATASET_KEYS: dict[str, tuple[tuple[type, ...], bool]] = {
    "process": ((str,), False),
    "is_data": ((bool,), True),
    "files": ((list,), True),
    "xsec_pb": ((int, float, type(None)), False),
    "sumw": ((int, float, type(None)), False),
    "nevents": ((int, type(None)), False),
    "lumi_csv": ((str, type(None)), False),
    "golden_json": ((str, type(None)), False),
    "treename": ((str,), False),
    "mass_reference_gev": ((int, float, type(None)), False),
}
_TOP_KEYS = {"datasets", "lumi_pb"}


@dataclass(frozen=True)
class Dataset:
    """One dataset of the fileset; paths are absolute (or URLs)."""

    name: str
    process: str
    files: tuple[str, ...]
    is_data: bool
    xsec_pb: float | None
    sumw: float | None  # None: computed from the processed files' genWeight
    nevents: int | None
    lumi_csv: str | None
    golden_json: str | None
    treename: str = "Events"
    #: MC with mass weights: the boson mass (GeV) at which it was generated; the shifts of its
    #: ``MEParamWeight`` (``massShift{d}MeV``) are relative to it. None: not known / no weights.
    mass_reference_gev: float | None = None

    def subset(self, max_files: int) -> Dataset:
        """The first ``max_files`` files; sum of weights and event count then come from the
        files actually processed, not from the YAML."""
        if max_files >= len(self.files):
            return self
        return replace(self, files=self.files[:max_files], sumw=None, nevents=None)


class Fileset(dict):
    """``{name: Dataset}`` as read from a YAML, with the file it came from and ``lumi_pb``."""

    source: str = ""
    lumi_pb: float | None = None


def is_url(path: str) -> bool:
    """Whether ``path`` is a URL (``root://``, ``https://``, ...) rather than a local path."""
    return "://" in str(path)


def _resolve(value: str, base: Path, key: str, source: str) -> str:
    if is_url(value):
        return value
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = base / path
    if not path.exists():
        raise ConfigError(key, f"no such file {path}", source=source)
    return str(path.resolve())


def _check_type(value: Any, types: tuple[type, ...], key: str, source: str) -> None:
    # True is an int in Python, but not a number in a YAML field
    ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
    if not ok:
        names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        raise ConfigError(key, f"must be {names}, got {value!r}", source=source)


def _positive(value: float | None, key: str, source: str) -> float | None:
    """``value`` as a float if it is a finite number > 0 (None passes); else ConfigError."""
    if value is None:
        return None
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(key, f"must be a positive number, got {value!r}", source=source)
    return float(value)


def _check_name(name: Any, where: str, source: str) -> None:
    """A dataset name becomes an HDF5 group name in hists.h5 and a checkpoint: a non-empty
    string without '/', NUL, or the names '.' and '..'."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(where, f"a dataset name must be a non-empty string, got {name!r}", source)
    if "/" in name or "\0" in name or name in (".", ".."):
        raise ConfigError(where, f"a dataset name cannot contain '/' or NUL: {name!r}", source)


def load_datasets(path: str | os.PathLike, *, max_files: int | None = None) -> Fileset:
    """Read ``datasets.yaml`` into ``{name: Dataset}`` (a :class:`Fileset`).

    ``max_files``: keep the first N files of each dataset (in YAML order, so the subset is
    deterministic); the normalisation then follows the subset (``sumw`` is left to be
    computed from the processed files).
    """
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ConfigError("datasets", f"no such file {path}", source=source)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError("datasets", f"not valid YAML: {err}", source=source) from err
    except UnicodeDecodeError as err:
        raise ConfigError(
            "datasets", f"not UTF-8 text ({err.reason} at byte {err.start})", source=source
        ) from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ConfigError("datasets", "not valid YAML: nested too deeply", source=source) from None
    except OSError as err:
        raise ConfigError("datasets", f"cannot read the file ({err})", source=source) from None
    if not isinstance(doc, Mapping):
        raise ConfigError("datasets", "top level must be a mapping", source=source)
    unknown = sorted(set(doc) - _TOP_KEYS)
    if unknown:
        raise ConfigError(unknown[0], f"unknown key; allowed {sorted(_TOP_KEYS)}", source)
    if "datasets" not in doc:
        raise ConfigError("datasets", "missing required key", source=source)
    entries = doc["datasets"]
    if not isinstance(entries, Mapping) or not entries:
        raise ConfigError("datasets", "must be a non-empty mapping name -> dataset", source)
    lumi = doc.get("lumi_pb")
    _check_type(lumi, (int, float, type(None)), "lumi_pb", source)
    if max_files is not None and max_files < 1:
        raise ConfigError("max_files", f"must be >= 1, got {max_files}", source=source)

    base = path.resolve().parent
    out = Fileset()
    out.source, out.lumi_pb = str(path.resolve()), lumi
    for name, entry in entries.items():
        where = f"datasets.{name}"
        _check_name(name, where, source)
        if not isinstance(entry, Mapping):
            raise ConfigError(where, "must be a mapping", source=source)
        unknown = sorted(set(entry) - set(_DATASET_KEYS))
        if unknown:
            raise ConfigError(
                f"{where}.{unknown[0]}", f"unknown key; allowed {sorted(_DATASET_KEYS)}", source
            )
        for key, (types, required) in _DATASET_KEYS.items():
            if key not in entry:
                if required:
                    raise ConfigError(f"{where}.{key}", "missing required key", source=source)
                continue
            _check_type(entry[key], types, f"{where}.{key}", source)
        mass_ref = _positive(entry.get("mass_reference_gev"), f"{where}.mass_reference_gev", source)
        xsec = _positive(entry.get("xsec_pb"), f"{where}.xsec_pb", source)
        sumw = entry.get("sumw")
        if sumw is not None and not (math.isfinite(sumw) and sumw != 0):
            # the MC is scaled by xsec * lumi / sumw: a zero or non-finite sum cannot be
            raise ConfigError(
                f"{where}.sumw", f"must be a finite non-zero number, got {sumw!r}", source
            )
        if entry["is_data"] and mass_ref is not None:
            raise ConfigError(
                f"{where}.mass_reference_gev", "data have no mass weights; MC only", source
            )
        files = entry["files"]
        if not files:
            raise ConfigError(f"{where}.files", "no files", source=source)
        resolved = []
        for i, f in enumerate(files):
            _check_type(f, (str,), f"{where}.files[{i}]", source)
            resolved.append(_resolve(f, base, f"{where}.files[{i}]", source))
        extra = {
            key: _resolve(entry[key], base, f"{where}.{key}", source)
            if entry.get(key) is not None
            else None
            for key in ("lumi_csv", "golden_json")
        }
        ds = Dataset(
            name=str(name),
            process=entry.get("process", str(name)),
            files=tuple(resolved),
            is_data=entry["is_data"],
            xsec_pb=xsec,
            sumw=None if sumw is None else float(sumw),
            nevents=entry.get("nevents"),
            treename=entry.get("treename", "Events"),
            mass_reference_gev=mass_ref,
            **extra,
        )
        out[ds.name] = ds.subset(max_files) if max_files is not None else ds
    return out


def _why(err: BaseException) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())}"


def _bad_file_errors() -> tuple[type[BaseException], ...]:
    """What uproot and its decompressors raise for a file that is not a readable ROOT file:
    I/O (``OSError``: missing, truncated, a directory, XRootD/HTTP failures), "not a ROOT
    file" and checksum mismatches (``ValueError``), keys and records that do not deserialise,
    and corrupt compressed baskets. Programming errors (``TypeError``, ``AttributeError``, ...)
    are not in it: they pass as they are."""
    import uproot

    errors: list[type[BaseException]] = [
        OSError,
        EOFError,
        ValueError,
        KeyError,
        IndexError,
        NotImplementedError,  # a ROOT feature of the file uproot cannot read
        struct.error,
        zlib.error,
        http.client.HTTPException,
        uproot.deserialization.DeserializationError,
    ]
    for module, name in (("lz4.block", "LZ4BlockError"), ("cramjam", "DecompressionError")):
        # a codec that is not installed cannot raise its error either
        with contextlib.suppress(ImportError, AttributeError):
            errors.append(getattr(importlib.import_module(module), name))
    return tuple(errors)


def local_read_options() -> dict[str, Any]:
    """How uproot reads a local file here: in the thread that asks, with plain ``read`` calls.

    uproot's default for any path is its fsspec source. There every basket read goes from the
    reading thread to fsspec's event loop thread and on to a pool of three more threads, and
    each hop takes the GIL. In a Dask worker whose two cores are busy, those threads took
    ~15 % of a core beside the compute thread (``docs/scaling.md``). A URL (``root://``,
    ``https://``) keeps uproot's default; a ``handler`` given by the caller wins.

    >>> local_read_options()["use_threads"]
    False
    """
    from uproot.source.file import MultithreadedFileSource

    return {"handler": MultithreadedFileSource, "use_threads": False}


def _open_file(path: str, **uproot_options: Any) -> Any:
    """``path`` opened by uproot, or :class:`BadInputFile` saying why not."""
    import uproot

    if not is_url(path):
        if not Path(path).is_file():
            raise BadInputFile(
                path, "a directory, not a file" if Path(path).is_dir() else "no such file"
            )
        uproot_options = {**local_read_options(), **uproot_options}
    try:
        file = uproot.open(path, **uproot_options)
    except _bad_file_errors() as err:
        raise BadInputFile(path, f"not a readable ROOT file ({_why(err)})") from err
    if not is_url(path):
        # uproot reads only the records it needs, so a file cut after the baskets of the
        # branches read would pass unnoticed: the header knows where the file ends
        size, end = Path(path).stat().st_size, int(file.file.fEND)
        if end > size:
            file.close()
            raise BadInputFile(
                path,
                f"truncated: the ROOT header says the file ends at byte {end}, it has {size} "
                "bytes (or the header is corrupt)",
            )
    return file


def _open_tree(path: str, treename: str, **uproot_options: Any) -> Any:
    """The ``treename`` TTree of ``path`` (uproot), or :class:`BadInputFile` saying why not."""
    import uproot

    file = _open_file(path, **uproot_options)
    bad_file = _bad_file_errors()
    try:
        tree = file[treename]
    except uproot.KeyInFileError as err:
        file.close()
        raise BadInputFile(path, f"no {treename!r} tree") from err
    except bad_file as err:
        file.close()
        raise BadInputFile(path, f"cannot read the {treename!r} tree ({_why(err)})") from err
    if not hasattr(tree, "num_entries"):
        file.close()
        raise BadInputFile(path, f"{treename!r} is not a tree")
    return tree


#: trees of recently read files, kept open per thread for the next chunk of the same file
_KEPT = threading.local()
#: how many files a thread keeps open (a worker reads its chunks file after file)
KEEP_OPEN = 4


def _file_state(path: str) -> tuple[int, ...]:
    """What changes when a local file is rewritten (size, mtime, inode); nothing for a URL."""
    if is_url(path):
        return ()
    try:
        st = os.stat(path)
    except OSError:
        return (-1,)  # let _open_file say what is wrong with it
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def _kept_tree(path: str, treename: str, **uproot_options: Any) -> Any:
    """:func:`_open_tree`, reusing the tree this thread opened for an earlier chunk of the same
    file while the file is unchanged: a chunk then skips reading the TTree's metadata and
    interpreting its branches again (~5 % of a 100k-event chunk, more for smaller chunks).
    The ``KEEP_OPEN`` most recent files are kept; :func:`drop_kept_files` forgets them, and
    :func:`release_kept_arrays` empties their array caches when a chunk is done. A file
    forgotten is not closed here: it closes when no events read from it remain (as before,
    so that events a notebook holds can still read their columns)."""
    kept = getattr(_KEPT, "trees", None)
    if kept is None:
        kept = _KEPT.trees = OrderedDict()
    key = (path, treename, repr(sorted(uproot_options.items())), _file_state(path))
    tree = kept.get(key)
    if tree is not None:
        kept.move_to_end(key)
        return tree
    tree = _open_tree(path, treename, **uproot_options)
    kept[key] = tree
    while len(kept) > KEEP_OPEN:
        kept.popitem(last=False)
    return tree


def release_kept_arrays() -> None:
    """Empty the array caches of the files this thread keeps open: uproot keeps up to 100 MB
    of a file's decompressed baskets, which a chunk reads more than once but the next chunk,
    another entry range, never needs."""
    for tree in getattr(_KEPT, "trees", {}).values():
        cache = getattr(tree.file, "array_cache", None)
        if cache is not None and hasattr(cache, "clear"):
            cache.clear()


def drop_kept_files() -> None:
    """Forget the files this thread keeps for its next chunks (:func:`open_events`); each
    closes when nothing read from it remains."""
    kept = getattr(_KEPT, "trees", None)
    if kept:
        kept.clear()


class TreeEntries(NamedTuple):
    """What planning needs of a file's tree: its entries, the file's UUID, and where its
    clusters start (``clusters``: ascending entry numbers from 0 to ``entries``, the entries at
    which every branch starts a new basket; ``(0, entries)`` when they do not line up)."""

    entries: int
    uuid: bytes
    clusters: tuple[int, ...]


def tree_entries(path: str, treename: str = "Events", **uproot_options: Any) -> TreeEntries:
    """:class:`TreeEntries` of a file's tree; :class:`BadInputFile` if unreadable."""
    tree = _open_tree(path, treename, **uproot_options)
    try:
        n = int(tree.num_entries)
        try:
            clusters = tuple(int(c) for c in tree.common_entry_offsets())
        except (AttributeError, TypeError, ValueError):  # not a TTree with branches
            clusters = ()
        if len(clusters) < 2 or clusters[0] != 0 or clusters[-1] != n:
            clusters = (0, n)
        return TreeEntries(n, bytes(tree.file.fUUID), clusters)
    finally:
        tree.file.close()


def num_entries(path: str, treename: str = "Events", **uproot_options: Any) -> tuple[int, bytes]:
    """``(number of entries, file UUID)`` of a file's tree; :class:`BadInputFile` if unreadable."""
    entries = tree_entries(path, treename, **uproot_options)
    return entries.entries, entries.uuid


def require_branches(events: Any, branches: Iterable[str], path: str | None = None) -> None:
    """Raise :class:`~processors.errors.MissingBranch` for the first NanoAOD branch of ``branches`` not in
    ``events`` under its name or an alias of another NanoAOD version (checked on the form,
    nothing read)."""
    from processors.columns import Columns, missing_branch

    cols = Columns(events)
    for branch in branches:
        if not cols.has(branch):
            raise missing_branch(branch, path or cols.filename)


def open_events(
    path: str,
    *,
    treename: str = "Events",
    entry_start: int | None = None,
    entry_stop: int | None = None,
    metadata: Mapping[str, Any] | None = None,
    schema: Any = None,
    branches: Iterable[str] = (),
    **uproot_options: Any,
) -> Any:
    """NanoEvents (virtual mode: branches are read when first used) of one file.

    ``schema`` defaults to ``NanoAODSchema``; ``metadata`` is attached as ``events.metadata``
    (``filename``, ``entrystart``, ``entrystop`` and ``treename`` are filled in);
    ``branches`` are checked to exist (:class:`~processors.errors.MissingBranch`). The file
    stays open for the next chunk of it in this thread (see :func:`drop_kept_files`).
    """
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    tree = _kept_tree(path, treename, **uproot_options)
    n = int(tree.num_entries)
    start = 0 if entry_start is None else int(entry_start)
    stop = n if entry_stop is None else min(int(entry_stop), n)
    meta = {
        "filename": path,
        "treename": treename,
        "entrystart": start,
        "entrystop": stop,
        **dict(metadata or {}),
    }
    with warnings.catch_warnings():
        # NanoAODSchema warns about every cross-reference a slimmed file does not carry
        warnings.filterwarnings("ignore", "Missing cross-reference", RuntimeWarning)
        warnings.filterwarnings("ignore", "Branch .* already exists", RuntimeWarning)
        try:
            events = NanoEventsFactory.from_root(
                file=tree.file.root_directory,
                treepath=treename,
                schemaclass=schema or NanoAODSchema,
                metadata=meta,
                mode="virtual",
                entry_start=start,
                entry_stop=stop,
            ).events()
        # coffea raises RuntimeError for a file without the event IDs (run, event, ...)
        except (*_bad_file_errors(), RuntimeError) as err:
            raise BadInputFile(path, f"cannot build NanoEvents ({_why(err)})") from err
    require_branches(events, branches, path)
    return events


def read_gen_event_sumw(path: str, **uproot_options: Any) -> tuple[float, float] | None:
    """``(sum of genWeight, sum of genWeight^2)`` of every event generated for the MC file
    ``path``, before any skim, from its ``Runs`` tree (``genEventSumw``, ``genEventSumw2``;
    ``genEventSumw_``, ``genEventSumw2_`` in older NanoAOD), summed over the tree's entries.

    ``None`` when the file has no ``Runs`` tree or the tree lacks either sum (e.g. data, or a
    file not written by NanoAOD). A file that cannot be read raises :class:`BadInputFile`.
    """
    import numpy as np

    from processors.columns import RUNS_ALIASES, alternatives

    file = _open_file(path, **uproot_options)
    bad_file = _bad_file_errors()
    with file:
        try:
            if "Runs" not in file:
                return None
            tree = file["Runs"]
            if not hasattr(tree, "keys"):
                return None
            names = set(tree.keys())
            found = []
            for branch in ("genEventSumw", "genEventSumw2"):
                name = next((n for n in alternatives(branch, RUNS_ALIASES) if n in names), None)
                if name is None:
                    return None
                found.append(name)
            arrays = tree.arrays(found, library="np")
        except bad_file as err:
            raise BadInputFile(path, f"cannot read the 'Runs' tree ({_why(err)})") from err
    sumw, sumw2 = (float(np.sum(arrays[name], dtype=np.float64)) for name in found)
    return sumw, sumw2
