"""Binned corrections as lookup tables: the very numbers correctionlib returns, or no table."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from corrections import Corrections, build_corrections
from processors.variations import EfficiencyModel, pileup_weights, prefiring_weights


@pytest.fixture
def corr(truth_json, tmp_path) -> Corrections:
    return Corrections.from_file(build_corrections(truth_json, tmp_path / "corrections.json"))


def _inputs(edges: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Random values over and beyond ``edges``, every edge itself, and values just beside."""
    lo, hi = edges[0], edges[-1]
    span = hi - lo
    x = rng.uniform(lo - 0.2 * span, hi + 0.2 * span, n)
    return np.concatenate([x, edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)])


@pytest.mark.parametrize(
    ("name", "keys", "inputs"),
    [
        ("pileup", ("nominal", "up", "down"), ("nTrueInt",)),
        ("muon_prefiring", ("nominal", "up", "down"), ("eta",)),
        ("muon_idip_sf", ("nominal", "eig0_up", "eig0_down"), ("eta", "pt")),
        ("muon_trigger_sf", ("nominal", "eig1_up"), ("eta", "pt")),
    ],
)
def test_table_lookup_equals_correctionlib_bit_for_bit(corr, name, keys, inputs):
    table = corr.table(name, keys)
    assert table is not None
    rng = np.random.default_rng(3)
    values = [_inputs(corr.edges(name, i), 2000, rng) for i in inputs]
    if len(values) == 2:  # every eta value against every pt value would be big: pair them
        n = min(len(v) for v in values)
        values = [rng.permutation(v)[:n] for v in values]
    bins = table.bins(*values)
    for key in keys:
        np.testing.assert_array_equal(table.row(key)[bins], corr.evaluate(name, *values, key))


def test_another_structure_has_no_table_and_the_weights_stay_correctionlibs(corr, tmp_path):
    doc = json.loads(corr.text)
    for c in doc["corrections"]:
        if c["name"] in ("pileup", "muon_prefiring"):
            for item in c["data"]["content"]:  # uniform binnings: index arithmetic, no edges
                edges = item["value"]["edges"]
                item["value"]["edges"] = {"n": len(edges) - 1, "low": edges[0], "high": edges[-1]}
    other = Corrections(json.dumps(doc))
    assert other.table("pileup", ("nominal", "up", "down")) is None
    assert other.table("muon_prefiring", ("nominal",)) is None
    assert corr.table("pileup", ("nominal", "no-such-variation")) is None
    rng = np.random.default_rng(4)
    n_true = rng.uniform(0, 80, 500)
    nominal, ratio = pileup_weights(other, n_true)
    np.testing.assert_array_equal(nominal, other.evaluate("pileup", n_true, "nominal"))
    up = other.evaluate("pileup", n_true, "up")
    np.testing.assert_allclose(ratio[:, 0], np.where(nominal != 0, up / nominal, 1.0), rtol=1e-15)
    eta = rng.uniform(-2.4, 2.4, 500)
    weight, blocks = prefiring_weights(other, eta, np.arange(0, 501, 1), True)
    np.testing.assert_allclose(weight, 1 - other.evaluate("muon_prefiring", eta, "nominal"))
    keep_up = 1 - other.evaluate("muon_prefiring", eta, "up")
    np.testing.assert_allclose(blocks.ratio[:, 0], keep_up / weight, rtol=1e-15)


def test_efficiency_ratios_from_the_table_equal_correctionlib(corr):
    model = EfficiencyModel(corr)
    rng = np.random.default_rng(5)
    eta, pt = rng.uniform(-2.6, 2.6, (300, 2)), rng.uniform(10, 90, (300, 2))
    leg = rng.random((300, 2)) < 0.5
    sf, blocks = model.weights(eta, pt, leg, True)
    e, p, lg = eta.ravel(), pt.ravel(), leg.ravel()
    for j, (kind, eig, direction) in enumerate(model.local):
        name = model.kinds[kind]
        varied = corr.evaluate(name, e, p, f"{eig}_{direction}")
        nominal = corr.evaluate(name, e, p, "nominal")
        expected = varied / nominal
        if kind == "trigger":
            expected[~lg] = 1.0
        np.testing.assert_array_equal(blocks.ratio[:, j], expected)
    idip = corr.evaluate("muon_idip_sf", e, p, "nominal")
    trigger = np.where(lg, corr.evaluate("muon_trigger_sf", e, p, "nominal"), 1.0)
    np.testing.assert_allclose(sf, (idip * trigger).reshape(300, 2).prod(axis=1), rtol=1e-15)


def test_tables_stay_behind_when_the_payload_goes_to_a_worker(corr):
    size = len(pickle.dumps(corr))
    assert corr.table("pileup", ("nominal", "up", "down")) is not None
    again = pickle.loads(pickle.dumps(corr))
    assert len(pickle.dumps(corr)) == size
    assert "_tables" not in again.__dict__
