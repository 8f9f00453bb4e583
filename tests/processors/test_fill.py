"""TensorFill against hist's own fill on random values."""

from __future__ import annotations

import copy
import pickle

import hist
import numpy as np
import pytest

from processors.fill import SPARSE_MIN_BYTES, BlockRows, SparseArray, TensorFill, bin_index

AXES = [
    hist.axis.Regular(30, 26, 56, name="pt", flow=False),
    hist.axis.Regular(48, -2.4, 2.4, name="eta", flow=False),
    hist.axis.Regular(2, -2, 2, name="charge", flow=False),
    hist.axis.Boolean(name="passIso"),
    hist.axis.Variable([0, 20, 40, np.inf], name="mt", flow=False),
]


@pytest.fixture
def values():
    rng = np.random.default_rng(5)
    n = 5000
    return (
        (
            rng.uniform(20, 60, n),
            rng.uniform(-2.6, 2.6, n),
            rng.choice([-1, 1], n),
            rng.random(n) < 0.6,
            rng.uniform(0, 100, n),
        ),
        rng.normal(1, 0.3, n),
        rng.normal(1, 0.05, (n, 7)).astype(np.float32),
    )


def test_nominal_with_sumw2(values):
    vals, w, _ = values
    tf = TensorFill(AXES, sumw2=True)
    tf.fill(tf.index(*vals), w)
    ref = hist.Hist(*AXES, storage=hist.storage.Weight()).fill(*vals, weight=w)
    h = tf.to_hist()
    np.testing.assert_allclose(h.values(), ref.values(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(h.variances(), ref.variances(), rtol=1e-12, atol=1e-12)


def test_tensor_equals_one_fill_per_variation(values):
    vals, w, ratio = values
    var = hist.axis.StrCategory([f"v{i}" for i in range(7)], name="v", overflow=False)
    tf = TensorFill(AXES, var)
    tf.fill(tf.index(*vals), w, ratio)
    h = tf.to_hist()
    assert h.axes.name[-1] == "v" and h.storage_type is hist.storage.Double
    ref = hist.Hist(*AXES, var)
    for j in range(7):
        ref.fill(*vals, f"v{j}", weight=w * ratio[:, j].astype(np.float64))
    np.testing.assert_array_equal(h.values(), ref.values())


def test_flow_axes_and_categories():
    axes = [hist.axis.Variable([0, 1, 2], name="x"), hist.axis.IntCategory([3, 7], name="c")]
    x = np.array([-1.0, 0.5, 1.5, 5.0, 0.5])
    c = np.array([3, 7, 9, 3, 7])
    tf = TensorFill(axes, sumw2=True)
    tf.fill(bin_index(axes, x, c), np.ones(5))
    ref = hist.Hist(*axes, storage=hist.storage.Weight()).fill(x, c)
    np.testing.assert_array_equal(tf.to_hist().view(flow=True).value, ref.view(flow=True).value)


def test_blocks_and_shapes():
    axes = [hist.axis.Regular(4, 0, 4, name="x", flow=False)]
    tf = TensorFill(axes, hist.axis.Integer(0, 4, name="v", flow=False))
    # two events, block size 2, two blocks; event 0 has objects in blocks 0 and 1
    tf.fill_blocks(
        np.array([0, 3]),
        np.array([2.0, 1.0]),
        np.array([0, 2, 3]),
        np.array([0, 1, -1]),
        np.array([[1.5, 0.5], [2.0, 3.0], [9.0, 9.0]]),
    )
    v = tf.to_hist().values()
    np.testing.assert_array_equal(v[0], [3.0, 1.0, 4.0, 6.0])
    np.testing.assert_array_equal(v[3], [1.0, 1.0, 1.0, 1.0])
    shape = TensorFill(axes, hist.axis.Integer(0, 4, name="v", flow=False))
    shape.fill_shape_blocks(
        np.array([1, -1]),
        np.array([1.0, 2.0]),
        np.array([0, 1, 2]),
        np.array([1, 0]),
        np.array([[2, 0], [1, -1]]),
    )
    v = shape.to_hist().values()
    np.testing.assert_array_equal(v[:, 0], [0, 3, 0, 0])  # event 1 moved into bin 1, event 0 stays
    np.testing.assert_array_equal(v[:, 1], [0, 1, 0, 0])  # event 1 shifted out of range
    np.testing.assert_array_equal(v[:, 2], [0, 0, 1, 0])  # event 0 up-shifted
    np.testing.assert_array_equal(v[:, 3], [1, 0, 0, 0])


def test_sparse_block_fill_equals_dense_and_adds_up():
    """Writing only the event's own blocks (plus a shared base) gives the same sums as writing
    every variation, with sum of squares, several objects per block, and after merging."""
    rng = np.random.default_rng(3)
    axes = [hist.axis.Regular(5, 0, 5, name="x", flow=False)]
    n, n_blocks, n_local = 400, 6, 4
    counts = rng.integers(0, 4, n)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    group = rng.integers(-1, n_blocks, offsets[-1])
    ratio = rng.normal(1, 0.2, (offsets[-1], n_local)).astype(np.float32)
    index = rng.integers(-1, 5, n)
    weight = rng.normal(1, 0.5, n)
    var = hist.axis.Integer(0, n_blocks * n_local, name="v", flow=False)
    parts = []
    for dense in (True, False):
        tf = TensorFill(axes, var, sumw2=True)
        tf.fill_blocks(index, weight, offsets, group, ratio, dense=dense)
        parts.append(tf)
    dense, sparse = parts
    assert sparse.base is not None and dense.base is None
    np.testing.assert_allclose(sparse.values(), dense.values(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sparse.variances(), dense.variances(), rtol=1e-12, atol=1e-12)
    twice = sparse + sparse
    sparse += dense
    np.testing.assert_allclose(twice.values(), 2 * dense.values(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        sparse.to_hist().values(), 2 * dense.values(), rtol=1e-12, atol=1e-12
    )


def test_uhi_header_made_once_per_binning_and_given_as_a_copy(values):
    """``_to_uhi_`` keeps the header (axes, metadata) of a binning and label for the next
    accumulator of the same histogram (another dataset): equal to a fresh one, never shared
    with what a caller changes, and never taken for another label or binning."""
    from boost_histogram.serialization import to_uhi

    vals, w, ratio = values
    var = hist.axis.StrCategory([f"v{i}" for i in range(7)], name="var", overflow=False)

    def fill(label, axes=AXES, variation=var):
        tf = TensorFill(axes, variation, sumw2=True, label=label)
        tf.fill(tf.index(*vals), w, ratio)
        return tf

    first = fill("pdf")._to_uhi_()
    first["axes"][0]["label"] = "changed by a caller"
    first["metadata"]["name"] = "changed"
    second = fill("pdf")
    again = second._to_uhi_()
    expected = to_uhi(second.to_hist())
    assert _plain(again["axes"]) == _plain(expected["axes"])
    assert again["metadata"] == expected["metadata"]
    assert again["axes"] is not second._to_uhi_()["axes"]
    assert fill("other")._to_uhi_()["metadata"] == to_uhi(fill("other").to_hist())["metadata"]
    other_axes = [hist.axis.Regular(30, 26, 56, name="ptOther", flow=False), *AXES[1:]]
    got = fill("pdf", other_axes)._to_uhi_()
    assert _plain(got["axes"]) == _plain(to_uhi(fill("pdf", other_axes).to_hist())["axes"])
    assert hist.Hist(fill("pdf", other_axes)) == fill("pdf", other_axes).to_hist()


def _plain(x):
    """Nested lists and dicts with arrays as lists, for ``==``."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x.tolist() if isinstance(x, np.ndarray) else x


def _block_filled(seed: int, *, dense_array: bool = False) -> TensorFill:
    """A W-like accumulator of block variations: 40 eta blocks of 8 variations, each event
    writing only its own block (plus the shared base): mostly zeros, as in the histmaker.
    ``dense_array``: filled into the dense array (read before the fill) instead of rows."""
    rng = np.random.default_rng(seed)
    axes = [hist.axis.Regular(40, -2.4, 2.4, name="eta", flow=False)]
    axes.append(hist.axis.Regular(30, 26, 56, name="pt", flow=False))
    n, n_blocks, n_local = 3000, 40, 8
    eta, pt = rng.uniform(-2.4, 2.4, n), rng.uniform(26, 56, n)
    tf = TensorFill(
        axes, hist.axis.Integer(0, n_blocks * n_local, name="v", flow=False), sumw2=True
    )
    block = np.clip(((eta + 2.4) / 0.12).astype(np.int64), 0, n_blocks - 1)
    ratio = rng.normal(1, 0.01, (n, n_local))
    if dense_array:
        assert tf.sumw.shape == tf.sumw2.shape  # read: made dense
    tf.fill_blocks(tf.index(eta, pt), rng.normal(1, 0.3, n), np.arange(n + 1), block, ratio)
    return tf


def test_block_variations_accumulate_as_the_rows_of_the_blocks_they_fill():
    """A block fill keeps one row per (bin, block) pair it met, not the dense array; chunk
    after chunk, added up and sent to another process, its sums are those of the dense
    array, bit for bit."""
    chunks = [_block_filled(seed) for seed in (5, 6, 7)]
    dense = [_block_filled(seed, dense_array=True) for seed in (5, 6, 7)]
    first = chunks[0].__dict__["_sumw"]
    assert isinstance(first, BlockRows) and isinstance(chunks[0].__dict__["_sumw2"], BlockRows)
    n_bins, n_var = first.shape
    assert first.count <= 3000 and first.count < n_bins * first.table.shape[1] / 4
    assert first.rows[: first.count].nbytes < dense[0].sumw.nbytes / 4
    accumulator, expected = chunks[0], dense[0]
    for a, b in zip(chunks[1:], dense[1:], strict=True):
        accumulator += pickle.loads(pickle.dumps(a))  # as a worker's harvest receives it
        expected += b
    assert isinstance(accumulator.__dict__["_sumw"], BlockRows)  # added as rows
    assert len(pickle.dumps(accumulator)) < expected.sumw.nbytes / 4
    # written (analysis.io.write_hist slices it chunk by chunk) without the dense array
    stored = accumulator._to_uhi_()["storage"]
    assert isinstance(accumulator.__dict__["_sumw"], BlockRows)
    want = expected.values().reshape(stored["values"].shape)
    assert stored["values"][3:7].tobytes() == want[3:7].tobytes()
    assert stored["values"][:, 5:9, 16:24].tobytes() == want[:, 5:9, 16:24].tobytes()
    assert np.asarray(stored["variances"]).tobytes() == expected.variances().tobytes()
    for got, want in (
        (accumulator.values(), expected.values()),
        (accumulator.variances(), expected.variances()),
    ):
        assert got.tobytes() == want.tobytes()
    with pytest.raises(ValueError, match="cannot add block rows"):
        first.add(BlockRows(n_bins + 1, first.table.shape[1], n_var // first.table.shape[1]))


def test_an_accumulator_sent_to_another_process_is_its_nonzero_entries_and_comes_back_exact():
    """Pickled (the harvest's transfers), a mostly-zero array travels as its nonzero entries:
    the block-variation accumulator shrinks several-fold and comes back bit for bit."""
    tf = _block_filled(1, dense_array=True)
    assert tf.sumw.nbytes >= SPARSE_MIN_BYTES
    tf.sumw[0, -1] = -0.0  # a zero with its sign bit: kept, bit for bit
    blob = pickle.dumps(tf, protocol=5)
    assert len(blob) < tf.sumw.nbytes / 4  # sumw and sumw2 together, in a quarter of one
    back = pickle.loads(blob)
    assert isinstance(back.__dict__["_sumw"], SparseArray)  # dense only when read
    assert back.sumw.dtype == np.float64 and back.sumw.flags.writeable
    assert back.sumw.tobytes() == tf.sumw.tobytes()
    np.testing.assert_array_equal(back.values(), tf.values())
    np.testing.assert_array_equal(back.variances(), tf.variances())
    np.testing.assert_array_equal(back.to_hist().values(), tf.to_hist().values())


def test_adding_a_received_accumulator_equals_adding_the_original_bit_for_bit():
    """The tree of additions adds what it received without making it dense first; the sums
    are those of adding the dense original, exactly (x + 0.0 is x)."""
    one, other = _block_filled(2), _block_filled(3, dense_array=True)
    expected = copy.deepcopy(one)
    expected += other
    received = pickle.loads(pickle.dumps(other))
    one += received
    assert isinstance(received.__dict__["_sumw"], SparseArray)  # added as it came
    np.testing.assert_array_equal(one.sumw, expected.sumw)
    np.testing.assert_array_equal(one.sumw2, expected.sumw2)
    np.testing.assert_array_equal(one.values(), expected.values())
    # into an accumulator without a base yet (a dataset's first arrival at the driver)
    fresh = TensorFill(one.axes, one.variation, sumw2=True)
    fresh += pickle.loads(pickle.dumps(other))
    np.testing.assert_array_equal(fresh.values(), other.values())


def test_a_dense_array_travels_as_it_is():
    """An array filled everywhere (the nominal, a PDF tensor) is not worth an index: it is
    pickled as the array, and the encoding says so."""
    full = np.random.default_rng(4).normal(size=(400, 400))
    assert SparseArray.encode(full) is full
    x = hist.axis.Regular(400, 0, 1, name="x", flow=False)
    tf = TensorFill([x], hist.axis.Integer(0, 400, name="v", flow=False))
    tf.sumw[...] = full
    back = pickle.loads(pickle.dumps(tf))
    assert isinstance(back.__dict__["_sumw"], np.ndarray)
    np.testing.assert_array_equal(back.sumw, tf.sumw)
    with pytest.raises(ValueError, match=r"shape \(3,\) to \(4,\)"):
        SparseArray((3,), np.array([0]), np.array([1.0])).add_to(np.zeros(4))
