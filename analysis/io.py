"""``hists.h5``: the histograms of every dataset with their bookkeeping, in HDF5 without pickle.

Layout (``kind="histograms"``, ``format_version=1``)::

    /                      attrs: kind="histograms", format_version, analysis, lumi_pb
    /meta                  provenance (fit.provenance.write_meta: one JSON attribute per key)
    /datasets/<name>       attrs: process, is_data, xsec_pb, sumw, sumw2, events_read,
                                  events_selected, lumi_pb, sumw_yaml, nevents_yaml,
                                  mass_reference_gev (MC with mass weights: the boson mass
                                  in GeV the ``massShift{d}MeV`` variations are relative to,
                                  from datasets.yaml)
                                  (an attribute is absent when its value is None; files
                                  written before an attribute existed read it as None)
        files_processed    1D vlen-str dataset: the files whose every chunk was processed
        files_failed       1D vlen-str dataset: JSON {"file": ..., "error": ...} per failed file
        chunks             compound dataset (file str, start int64, stop int64): each chunk once
        lumisections       [n, 2] uint32 (run, luminosityBlock) processed in the data: those
                           of the files' ``LuminosityBlocks`` trees (else of the events read),
                           all, before the golden JSON; ``lumi_pb`` counts the golden ones
        histograms/<hname> one histogram in the UHI HDF5 layout (``uhi.io.hdf5``; schema
                           https://uhi.readthedocs.io serialization): ``axes`` (references to
                           ``ref_axes/axis_i`` with type, edges/categories, flow, name, label),
                           ``storage`` (``type`` attribute; ``values`` and for ``weighted``
                           storage ``variances`` as N-D float64 datasets, chunked along the
                           leading axes with the variation axis whole, gzip),
                           ``metadata`` (name, label)

Every histogram reads back as the identical ``hist.Hist`` (axes, names, labels, storage,
flow bins). Made in memory and written through :func:`fit.provenance.atomic_path` (a unique
temporary name, fsync, rename): a failed write is an :class:`~processors.errors.OutputError`
and leaves the previous file as it was.

>>> import tempfile, hist
>>> h = hist.Hist.new.Reg(30, 26, 56, name="pt", label="muon pT [GeV]").Weight()
>>> _ = h.fill(pt=[30.5, 41.0], weight=[2.0, 2.0])
>>> ds = DatasetHistograms("wmunu", process="Wmunu", xsec_pb=20000.0, sumw=4.0,
...                        histograms={"nominal": h})
>>> path = Path(tempfile.mkdtemp()) / "hists.h5"
>>> f = read_histograms(write_histograms(path, [ds], meta={}, lumi_pb=1.0))
>>> w = f["wmunu"]
>>> w.histograms["nominal"] == h, w.histograms["nominal"].axes.label
(True, ('muon pT [GeV]',))
>>> w.scale(f.lumi_pb)  # xsec * lumi / sumw
5000.0
"""

from __future__ import annotations

import collections
import contextlib
import errno as _errno
import itertools
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import hist
import numpy as np

from fit.provenance import atomic_h5, provenance, read_meta, write_meta
from processors.errors import BadInputFile, OutputError

try:  # the same zlib streams, ~8x faster (see _deflate); zlib where no wheel exists
    from isal.isal_zlib import ISAL_BEST_COMPRESSION as _MAX_LEVEL
    from isal.isal_zlib import compress as _compress
except ImportError:  # pragma: no cover
    from zlib import Z_BEST_COMPRESSION as _MAX_LEVEL
    from zlib import compress as _compress

__all__ = [
    "FORMAT_VERSION",
    "DatasetHistograms",
    "HistogramsFile",
    "atomic_h5",
    "describe",
    "file_kind",
    "output_errors",
    "provenance",
    "read_hist",
    "read_histograms",
    "read_meta",
    "write_hist",
    "write_histograms",
    "write_meta",
]

FORMAT_VERSION = 1
#: chunks of a stored histogram array are at most this many bytes
CHUNK_BYTES = 1 << 20


@dataclass
class DatasetHistograms:
    """The histograms of one dataset and how they were made."""

    name: str
    process: str = ""
    is_data: bool = False
    xsec_pb: float | None = None
    sumw: float = 0.0
    sumw2: float = 0.0
    events_read: int = 0
    events_selected: int = 0
    lumi_pb: float | None = None
    files_processed: list[str] = field(default_factory=list)
    files_failed: list[dict[str, str]] = field(default_factory=list)
    chunks: list[tuple[str, int, int]] = field(default_factory=list)
    lumisections: list[tuple[int, int]] = field(default_factory=list)
    #: by name; a ``dict`` or, from :func:`analysis.histmaker.histmaker`, a
    #: :class:`processors.fill.LazyHistograms` (each ``hist.Hist`` made when first read)
    histograms: MutableMapping[str, hist.Hist] = field(default_factory=dict)
    sumw_yaml: float | None = None
    nevents_yaml: int | None = None
    #: the boson mass (GeV) at which the MC was generated, the reference of its mass-weight
    #: variations (``massShift{d}MeV``); None for data, MC without mass weights, old files
    mass_reference_gev: float | None = None

    def scale(self, lumi_pb: float | None = None) -> float:
        """The factor taking MC histograms to expected events: ``xsec * lumi / sumw``
        (1 for data). ``lumi_pb`` defaults to this dataset's own ``lumi_pb``."""
        if self.is_data:
            return 1.0
        lumi = self.lumi_pb if lumi_pb is None else lumi_pb
        if self.xsec_pb is None or lumi is None or self.sumw == 0:
            raise ValueError(f"{self.name}: no xsec_pb, lumi or sum of weights to normalise")
        return self.xsec_pb * lumi / self.sumw


@dataclass
class HistogramsFile:
    """Everything in a ``hists.h5``: ``datasets`` by name, the provenance ``meta``."""

    path: str
    meta: dict[str, Any]
    datasets: dict[str, DatasetHistograms]
    analysis: str | None = None
    lumi_pb: float | None = None
    format_version: int = FORMAT_VERSION

    def __getitem__(self, name: str) -> DatasetHistograms:
        return self.datasets[name]

    def __iter__(self):
        return iter(self.datasets)

    def __len__(self) -> int:
        return len(self.datasets)


# -- one histogram ---------------------------------------------------------------------------


def _chunks(shape: tuple[int, ...], itemsize: int = 8) -> tuple[int, ...] | None:
    """Chunk shape: whole trailing axes (variations), leading axes cut to <= CHUNK_BYTES."""
    if not shape or int(np.prod(shape)) * itemsize <= CHUNK_BYTES:
        return None
    chunk = list(shape)
    for i in range(len(chunk)):
        rest = int(np.prod(chunk[i + 1 :], dtype=np.int64)) * itemsize
        if rest * chunk[i] <= CHUNK_BYTES:
            break
        chunk[i] = max(1, CHUNK_BYTES // max(rest, 1))
        if chunk[i] > 1 or rest <= CHUNK_BYTES:
            break
    return tuple(chunk)


def _deflate(block: np.ndarray, level: int) -> bytes:
    """One chunk as HDF5's gzip filter stores it: a zlib stream of the chunk's bytes.

    Compressed with ISA-L (``isal``) where it is installed: the same standard zlib format, ~8x
    less CPU than zlib at level 1 on these histograms for 5 % more bytes (measured on the
    demo's 750 MB: 0.28 s against 2.2 s CPU). Byte shuffling was dropped: it cost 1.6 s CPU and
    gained nothing here (most cells are zero).
    """
    return _compress(np.ascontiguousarray(block).reshape(-1).view(np.uint8), min(level, _MAX_LEVEL))


def _compress_chunk(
    arr: Any, offset: tuple[int, ...], chunks: tuple[int, ...], level: int
) -> bytes:
    """The chunk of ``arr`` at ``offset`` deflated; an edge chunk padded with zeros as HDF5 does.

    ``arr`` is anything sliced by a tuple of slices into an ndarray: a C-ordered array (the
    accumulators of :class:`processors.fill.TensorFill`: a chunk, whole trailing axes, is then a
    contiguous block compressed without a copy), a strided view (a ``hist.Hist``'s
    Fortran-ordered storage: the chunk is copied by the thread that compresses it) or a sum
    made block by block.
    """
    part = arr[tuple(slice(o, o + c) for o, c in zip(offset, chunks, strict=True))]
    if part.shape != chunks:
        full = np.zeros(chunks, dtype=arr.dtype)
        full[tuple(slice(0, n) for n in part.shape)] = part
        part = full
    return _deflate(part, level)


#: a chunk being compressed: the dataset, the chunk's offset, the compressed bytes to come
_Pending = tuple[h5py.Dataset, tuple[int, ...], Future]


class _FileWriter:
    """What the histograms of one file share while they are written.

    Chunks are compressed on a pool of threads (the compressors release the GIL) and written
    with ``write_direct_chunk`` as they are done, while this thread goes on creating the file's
    other objects. HDF5 would copy each array whole and compress its chunks one after another
    (~6 s of a 3M-event histmaker's 750 MB). One pool serves the whole file: the axes and
    metadata of the next histograms are written while the chunks of the previous ones are
    compressed, and no pool is started per array. The file is the same standard HDF5 any reader
    decompresses.

    The axes and metadata (``uhi.io.hdf5.write``: ~40 attributes and ~15 groups per histogram,
    ~0.5 s of h5py calls for the 57 histograms of a W-mass run) are written once per histogram
    name; a histogram of the same name and the same header in another dataset gets them by
    ``H5Ocopy`` (:meth:`copy_header`), the same objects at a fraction of the cost.
    """

    def __init__(self, threads: int | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1)
        self._pending: collections.deque[_Pending] = collections.deque()
        self._headers: dict[str, tuple[dict[str, Any], h5py.Group]] = {}

    def copy_header(self, group: h5py.Group, header: dict[str, Any]) -> bool:
        """Write the UHI ``header`` (a histogram's serialisation without its arrays) into the
        empty ``group`` as ``uhi.io.hdf5.write`` does, by copying the objects of an equal
        header written before under the same name; False (nothing written) when there is none.
        """
        name = group.name.rsplit("/", 1)[-1]
        found = self._headers.get(name)
        if found is None or not _same_ir(found[0], header):
            return False
        source = found[1]
        for key in ("ref_axes", "metadata", "writer_info"):
            if key in source:
                source.copy(source[key], group, name=key)
        group.attrs["uhi_schema"] = header["uhi_schema"]
        # the references made by path and written at once (uhi opens each axis group and
        # writes them one by one: ~1 ms per histogram)
        refs = [
            h5py.h5r.create(group.id, f"ref_axes/axis_{i}".encode(), h5py.h5r.OBJECT)
            for i in range(len(header["axes"]))
        ]
        group.create_dataset("axes", data=np.array(refs, dtype=h5py.ref_dtype))
        group.create_group("storage").attrs["type"] = header["storage"]["type"]
        return True

    def written(self, group: h5py.Group, header: dict[str, Any]) -> None:
        """``header`` was written into ``group`` by ``uhi.io.hdf5.write``: a source to copy."""
        self._headers.setdefault(group.name.rsplit("/", 1)[-1], (header, group))

    def submit(self, dset: h5py.Dataset, arr: Any, chunks: tuple[int, ...], level: int) -> None:
        """Compress every chunk of ``arr`` into the chunked gzip ``dset`` (written later)."""
        starts = [range(0, n, c) for n, c in zip(arr.shape, chunks, strict=True)]
        for offset in itertools.product(*starts):
            job = self._pool.submit(_compress_chunk, arr, offset, chunks, level)
            self._pending.append((dset, offset, job))
        self.flush(wait=False)

    def flush(self, wait: bool = True) -> None:
        """Write the chunks compressed so far, in order (``wait``: all, waiting for them)."""
        while self._pending and (wait or self._pending[0][2].done()):
            dset, offset, job = self._pending.popleft()
            dset.id.write_direct_chunk(offset, job.result())

    def __enter__(self) -> _FileWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            if exc_type is None:
                self.flush()
        finally:
            for _dset, _offset, job in self._pending:
                job.cancel()
            self._pending.clear()
            self._pool.shutdown(wait=True)


def _same_ir(a: Any, b: Any) -> bool:
    """Two UHI serialisations (nested dicts, lists, scalars, arrays) are equal, types too."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same_ir(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same_ir, a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(np.array_equal(a, b))
        )
    return type(a) is type(b) and bool(a == b)


def write_hist(
    group: h5py.Group,
    h: Any,
    *,
    compression_opts: int = 1,
    writer: _FileWriter | None = None,
) -> None:
    """Write ``h`` into the empty ``group`` in the UHI HDF5 layout (arrays chunked + gzip).

    ``h`` is a ``hist.Hist`` or anything with the UHI ``_to_uhi_`` method, e.g. a
    :class:`processors.fill.TensorFill`, whose C-ordered arrays are written as they are: the
    same file as for its ``to_hist()``, without making that histogram (a transposing copy into
    boost-histogram's Fortran-ordered storage, then another back to C order for the file).
    ``writer`` (:class:`_FileWriter`, shared by the histograms of :func:`write_histograms`)
    compresses the arrays' chunks in the background and writes them later, and copies the axes
    of a histogram of the same name written before; without it everything is written here.
    """
    import uhi.io.hdf5
    from boost_histogram.serialization import to_uhi

    if writer is None:
        with _FileWriter() as writer:
            write_hist(group, h, compression_opts=compression_opts, writer=writer)
        return
    ir = to_uhi(h) if isinstance(h, hist.Hist) else h._to_uhi_()
    storage = ir["storage"]
    # axes and metadata through uhi (or copied); the big arrays below with our own chunking
    header = {**ir, "storage": {"type": storage["type"]}}
    if not writer.copy_header(group, header):
        uhi.io.hdf5.write(group, header)
        writer.written(group, header)
    sgrp = group["storage"]
    for key, value in storage.items():
        if key == "type":
            continue
        # ndarrays (a Hist's weighted storage gives strided views) and lazy sums as they are
        arr = value if hasattr(value, "shape") and hasattr(value, "dtype") else np.asarray(value)
        chunks = _chunks(arr.shape, arr.dtype.itemsize)
        if chunks is None:
            sgrp.create_dataset(key, data=np.ascontiguousarray(arr))
        else:
            dset = sgrp.create_dataset(
                key,
                shape=arr.shape,
                dtype=arr.dtype,
                chunks=chunks,
                compression="gzip",
                compression_opts=compression_opts,
            )
            writer.submit(dset, arr, chunks, compression_opts)


def read_hist(group: h5py.Group) -> hist.Hist:
    """Read a histogram written by :func:`write_hist` (or any UHI HDF5 writer)."""
    import uhi.io.hdf5
    from boost_histogram.serialization import from_uhi

    return hist.Hist(from_uhi(uhi.io.hdf5.read(group)))


# -- the file --------------------------------------------------------------------------------

_SCALARS = (
    "process",
    "is_data",
    "xsec_pb",
    "sumw",
    "sumw2",
    "events_read",
    "events_selected",
    "lumi_pb",
    "sumw_yaml",
    "nevents_yaml",
    "mass_reference_gev",
)
_STR = h5py.string_dtype()
_CHUNK_DTYPE = np.dtype([("file", _STR), ("start", np.int64), ("stop", np.int64)])


def _write_dataset(group: h5py.Group, ds: DatasetHistograms, writer: _FileWriter) -> None:
    for key in _SCALARS:
        value = getattr(ds, key)
        if value is not None:
            group.attrs[key] = value
    group.create_dataset(
        "files_processed", data=np.array(ds.files_processed, dtype=object), dtype=_STR
    )
    failed = [json.dumps(f, sort_keys=True) for f in ds.files_failed]
    group.create_dataset("files_failed", data=np.array(failed, dtype=object), dtype=_STR)
    chunks = np.array(
        [(str(f), int(a), int(b)) for f, a, b in sorted(ds.chunks)], dtype=_CHUNK_DTYPE
    )
    group.create_dataset("chunks", data=chunks, dtype=_CHUNK_DTYPE)
    ls = np.array(sorted(ds.lumisections), dtype=np.uint32).reshape(-1, 2)
    group.create_dataset("lumisections", data=ls)
    hgrp = group.create_group("histograms")
    # processors.fill.LazyHistograms: the accumulators, written without making a hist.Hist
    raw = getattr(ds.histograms, "raw_items", ds.histograms.items)
    for name, h in raw():
        write_hist(hgrp.create_group(name), h, writer=writer)


_H5_REASON = re.compile(r"error message = '([^']+)'")


def _write_reason(err: BaseException) -> str:
    """A short reason for a failed write: the C library's message of the errno."""
    code = getattr(err, "errno", None)
    if code in (_errno.ENOSPC, _errno.EFBIG, _errno.EDQUOT, _errno.EACCES, _errno.EROFS):
        return os.strerror(code)
    found = _H5_REASON.search(str(err))  # h5py: "... errno = 27, error message = 'File too large'"
    if found:
        return found.group(1)
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__


@contextlib.contextmanager
def output_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn a failed write of the output ``path`` (disk full, file-size limit, I/O error, no
    permission) into :class:`~processors.errors.OutputError` naming the file and the reason.

    Use around :func:`fit.provenance.atomic_path` or ``atomic_h5`` (which remove their
    temporary file and never touch ``path`` on failure), so the message can promise the
    previous file is unchanged.
    """
    try:
        yield
    except OSError as err:  # every OSError of a write is about the output, not a bug of ours
        raise OutputError(str(path), _write_reason(err)) from None
    except RuntimeError as err:
        # h5py raises RuntimeError when it flushes or closes a file whose writes failed (the
        # message carries the errno); any other RuntimeError is not a write failure: re-raise
        if "errno" not in str(err) and "write failed" not in str(err):
            raise
        raise OutputError(str(path), _write_reason(err)) from None


def write_histograms(
    path: str | os.PathLike,
    datasets: Mapping[str, DatasetHistograms] | Iterable[DatasetHistograms],
    meta: Mapping[str, Any] | None = None,
    *,
    analysis: str | None = None,
    lumi_pb: float | None = None,
) -> Path:
    """Write a ``hists.h5`` (layout in the module docstring) atomically; returns its path.

    A write that fails (disk full, file-size limit) is an :class:`OutputError`; the file that
    was at ``path`` before is then unchanged.

    ``meta`` defaults to :func:`fit.provenance.provenance` of the current command.
    """
    items = list(datasets.values()) if isinstance(datasets, Mapping) else list(datasets)
    meta = provenance() if meta is None else meta
    path = Path(path)
    # made in memory, written as bytes: a full disk is one OSError
    with output_errors(path), atomic_h5(path, meta, in_memory=True) as f:
        f.attrs["kind"] = "histograms"
        f.attrs["format_version"] = FORMAT_VERSION
        if analysis is not None:
            f.attrs["analysis"] = analysis
        if lumi_pb is not None:
            f.attrs["lumi_pb"] = float(lumi_pb)
        root = f.create_group("datasets")
        with _FileWriter() as writer:
            for ds in items:
                _write_dataset(root.create_group(ds.name), ds, writer)
    return path


def _attr(group: h5py.Group | h5py.File, key: str) -> Any:
    if key not in group.attrs:
        return None
    value = group.attrs[key]
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _strings(dset: h5py.Dataset) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in dset[()]]


def file_kind(path: str | os.PathLike) -> str:
    """The root ``kind`` attribute of an output file; :class:`BadInputFile` if it is not one."""
    path = str(path)
    if Path(path).is_dir():
        found = sorted(p.name for p in Path(path).glob("*.h5"))
        hint = f" (it holds {', '.join(found[:5])})" if found else ""
        raise BadInputFile(
            path,
            "a directory, not a file: give hists.h5, fitinput.h5 or fitresult.h5" + hint,
        )
    if not Path(path).is_file():
        raise BadInputFile(path, "no such file")
    if not h5py.is_hdf5(path):
        raise BadInputFile(path, "not an HDF5 file")
    with h5py.File(path, "r") as f:
        kind = _attr(f, "kind")
    if kind is None:
        raise BadInputFile(path, "HDF5 file without a 'kind' attribute: not a wmass output")
    return str(kind)


def _open(path: str | os.PathLike, kind: str) -> h5py.File:
    found = file_kind(path)
    if found != kind:
        raise BadInputFile(str(path), f"kind is {found!r}, expected {kind!r}")
    return h5py.File(path, "r")


def read_histograms(
    path: str | os.PathLike,
    *,
    datasets: Iterable[str] | None = None,
    histograms: Iterable[str] | bool = True,
) -> HistogramsFile:
    """Read a ``hists.h5``: ``datasets`` restricts the datasets, ``histograms`` the histogram
    names read (``False``: bookkeeping only)."""
    wanted_ds = None if datasets is None else set(datasets)
    if histograms is True:
        wanted_h = None
    elif histograms is False:
        wanted_h = set()
    else:
        wanted_h = set(histograms)
    with _open(path, "histograms") as f:
        out: dict[str, DatasetHistograms] = {}
        for name, g in f["datasets"].items():
            if wanted_ds is not None and name not in wanted_ds:
                continue
            ds = DatasetHistograms(name=name, **{k: _attr(g, k) for k in _SCALARS})
            ds.process = ds.process or ""
            ds.is_data = bool(ds.is_data)
            ds.sumw = float(ds.sumw or 0.0)
            ds.sumw2 = float(ds.sumw2 or 0.0)
            ds.events_read = int(ds.events_read or 0)
            ds.events_selected = int(ds.events_selected or 0)
            ds.files_processed = _strings(g["files_processed"])
            ds.files_failed = [json.loads(s) for s in _strings(g["files_failed"])]
            ds.chunks = [
                (f_.decode() if isinstance(f_, bytes) else str(f_), int(a), int(b))
                for f_, a, b in g["chunks"][()]
            ]
            ds.lumisections = [(int(r), int(ls)) for r, ls in g["lumisections"][()]]
            for hname, hg in g["histograms"].items():
                if wanted_h is None or hname in wanted_h:
                    ds.histograms[hname] = read_hist(hg)
            out[name] = ds
        return HistogramsFile(
            path=str(path),
            meta=read_meta(f),
            datasets=out,
            analysis=_attr(f, "analysis"),
            lumi_pb=_attr(f, "lumi_pb"),
            format_version=int(_attr(f, "format_version") or 0),
        )


def _hist_summary(group: h5py.Group) -> dict[str, Any]:
    """Axis names, stored shape and sum of values of a stored histogram, read chunk-wise."""
    import uhi.io.hdf5

    axes = [uhi.io.hdf5._convert_axes(group["ref_axes"][ref]) for ref in group["axes"]]
    names = [str(ax.get("metadata", {}).get("name", f"axis{i}")) for i, ax in enumerate(axes)]
    values = group["storage"]["values"]
    total = 0.0
    if values.chunks is None:
        total = float(np.sum(values[()]))
    else:
        for sl in values.iter_chunks():
            total += float(np.sum(values[sl]))
    return {"axes": names, "shape": [int(s) for s in values.shape], "sum": total}


def describe(h5file: str | os.PathLike | h5py.File) -> dict[str, Any]:
    """The JSON of ``wmass inspect --json`` for a histograms file
    (contract: ``analysis/schemas/inspect-histograms.schema.json``). Sums include flow bins.

    The ``histograms`` part of :func:`analysis.inspect.describe`, the one entry point for any
    wmass output (which hands this an open file whose ``kind`` it has checked).
    """
    if not isinstance(h5file, h5py.File):
        with _open(h5file, "histograms") as f:
            return describe(f)
    f = h5file
    out: dict[str, Any] = {
        "kind": "histograms",
        "format_version": int(_attr(f, "format_version") or 0),
        "analysis": _attr(f, "analysis"),
        "lumi_pb": _attr(f, "lumi_pb"),
        "meta": read_meta(f),
        "datasets": {},
    }
    for name, g in f["datasets"].items():
        d: dict[str, Any] = {k: _attr(g, k) for k in _SCALARS}
        d["is_data"] = bool(d["is_data"])
        d["sumw"] = float(d["sumw"] or 0.0)
        d["events_read"] = int(d["events_read"] or 0)
        d["events_selected"] = int(d["events_selected"] or 0)
        d["files_processed"] = _strings(g["files_processed"])
        d["files_failed"] = [json.loads(s) for s in _strings(g["files_failed"])]
        d["n_chunks"] = len(g["chunks"])
        d["n_lumisections"] = len(g["lumisections"])
        d["histograms"] = {h: _hist_summary(hg) for h, hg in g["histograms"].items()}
        out["datasets"][name] = d
    return out
