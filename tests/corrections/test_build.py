"""Correction payloads built from truth.json: valid correctionlib, reproducing the truth."""

from __future__ import annotations

import gzip
import json
import pickle

import correctionlib
import correctionlib.schemav2 as cs
import numpy as np
import pytest

from corrections import CorrectionNames, Corrections, build_corrections, eigen_variations


@pytest.fixture
def payload(truth_json, tmp_path):
    return build_corrections(truth_json, tmp_path / "out" / "corrections.json")


def _centres(edges):
    e = np.asarray(edges)
    return 0.5 * (e[1:] + e[:-1])


def test_validates_with_correctionlib(payload):
    cs.CorrectionSet.model_validate(json.loads(payload.read_text()))
    cset = correctionlib.CorrectionSet.from_file(str(payload))
    assert set(cset) == set(vars(CorrectionNames()).values())


def test_scale_factors_reproduce_truth(payload, truth_json):
    truth = json.loads(truth_json.read_text())
    corr = Corrections.from_file(payload)
    eff = truth["efficiency"]
    eta, pt = np.meshgrid(_centres(eff["eta_edges"]), _centres(eff["pt_edges"]), indexing="ij")
    for kind, name in (("idip", "muon_idip_sf"), ("trigger", "muon_trigger_sf")):
        expected = np.asarray(eff[kind]["data"]) / np.asarray(eff[kind]["mc"])
        got = corr.evaluate(name, eta.ravel(), pt.ravel(), "nominal").reshape(eta.shape)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        keys = corr.keys(name)
        assert keys[0] == "nominal" and len(keys) == 7
        up = corr.evaluate(name, eta.ravel(), pt.ravel(), "eig0_up").reshape(eta.shape)
        down = corr.evaluate(name, eta.ravel(), pt.ravel(), "eig0_down").reshape(eta.shape)
        np.testing.assert_allclose(up - got, got - down, rtol=1e-9, atol=1e-15)
        assert np.all(np.abs(up - got) < 0.05) and np.any(up != got)
    np.testing.assert_allclose(corr.edges("muon_idip_sf", "eta"), eff["eta_edges"])
    np.testing.assert_allclose(corr.edges("muon_idip_sf", "pt"), eff["pt_edges"])


def test_eigen_variations_reproduce_the_fit_covariance():
    rng = np.random.default_rng(2)
    data, mc = rng.uniform(0.8, 0.95, (3, 10)), rng.uniform(0.85, 0.97, (3, 10))
    edges = np.linspace(20, 70, 11)
    sf, shifts = eigen_variations(data, mc, edges, degree=2, probes=1e4)
    assert shifts.shape == (3, 3, 10)
    # sum over eigenvectors of shift shift^T is the covariance of the fitted curve
    cov = np.einsum("kep,keq->epq", shifts, shifts)
    u = np.linspace(-1, 1, 10)
    a = np.vander(u, 3, increasing=True)
    var = sf**2 * (data * (1 - data) / 1e4 / data**2 + mc * (1 - mc) / 1e4 / mc**2)
    for e in range(3):
        c = np.linalg.inv(a.T @ (a / var[e][:, None]))
        np.testing.assert_allclose(cov[e], a @ c @ a.T, rtol=1e-8)


def test_pileup_prefiring_scale(payload, truth_json):
    truth = json.loads(truth_json.read_text())
    corr = Corrections.from_file(payload)
    pu = truth["pileup"]
    x = np.arange(100) + 0.5
    mc = np.asarray(pu["mc"])
    for key, source in (("nominal", "data"), ("up", "data_up"), ("down", "data_down")):
        expected = np.where(mc > 0, np.asarray(pu[source]) / np.where(mc > 0, mc, 1), 1.0)
        np.testing.assert_allclose(corr.evaluate("pileup", x, key), expected, rtol=1e-10)
    # weighted MC profile becomes the data profile
    np.testing.assert_allclose(
        mc * corr.evaluate("pileup", x, "nominal"), pu["data"], rtol=1e-10, atol=1e-15
    )
    pre = truth["prefiring"]
    c = _centres(pre["eta_edges"])
    p = np.asarray(pre["probability"])
    s = np.asarray(pre["stat_uncertainty"])
    np.testing.assert_allclose(corr.evaluate("muon_prefiring", c, "nominal"), p)
    np.testing.assert_allclose(corr.evaluate("muon_prefiring", c, "up"), p + s)
    np.testing.assert_allclose(corr.evaluate("muon_prefiring", c, "down"), np.clip(p - s, 0, 1))
    ms = truth["momentum_scale"]
    c = _centres(ms["eta_edges"])
    bias = np.asarray(ms["data_bias"])
    biased = 40.0 * (1 + bias)
    np.testing.assert_allclose(biased * corr.evaluate("muon_scale_correction", c), 40.0, rtol=1e-12)
    np.testing.assert_allclose(corr.evaluate("muon_scale_uncertainty", c), ms["uncertainty"])


def test_evaluator_pickles_and_reads_gzip(payload, tmp_path):
    gz = tmp_path / "c.json.gz"
    gz.write_bytes(gzip.compress(payload.read_bytes()))
    corr = Corrections.from_file(gz)
    again = pickle.loads(pickle.dumps(corr))  # workers receive it this way
    x = np.array([0.3, -1.7])
    np.testing.assert_array_equal(
        again.evaluate("muon_prefiring", x, "nominal"),
        corr.evaluate("muon_prefiring", x, "nominal"),
    )


def test_missing_truth_key(tmp_path):
    (tmp_path / "t.json").write_text(json.dumps({"seed": 1}))
    with pytest.raises(KeyError, match="efficiency"):
        build_corrections(tmp_path / "t.json", tmp_path / "c.json")
