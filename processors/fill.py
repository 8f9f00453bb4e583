"""Tensor fill: one bin lookup per event, a contiguous vector of variations added.

A :class:`TensorFill` owns a dense ``float64`` array ``[bins of the nominal axes..., n_var]``
(flow bins only where an axis has them), with the variation axis last so that the variations
of one event land in one contiguous cache line run. Filling is split in two steps:

1. :meth:`TensorFill.index` turns the per-event values of the nominal axes into one flat bin
   index per event (``-1`` when the event falls outside an axis without flow bins), using the
   axes' own ``index`` so the binning is exactly that of ``hist``;
2. a numba kernel adds the event's weights into that bin: ``nominal * ratio[:, v]`` for a
   weight tensor (:meth:`fill`), with per-object block ratios (:meth:`fill_blocks`, e.g.
   efficiency eigen-variations per eta bin) or with per-variation bin indices for shape
   variations (:meth:`fill_shape_blocks`, e.g. the muon momentum scale).

Block variations filled one block per object (:meth:`TensorFill.fill_blocks`) keep only the
rows of the (bin, block) pairs they meet (:class:`BlockRows`: ~1 % of the dense array for the
W-mass efficiency variations), added, sent and written as rows; the dense array is made only
when someone reads it.

Products of the nominal weight and the ratios are formed inside the kernel in ``float64``, so
no ``[n_events, n_var]`` product tensor is ever materialised. :meth:`TensorFill.to_hist`
wraps the array as a :class:`hist.Hist` by view assignment.

A ``hist.Hist`` is expensive here: boost-histogram allocates (and zeroes) its own storage,
which is Fortran-ordered, so filling it from the C-ordered accumulator is a transposing copy
(~1.5 s for the ~750 MB of a W-mass run with all variations). Where only the file needs the
histograms, :meth:`TensorFill._to_uhi_` hands the UHI serialisation the C-ordered arrays
themselves (:func:`analysis.io.write_hist` writes them chunk by chunk without a copy), and
:class:`LazyHistograms` makes each ``hist.Hist`` only when it is first read.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from typing import Any

import hist
import numba
import numpy as np

__all__ = ["BlockRows", "LazyHistograms", "SparseArray", "TensorFill", "bin_index"]


def _axis_index(axis: hist.axis.AxesMixin, values: np.ndarray) -> np.ndarray:
    """Index of ``values`` in ``axis`` counted from the first stored bin, ``-1`` if dropped."""
    values = np.asarray(values)
    traits = axis.traits
    if isinstance(axis, hist.axis.IntCategory | hist.axis.StrCategory):
        categories = np.asarray(list(axis))
        order = np.argsort(categories)
        pos = np.searchsorted(categories[order], values)
        pos = np.minimum(pos, len(categories) - 1)
        found = categories[order][pos] == values
        idx = np.where(found, order[pos], len(categories)).astype(np.int64)
    else:
        idx = np.asarray(axis.index(values), dtype=np.int64)
    if traits.underflow:
        idx += 1  # stored bin 0 is the underflow
    else:
        idx[idx < 0] = -1
    stored = axis.extent
    idx[(idx >= stored) | (idx < 0)] = -1
    return idx


def bin_index(axes: Sequence[hist.axis.AxesMixin], *values: np.ndarray) -> np.ndarray:
    """Flat C-order index of each event in the stored bins of ``axes`` (``-1``: dropped)."""
    if len(values) != len(axes):
        raise ValueError(f"{len(axes)} axes but {len(values)} value arrays")
    n = len(values[0]) if values else 0
    flat = np.zeros(n, dtype=np.int64)
    valid = np.ones(n, dtype=bool)
    for axis, vals in zip(axes, values, strict=True):
        idx = _axis_index(axis, vals)
        valid &= idx >= 0
        flat *= axis.extent
        flat += idx
    flat[~valid] = -1
    return flat


@numba.njit(cache=True, nogil=True)
def _fill_nominal(index, weight, sumw, sumw2, with_sumw2):  # pragma: no cover - numba
    for i in range(index.shape[0]):
        b = index[i]
        if b < 0:
            continue
        w = weight[i]
        sumw[b, 0] += w
        if with_sumw2:
            sumw2[b, 0] += w * w


@numba.njit(cache=True, nogil=True)
def _fill_tensor(index, weight, ratio, sumw, sumw2, with_sumw2):  # pragma: no cover - numba
    n_var = sumw.shape[1]
    for i in range(index.shape[0]):
        b = index[i]
        if b < 0:
            continue
        w = weight[i]
        for v in range(n_var):
            x = w * np.float64(ratio[i, v])
            sumw[b, v] += x
            if with_sumw2:
                sumw2[b, v] += x * x


@numba.njit(cache=True, nogil=True, inline="always")
def _event_blocks(out, value, i, offsets, group, per_object, multiply):  # pragma: no cover
    """``out[v] = value`` for every variation ``v``, then, for each object ``o`` of event
    ``i`` in block ``g = group[o] >= 0``, ``out[g * n_local + k]`` multiplied by
    ``per_object[o, k]`` (``multiply``: weight ratios, in float64) or replaced by it (bins)."""
    n_local = per_object.shape[1]
    for v in range(out.shape[0]):
        out[v] = value
    for o in range(offsets[i], offsets[i + 1]):
        g = group[o]
        if g < 0:
            continue
        base = g * n_local
        for k in range(n_local):
            if multiply:
                out[base + k] *= per_object[o, k]
            else:
                out[base + k] = per_object[o, k]


@numba.njit(cache=True, nogil=True)
def _fill_blocks(index, weight, offsets, group, ratio, sumw, sumw2, with_sumw2):  # pragma: no cover
    n_var = sumw.shape[1]
    tmp = np.empty(n_var, dtype=np.float64)
    for i in range(index.shape[0]):
        b = index[i]
        if b < 0:
            continue
        _event_blocks(tmp, weight[i], i, offsets, group, ratio, True)
        for v in range(n_var):
            sumw[b, v] += tmp[v]
        if with_sumw2:
            for v in range(n_var):
                sumw2[b, v] += tmp[v] * tmp[v]


@numba.njit(cache=True, nogil=True)
def _block_rows_assign(index, offsets, group, table, count):  # pragma: no cover - numba
    """Give each (bin, block) pair the chunk fills a row of ``table`` (``-1``: none yet), in
    the order the events meet them; returns the new number of rows."""
    for i in range(index.shape[0]):
        b = index[i]
        if b < 0:
            continue
        for o in range(offsets[i], offsets[i + 1]):
            g = group[o]
            if g >= 0 and table[b, g] < 0:
                table[b, g] = count
                count += 1
    return count


@numba.njit(cache=True, nogil=True)
def _fill_block_rows(
    index, weight, offsets, group, ratio, base, base2, table, rows, table2, rows2, with_sumw2
):  # pragma: no cover - numba
    """Like ``_fill_blocks`` but touching only the event's own blocks: the weight common to
    every variation goes to ``base[b]`` (added to all variations at the end) and each block
    ``g`` the event's objects fall in gets ``w * (prod ratio - 1)``, in the row ``table[b, g]``
    of ``rows`` (``table2``/``rows2`` for the squares: :class:`BlockRows`, or a dense array as
    rows of ``n_local`` with ``table[b, g] = b * n_blocks + g``)."""
    n_local = ratio.shape[1]
    for i in range(index.shape[0]):
        b = index[i]
        if b < 0:
            continue
        w = weight[i]
        base[b] += w
        if with_sumw2:
            base2[b] += w * w
        for o in range(offsets[i], offsets[i + 1]):
            g = group[o]
            if g < 0:
                continue
            seen = False
            for p in range(offsets[i], o):
                if group[p] == g:
                    seen = True
                    break
            if seen:
                continue
            r = table[b, g]
            r2 = table2[b, g] if with_sumw2 else 0
            for k in range(n_local):
                prod = np.float64(ratio[o, k])
                for q in range(o + 1, offsets[i + 1]):
                    if group[q] == g:
                        prod *= np.float64(ratio[q, k])
                x = w * prod
                rows[r, k] += x - w
                if with_sumw2:
                    rows2[r2, k] += x * x - w * w


@numba.njit(cache=True, nogil=True)
def _fill_shape_blocks(
    index, weight, offsets, group, shifted, sumw, sumw2, with_sumw2
):  # pragma: no cover
    n_var = sumw.shape[1]
    bins = np.empty(n_var, dtype=np.int64)
    for i in range(index.shape[0]):
        w = weight[i]
        if w == 0.0:
            continue
        _event_blocks(bins, index[i], i, offsets, group, shifted, False)
        for v in range(n_var):
            bv = bins[v]
            if bv >= 0:
                sumw[bv, v] += w
                if with_sumw2:
                    sumw2[bv, v] += w * w


def _as_c(array: np.ndarray, dtype=None) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=dtype)


#: an array of a :class:`TensorFill` is pickled as its nonzero entries (:class:`SparseArray`)
#: when it is at least this many bytes and they take at most this fraction of its bytes
SPARSE_MIN_BYTES = 1 << 20
SPARSE_FRACTION = 0.25


class SparseArray:
    """A mostly-zero array as its ``shape``, the flat ``index`` of its nonzero entries and
    their ``values``: how a :class:`TensorFill` array that is mostly zeros travels between
    processes (pickled: the harvest's transfers between Dask workers and to the driver).

    The block variations (an efficiency or momentum-scale bin each) are stored as the
    difference from the nominal, which is zero outside their block: of a worker's ~750 MB of
    W-mass accumulators, ~11 % of the bytes are not zero (``docs/scaling.md``, ninth pass).
    A received one is made dense only when it is read, and is added into another accumulator
    without ever being made dense (:meth:`add_to`).

    >>> a = np.zeros((1000, 300)); a[5, 7] = 2.5
    >>> s = SparseArray.encode(a)
    >>> s.index.tolist(), s.values.tolist()
    ([1507], [2.5])
    >>> bool((s.dense() == a).all())
    True
    """

    __slots__ = ("index", "shape", "values")

    def __init__(self, shape: tuple[int, ...], index: np.ndarray, values: np.ndarray) -> None:
        self.shape = tuple(shape)
        self.index = index
        self.values = values

    @classmethod
    def encode(cls, array: np.ndarray) -> np.ndarray | SparseArray:
        """``array`` as a :class:`SparseArray` when that is at most :data:`SPARSE_FRACTION` of
        its bytes (and it has at least :data:`SPARSE_MIN_BYTES`), else ``array`` itself. An
        entry is kept when its bits are not all zero, so ``dense()`` gives back every bit
        (-0.0 included)."""
        if array.nbytes < SPARSE_MIN_BYTES or not array.flags.c_contiguous:
            return array
        index_type = np.int32 if array.size < 2**31 else np.int64
        entry = array.itemsize + np.dtype(index_type).itemsize
        flat = array.reshape(-1)
        # the bits, not the numbers: a -0.0 is kept as it is (and a bool mask is ~3x faster to
        # index than the float comparison: 15 against 47 ms for 80 MB)
        kept = flat.view(f"u{flat.itemsize}") != 0
        if np.count_nonzero(kept) * entry > SPARSE_FRACTION * array.nbytes:
            return array
        index = np.flatnonzero(kept).astype(index_type)
        return cls(array.shape, index, flat[index])

    def dense(self) -> np.ndarray:
        """The array (zeros where no entry is kept)."""
        out = np.zeros(self.shape, dtype=self.values.dtype)
        out.reshape(-1)[self.index] = self.values
        return out

    def add_to(self, out: np.ndarray) -> None:
        """Add the entries into ``out`` (of this shape), in place."""
        if out.shape != self.shape:
            raise ValueError(f"cannot add a sparse array of shape {self.shape} to {out.shape}")
        out.reshape(-1)[self.index] += self.values


class BlockRows:
    """A ``[n_bins, n_blocks * n_local]`` array of block variations kept as the rows of the
    (bin, block) pairs that were filled: how a :class:`TensorFill` of block variations
    accumulates (:meth:`TensorFill.fill_blocks`).

    An event changes only the ``n_local`` variations of its muon's own block, and a bin of the
    nominal axes (the muon's eta and pT among them) meets one block or two: the W-mass
    efficiency variations (24 blocks of 24) fill ~4,500 of 415,000 pairs in a W chunk, 0.8 MB
    of rows where the dense array is 76 MB. The dense array was zeroed for every chunk, added
    whole into the accumulator, and, on every worker and for every dataset, made of memory
    touched for the first time (``docs/scaling.md``, twelfth pass). ``table[b, g]`` is the row
    of pair ``(b, g)`` (``-1``: not filled, zero); ``rows[:count]`` hold the sums.

    >>> r = BlockRows(n_bins=3, n_blocks=2, n_local=2)
    >>> r.reserve(1); r.table[2, 1] = 0; r.count = 1; r.rows[0] = [0.5, -1.0]
    >>> r.dense().tolist()
    [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.5, -1.0]]
    >>> other = r.copy(); other.add(r); other.dense()[2].tolist()
    [0.0, 0.0, 1.0, -2.0]
    """

    __slots__ = ("count", "rows", "table")

    def __init__(self, n_bins: int, n_blocks: int, n_local: int) -> None:
        self.table = np.full((n_bins, n_blocks), -1, dtype=np.int32)
        self.rows = np.zeros((0, n_local))
        self.count = 0

    @property
    def shape(self) -> tuple[int, int]:
        return (self.table.shape[0], self.table.shape[1] * self.rows.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return self.rows.dtype

    def reserve(self, count: int) -> None:
        """Room for ``count`` rows; rows past :attr:`count` are set to zero when taken."""
        if count > self.rows.shape[0]:
            grown = np.empty((max(count, 2 * self.rows.shape[0], 256), self.rows.shape[1]))
            grown[: self.count] = self.rows[: self.count]
            self.rows = grown

    def take(self, count: int) -> None:
        """Rows :attr:`count` to ``count`` (new pairs in :attr:`table`) become zeros in use."""
        self.reserve(count)
        self.rows[self.count : count] = 0.0
        self.count = count

    def _pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        b, g = np.nonzero(self.table >= 0)
        return b, g, self.table[b, g]

    def dense(self) -> np.ndarray:
        """The ``[n_bins, n_blocks * n_local]`` array (zeros outside the filled pairs)."""
        out = np.zeros(self.shape)
        self.add_to(out)
        return out

    def add_to(self, out: np.ndarray) -> None:
        """Add the rows into the dense ``out`` (of this shape), in place."""
        if out.shape != self.shape:
            raise ValueError(f"cannot add block rows of shape {self.shape} to {out.shape}")
        b, g, r = self._pairs()
        n_bins, n_blocks = self.table.shape
        out.reshape(n_bins, n_blocks, -1)[b, g] += self.rows[r]

    def add(self, other: BlockRows) -> None:
        """Add ``other`` (same shape) in place: its pairs that are new here get rows."""
        if other.shape != self.shape or other.table.shape != self.table.shape:
            raise ValueError(f"cannot add block rows of shape {other.shape} to {self.shape}")
        b, g, theirs = other._pairs()
        mine = self.table[b, g]
        new = mine < 0
        if new.any():
            ids = np.arange(self.count, self.count + int(new.sum()), dtype=np.int32)
            self.table[b[new], g[new]] = ids
            mine[new] = ids
            self.take(self.count + ids.size)
        self.rows[mine] += other.rows[theirs]

    def copy(self) -> BlockRows:
        out = BlockRows.__new__(BlockRows)
        out.table, out.rows, out.count = (
            self.table.copy(),
            self.rows[: self.count].copy(),
            self.count,
        )
        return out

    def __getstate__(self) -> tuple[np.ndarray, np.ndarray, int]:
        return self.table, self.rows[: self.count], self.count  # the rows in use only

    def __setstate__(self, state: tuple[np.ndarray, np.ndarray, int]) -> None:
        self.table, self.rows, self.count = state
        self.rows = np.array(self.rows)  # writeable, its own


#: the squares' rows of a fill without a sum of squares (the kernel never reads them)
_NO_ROWS = BlockRows(1, 1, 1)


class _Zeros:
    """A dense array of zeros not made yet: a :class:`TensorFill` array before its first fill,
    so that an accumulator of block variations never makes the dense array at all."""

    __slots__ = ("shape",)

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape

    def dense(self) -> np.ndarray:
        return np.zeros(self.shape)


def _add_into(out: np.ndarray, other: np.ndarray | SparseArray | BlockRows | _Zeros) -> None:
    if isinstance(other, SparseArray | BlockRows):
        other.add_to(out)
    elif not isinstance(other, _Zeros):
        out += other


def _copy_array(value: Any) -> Any:
    """A :class:`TensorFill` array slot's value copied (a :class:`SparseArray` or
    :class:`_Zeros` is never changed in place: shared)."""
    return value.copy() if isinstance(value, np.ndarray | BlockRows) else value


def _dense_copy(array: np.ndarray | SparseArray) -> np.ndarray:
    return array.dense() if isinstance(array, SparseArray) else array.copy()


class _DenseOnRead:
    """A :class:`TensorFill` array attribute: kept as a :class:`SparseArray` after unpickling,
    as :class:`BlockRows` while block variations are filled and added, or as :class:`_Zeros`
    before any fill, until it is first read, then dense (the dense kernels and the writer see
    arrays only)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = "_" + name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.slot]
        if isinstance(value, SparseArray | BlockRows | _Zeros):
            value = obj.__dict__[self.slot] = value.dense()
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self.slot] = value


class TensorFill:
    """A dense ``[nominal bins..., n_var]`` float64 accumulator with the variation axis last.

    ``axes`` are the nominal axes; ``variation`` the variation axis (``None``: a nominal
    histogram with one implicit variation). ``sumw2`` keeps the sum of squared weights
    (``Weight()`` storage); without it the histogram has ``Double()`` storage.

    Pickled (sent to another process), each array that is mostly zeros goes as a
    :class:`SparseArray`; copies keep the arrays as they are.
    """

    sumw = _DenseOnRead()
    sumw2 = _DenseOnRead()
    base = _DenseOnRead()
    base2 = _DenseOnRead()
    _ARRAYS = ("_sumw", "_sumw2", "_base", "_base2")

    def __init__(
        self,
        axes: Sequence[hist.axis.AxesMixin],
        variation: hist.axis.AxesMixin | None = None,
        *,
        sumw2: bool = False,
        label: str = "",
    ) -> None:
        self.axes = tuple(axes)
        self.variation = variation
        self.sumw2_enabled = sumw2
        self.label = label
        self.shape = tuple(ax.extent for ax in self.axes)
        self.n_var = 1 if variation is None else variation.extent
        n_bins = int(np.prod(self.shape, dtype=np.int64))
        # zeros made when first read: block fills keep BlockRows instead (fill_blocks)
        self.sumw = _Zeros((n_bins, self.n_var))
        # a 1-row dummy keeps the kernel signatures fixed when sumw2 is off
        self.sumw2 = _Zeros((n_bins, self.n_var)) if sumw2 else np.zeros((1, self.n_var))
        # weight common to every variation (sparse block fills), added to all of them at the end
        self.base: np.ndarray | None = None
        self.base2: np.ndarray | None = None

    def index(self, *values: np.ndarray) -> np.ndarray:
        """Flat bin index per event of the nominal axes (``-1``: outside, not filled)."""
        return bin_index(self.axes, *values)

    def fill(
        self,
        index: np.ndarray,
        weight: np.ndarray,
        ratio: np.ndarray | None = None,
    ) -> None:
        """Add ``weight[i] * ratio[i, v]`` (or ``weight[i]`` without ``ratio``) to bin ``index[i]``.

        ``ratio`` is ``[n_events, n_var]`` of any float dtype (the raw NanoAOD buffer of e.g.
        ``LHEPdfWeight`` reshaped, without a copy); the product is formed in float64.
        """
        index = _as_c(index, np.int64)
        weight = _as_c(weight, np.float64)
        if ratio is None:
            if self.n_var != 1:
                raise ValueError(f"{self.label}: {self.n_var} variations need a ratio tensor")
            _fill_nominal(index, weight, self.sumw, self.sumw2, self.sumw2_enabled)
            return
        ratio = _as_c(ratio)
        if ratio.shape != (index.shape[0], self.n_var):
            raise ValueError(
                f"{self.label}: ratio shape {ratio.shape} != ({index.shape[0]}, {self.n_var})"
            )
        _fill_tensor(index, weight, ratio, self.sumw, self.sumw2, self.sumw2_enabled)

    def fill_blocks(
        self,
        index: np.ndarray,
        weight: np.ndarray,
        offsets: np.ndarray,
        group: np.ndarray,
        ratio: np.ndarray,
        *,
        dense: bool = False,
    ) -> None:
        """Fill variations organised in blocks (e.g. one block per eta bin).

        Variation ``g * n_local + k`` of event ``i`` is ``weight[i]`` times the product of
        ``ratio[o, k]`` over the event's objects ``o`` in ``offsets[i]:offsets[i+1]`` whose
        block ``group[o] == g``; objects with ``group < 0`` change nothing.

        By default only the event's own blocks are written (``n_local`` numbers per object
        instead of all ``n_var``): the weight shared by every variation is kept once per bin
        (``base``) and added to all variations when the histogram is made. ``dense=True``
        writes all ``n_var`` per event (the same sums, another rounding order).
        """
        ratio = _as_c(ratio)
        if ratio.shape[1] * (self.n_var // ratio.shape[1]) != self.n_var:
            raise ValueError(f"{self.label}: {self.n_var} variations, blocks of {ratio.shape[1]}")
        args = (
            _as_c(index, np.int64),
            _as_c(weight, np.float64),
            _as_c(offsets, np.int64),
            _as_c(group, np.int64),
            ratio,
        )
        if dense:
            _fill_blocks(*args, self.sumw, self.sumw2, self.sumw2_enabled)
            return
        n_bins = int(np.prod(self.shape, dtype=np.int64))
        if self.base is None:
            self.base = np.zeros(n_bins)
            self.base2 = np.zeros(n_bins if self.sumw2_enabled else 1)
        slots = self.__dict__
        kept = ["_sumw", "_sumw2"] if self.sumw2_enabled else ["_sumw"]
        n_local = ratio.shape[1]
        for slot in kept:  # an accumulator that was never filled keeps rows, not the array
            if isinstance(slots[slot], _Zeros):
                slots[slot] = BlockRows(n_bins, self.n_var // n_local, n_local)
        if all(isinstance(slots[slot], BlockRows) for slot in kept):
            rows = [slots[slot] for slot in kept]
            for r in rows:
                r.take(_block_rows_assign(args[0], args[2], args[3], r.table, r.count))
            targets = [(r.table, r.rows) for r in rows]
        else:  # a dense array (read before): the same kernel, its rows in place
            identity = np.arange(self.sumw.size // n_local, dtype=np.int32)
            identity = identity.reshape(n_bins, -1)
            targets = [(identity, self.sumw.reshape(-1, n_local))]
            if self.sumw2_enabled:
                targets.append((identity, self.sumw2.reshape(-1, n_local)))
        table2, rows2 = targets[-1] if self.sumw2_enabled else (_NO_ROWS.table, _NO_ROWS.rows)
        _fill_block_rows(
            *args, self.base, self.base2, *targets[0], table2, rows2, self.sumw2_enabled
        )

    def values(self) -> np.ndarray:
        """``[n_bins, n_var]`` sums of weights (the shared ``base`` included)."""
        return self.sumw if self.base is None else self.sumw + self.base[:, None]

    def variances(self) -> np.ndarray:
        """``[n_bins, n_var]`` sums of squared weights (with ``sumw2``)."""
        if not self.sumw2_enabled:
            raise ValueError(f"{self.label}: no sum of squared weights kept")
        return self.sumw2 if self.base is None else self.sumw2 + self.base2[:, None]

    def fill_shape_blocks(
        self,
        index: np.ndarray,
        weight: np.ndarray,
        offsets: np.ndarray,
        group: np.ndarray,
        shifted: np.ndarray,
    ) -> None:
        """Fill shape variations: per variation, the event's bin may differ from ``index``.

        Variation ``g * n_local + k`` of event ``i`` goes to bin ``shifted[o, k]`` for the
        event's object ``o`` with ``group[o] == g`` (the bin with every object of block ``g``
        shifted), and to the nominal bin ``index[i]`` otherwise; ``-1`` bins are not filled.
        Events with ``weight == 0`` are skipped.
        """
        shifted = _as_c(shifted, np.int64)
        _fill_shape_blocks(
            _as_c(index, np.int64),
            _as_c(weight, np.float64),
            _as_c(offsets, np.int64),
            _as_c(group, np.int64),
            shifted,
            self.sumw,
            self.sumw2,
            self.sumw2_enabled,
        )

    def __iadd__(self, other: TensorFill) -> TensorFill:
        """Add another accumulator of the same binning in place (chunk merging)."""
        if not isinstance(other, TensorFill):
            return NotImplemented
        if (
            other.shape != self.shape
            or other.n_var != self.n_var
            or other.sumw2_enabled != self.sumw2_enabled
            or other.axes != self.axes
            or other.variation != self.variation
        ):
            raise ValueError(f"cannot add TensorFill {other.label!r} to {self.label!r}: binning")
        theirs = other.__dict__  # as they are: a sparse array is added without being made dense
        for slot in ("_sumw", "_sumw2") if self.sumw2_enabled else ("_sumw",):
            self._add_slot(slot, theirs[slot])
        if theirs["_base"] is not None:
            if self.base is None:
                self.base, self.base2 = _dense_copy(theirs["_base"]), _dense_copy(theirs["_base2"])
            else:
                _add_into(self.base, theirs["_base"])
                _add_into(self.base2, theirs["_base2"])
        return self

    def _add_slot(self, slot: str, theirs: Any) -> None:
        """Add ``theirs`` into the array ``slot``: rows into rows and anything into the dense
        array as it is; rows here are made dense only to take a dense or sparse array."""
        mine = self.__dict__[slot]
        if isinstance(theirs, _Zeros):
            return
        if isinstance(mine, _Zeros) and isinstance(theirs, BlockRows):
            self.__dict__[slot] = theirs.copy()
        elif isinstance(mine, BlockRows) and isinstance(theirs, BlockRows):
            mine.add(theirs)
        else:
            _add_into(getattr(self, slot[1:]), theirs)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for slot in self._ARRAYS:
            if isinstance(state[slot], np.ndarray):
                state[slot] = SparseArray.encode(state[slot])
        return state

    def __copy__(self) -> TensorFill:
        out = type(self).__new__(type(self))
        out.__dict__.update(self.__dict__)
        return out

    def __deepcopy__(self, memo: dict[int, Any]) -> TensorFill:
        out = type(self).__new__(type(self))
        out.__dict__.update(copy.deepcopy(self.__dict__, memo))
        return out

    def __add__(self, other: TensorFill) -> TensorFill:
        out = copy.copy(self)
        for slot in self._ARRAYS:
            out.__dict__[slot] = _copy_array(self.__dict__[slot])
        out += other
        return out

    def _stored(self, slot: str, shared: np.ndarray | None) -> np.ndarray | _RowsView | _PlusShared:
        """The array ``slot`` (``[n_bins, n_var]``) in the histogram's shape, ``shared`` added
        lazily; block rows are made dense only block by block as they are read."""
        shape = self.shape if self.variation is None else (*self.shape, self.n_var)
        value = self.__dict__[slot]
        if isinstance(value, BlockRows):
            array: np.ndarray | _RowsView = _RowsView(value, shape)
        else:
            array = getattr(self, slot[1:]).reshape(shape)
        return array if shared is None else _PlusShared(array, shared.reshape(self.shape))

    def _to_uhi_(self) -> dict[str, Any]:
        """The UHI serialisation of :meth:`to_hist` without making the ``hist.Hist``.

        Axes, metadata and writer information are those ``boost_histogram.serialization.
        to_uhi`` gives for :meth:`to_hist`'s histogram (taken from two small histograms of the
        same axes: one of the nominal axes, one of the variation axis); the storage arrays are
        the accumulator's own C-ordered arrays (``values``/``variances`` in the histogram's
        shape, flow bins included), with the sparse fills' shared weight added block by block
        as they are sliced (:class:`_PlusShared`). This is the ``_to_uhi_`` protocol of
        ``uhi``: :func:`analysis.io.write_hist` writes it, ``hist.Hist(fill)`` reads it.
        """
        ir = copy.deepcopy(self._header())
        ir["storage"] = {**ir["storage"], "values": self._stored("_sumw", self.base)}
        if self.sumw2_enabled:
            ir["storage"]["variances"] = self._stored("_sumw2", self.base2)
        return ir

    def _header(self) -> dict[str, Any]:
        """:meth:`_to_uhi_` without the arrays, made once per binning and label in a process
        (:data:`_HEADERS`): every dataset of a run has the same ~60 histograms, and making the
        two small histograms and their serialisation took ~1.5 ms each (0.07 s of the demo's
        write). Callers get a copy."""
        from boost_histogram.serialization import to_uhi

        key = (self.label, self.sumw2_enabled, len(self.axes), self.n_var)
        for axes, variation, ir in _HEADERS.get(key, ()):
            if axes == self.axes and variation == self.variation:
                return ir
        storage = hist.storage.Weight() if self.sumw2_enabled else hist.storage.Double()
        ir = to_uhi(
            hist.Hist(*self.axes, storage=storage, label=self.label or None), keep_storage=False
        )
        if self.variation is not None:
            extra = to_uhi(hist.Hist(self.variation, storage=storage), keep_storage=False)
            ir["axes"] = [*ir["axes"], *extra["axes"]]
        entries = _HEADERS.setdefault(key, [])
        if len(entries) < _HEADERS_PER_KEY:  # copies: an axis changed later is another binning
            entries.append((copy.deepcopy(self.axes), copy.deepcopy(self.variation), ir))
        return ir

    def to_hist(self) -> hist.Hist:
        """The accumulated array as a :class:`hist.Hist` (variation axis last)."""
        axes = list(self.axes) if self.variation is None else [*self.axes, self.variation]
        storage = hist.storage.Weight() if self.sumw2_enabled else hist.storage.Double()
        h = hist.Hist(*axes, storage=storage, label=self.label or None)
        shape = self.shape if self.variation is None else (*self.shape, self.n_var)
        view = h.view(flow=True)
        if self.sumw2_enabled:
            view.value = self.values().reshape(shape)
            view.variance = self.variances().reshape(shape)
        else:
            view[...] = self.values().reshape(shape)
        return h


#: (label, sumw2, number of nominal axes, variations) -> [(axes, variation axis, UHI header)]
_HEADERS: dict[tuple[str, bool, int, int], list[tuple[Any, Any, dict[str, Any]]]] = {}
#: headers kept per key (a binning that changes from call to call is made every time)
_HEADERS_PER_KEY = 4


class _PlusShared:
    """``values + shared[..., None]`` (a sparse block fill's weight common to every variation,
    added to each), computed only for the blocks a reader slices: writing hists.h5 takes it
    chunk by chunk, so the sum is never made whole (80 MB per dataset for ``effStat``).
    ``np.asarray`` of it makes the whole sum, equal to :meth:`TensorFill.values`."""

    def __init__(self, values: np.ndarray | _RowsView, shared: np.ndarray) -> None:
        self.values = values
        self.shared = shared
        self.shape = values.shape
        self.dtype = values.dtype
        self.ndim = values.ndim

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        return self.values[key] + self.shared[key[:-1]][..., None]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = np.asarray(self.values) + self.shared[..., None]
        return out if dtype is None else out.astype(dtype, copy=False)


class _RowsView:
    """:class:`BlockRows` in a histogram's shape ``(*nominal, n_var)``, made dense only for the
    bins a reader slices (:func:`analysis.io.write_hist` takes it chunk by chunk)."""

    def __init__(self, rows: BlockRows, shape: tuple[int, ...]) -> None:
        self.rows = rows
        self.shape = shape
        self.dtype = rows.dtype
        self.ndim = len(shape)

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        key = key + (slice(None),) * (self.ndim - len(key))
        bins = np.arange(self.rows.table.shape[0]).reshape(self.shape[:-1])[key[:-1]]
        table = self.rows.table[bins.reshape(-1)]
        out = np.zeros((*table.shape, self.rows.rows.shape[1]))
        i, g = np.nonzero(table >= 0)
        out[i, g] = self.rows.rows[table[i, g]]
        return out.reshape(*bins.shape, self.shape[-1])[..., key[-1]]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        out = self[()]
        return out if dtype is None else out.astype(dtype, copy=False)


class LazyHistograms(MutableMapping[str, hist.Hist]):
    """Histograms by name, each stored as its :class:`TensorFill` and made a ``hist.Hist`` when
    it is first read (then kept as that).

    What the processors' ``postprocess`` returns: a run whose histograms only go to a file
    (``wmass histmaker``) never makes them (:func:`analysis.io.write_histograms` writes the
    accumulators through :meth:`raw_items`), which saves the ~1.5 s of transposing copies of a
    run with all variations; whoever reads them gets ``hist.Hist`` as before.
    """

    def __init__(self, items: Iterable[tuple[str, Any]] | dict[str, Any] = ()) -> None:
        self._items: dict[str, Any] = dict(items)

    def __getitem__(self, name: str) -> hist.Hist:
        value = self._items[name]
        if isinstance(value, TensorFill):
            value = self._items[name] = value.to_hist()
        return value

    def __setitem__(self, name: str, value: Any) -> None:
        self._items[name] = value

    def __delitem__(self, name: str) -> None:
        del self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def raw_items(self) -> Iterator[tuple[str, Any]]:
        """``(name, TensorFill or hist.Hist)``: nothing is converted."""
        return iter(list(self._items.items()))

    def copy(self) -> LazyHistograms:
        """Another mapping over the same (unconverted) histograms."""
        return LazyHistograms(self._items)

    def __repr__(self) -> str:
        return f"LazyHistograms({list(self._items)})"
