"""The structured likelihood: its exact derivatives equal JAX autodiff, templates are reproduced."""

from __future__ import annotations

import numpy as np
import pytest

from fit import DenseModel, FitInputBuilder, Model, fit
from tests.fit import fit_models


@pytest.fixture(scope="module")
def dense_reference(w_model):
    return DenseModel(w_model)


@pytest.mark.parametrize(
    ("point", "dense_fraction"), [(0.0, 0.3), (0.3, 0.0), (0.8, 0.3), (0.8, 1.0)]
)
def test_structured_derivatives_equal_jax_autodiff(w_model, dense_reference, point, dense_fraction):
    """Gradient, Hessian (dense/sparse column split) and HVP of the sparse path = jax.grad/hessian,
    with asymmetric interpolation, Barlow-Beeston-lite and a masked channel, inside (|x| < 1/2)
    and outside the interpolation's polynomial region; with all columns dense (BLAS blocks),
    none, or a mix."""
    rng = np.random.default_rng(11)
    x = point * rng.choice([-1.0, 1.0], w_model.nparams) * rng.uniform(0.5, 1.5, w_model.nparams)
    sparse = Model(w_model, dense_fraction=dense_fraction)
    dense = dense_reference
    f_s, g_s = sparse.value_and_grad(x)
    f_d, g_d = dense.value_and_grad(x)
    assert f_s == pytest.approx(f_d, rel=1e-12)
    np.testing.assert_allclose(g_s, g_d, rtol=1e-9, atol=1e-9 * np.abs(g_d).max())
    H_d = dense.hessian(x)
    np.testing.assert_allclose(sparse.hessian(x), H_d, rtol=1e-9, atol=1e-10 * np.abs(H_d).max())
    v = rng.normal(size=x.size)
    np.testing.assert_allclose(
        sparse.hessp(x, v), H_d @ v, rtol=1e-9, atol=1e-10 * np.abs(H_d @ v).max()
    )


def test_interpolation_reproduces_the_up_and_down_templates():
    """At theta = +1 / -1 the prediction is exactly the up / down template; at 0 the nominal."""
    nom, up, down = (
        np.array([100.0, 50.0, 10.0]),
        np.array([110.0, 52.0, 9.0]),
        np.array([95.0, 47.0, 12.0]),
    )
    b = FitInputBuilder()
    b.add_channel("c", nom)
    b.add_process("c", "p", nom)
    b.add_systematic("s", {("c", "p"): (up, down)})
    m = Model(b.build())
    np.testing.assert_allclose(m.yields(np.array([1.0]))[:, 0], up, rtol=1e-14)
    np.testing.assert_allclose(m.yields(np.array([-1.0]))[:, 0], down, rtol=1e-14)
    np.testing.assert_allclose(m.yields(np.array([0.0]))[:, 0], nom, rtol=1e-15)


def test_lnN_is_kappa_to_the_theta():
    b = FitInputBuilder()
    b.add_channel("c", np.array([100.0, 100.0]))
    b.add_process("c", "p", np.array([60.0, 40.0]))
    b.add_norm("n", ["p"], 1.1)
    m = Model(b.build())
    np.testing.assert_allclose(
        m.yields(np.array([2.5]))[:, 0], np.array([60.0, 40.0]) * 1.1**2.5, rtol=1e-14
    )


def test_saturated_nll_is_zero_when_prediction_equals_data(w_model):
    """Each bin's saturated value is subtracted: on Asimov data at the nominal point NLL = 0."""
    m = Model(w_model)
    assert m.value(np.zeros(w_model.nparams)) == pytest.approx(0.0, abs=1e-9)


def test_sparse_and_dense_paths_give_the_same_fit_to_1e6_relative():
    fi = fit_models.w_like_model(asymmetric=True, mc_stat=0.02)
    rng = np.random.default_rng(5)
    data = rng.poisson(Model(fi).yields(np.zeros(fi.nparams)).sum(axis=1)).astype(float)
    data[~fi.bin_mask] = 0
    s = fit(fi, data=data, backend="sparse", yields=False)
    d = fit(fi, data=data, backend="dense", yields=False)
    np.testing.assert_allclose(s.values, d.values, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(s.errors, d.errors, rtol=1e-6)
    assert s.pois["mW"]["value"] == pytest.approx(d.pois["mW"]["value"], rel=1e-9)


def test_expected_information_matches_jax_and_the_asimov_hessian(w_model, dense_reference):
    """Fisher = M^T diag(1/n - 1/(n + k)) M + C (the structured blocks vs jax.jacfwd), and on
    Asimov data at the nominal point it is the Hessian itself."""
    x = np.random.default_rng(4).normal(0.0, 0.3, w_model.nparams)
    for fraction in (0.0, 0.3, 1.0):
        np.testing.assert_allclose(
            Model(w_model, dense_fraction=fraction).fisher(x),
            dense_reference.fisher(x),
            rtol=1e-10,
            atol=1e-10,
        )
    m = Model(w_model)  # the model's data are the nominal sum: Asimov
    x0 = np.zeros(w_model.nparams)
    np.testing.assert_allclose(m.fisher(x0), m.hessian(x0), rtol=1e-10, atol=1e-8)
