"""pyhf interoperability: our import of a workspace is pyhf's own likelihood, fitted faster.

Every reference is built and evaluated by pyhf itself in the test (numpy backend): the NLL
differences between parameter points, the best fit and the errors of pyhf's MINUIT fit (tight
tolerance, strategy 2) and the inverse of the Hessian of pyhf's own ``logpdf``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyhf
import pytest

from fit.pyhf import WorkspaceError, fit_model, fit_workspace, read_workspace

CODES_PYHF_DEFAULT = (
    None  # what pyhf.Workspace(spec).model() builds: normsys code4, histosys code4p
)
CODES_EXPONENTIAL_LINEAR = {"normsys": {"interpcode": "code1"}, "histosys": {"interpcode": "code0"}}


def _sample(name, data, modifiers):
    return {"name": name, "data": [float(v) for v in data], "modifiers": modifiers}


def make_workspace(
    seed: int,
    channels: tuple[tuple[str, int], ...] = (("sr", 12), ("cr", 6)),
    *,
    shapesys: bool = True,
    lumi: bool = True,
    shapefactor: bool = False,
    fixed: tuple[str, ...] = (),
) -> dict:
    """Signal + two backgrounds; the first channel is the signal region, the others have no signal.

    Modifiers: normfactor ``mu`` (POI), normsys on every sample, histosys on both backgrounds,
    staterror per channel, optionally shapesys, lumi and a shapefactor shared by all channels
    (then all channels must have the same number of bins). Data: Poisson around the nominal
    with mu = 1.3 and shifted nuisances, seeded.
    """
    rng = np.random.default_rng(seed)
    spec_channels, observations = [], []
    for i, (name, nbins) in enumerate(channels):
        x = (np.arange(nbins) + 0.5) / nbins
        bkg = 200.0 * np.exp(-1.5 * x) * (1 + 0.5 * i)
        other = 40.0 + 20.0 * x
        samples = []
        if i == 0:
            sig = 30.0 * np.exp(-(((x - 0.5) / 0.15) ** 2)) + 0.5
            mods = [
                {"name": "mu", "type": "normfactor", "data": None},
                {"name": "sig_theory", "type": "normsys", "data": {"hi": 1.06, "lo": 0.95}},
            ]
            if lumi:
                mods.append({"name": "lumi", "type": "lumi", "data": None})
            samples.append(_sample("signal", sig, mods))
        bkg_mods = [
            {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.10, "lo": 0.88}},
            {
                "name": "bkg_shape",
                "type": "histosys",
                "data": {
                    "hi_data": list(bkg * (1 + 0.12 * x)),
                    "lo_data": list(bkg * (1 - 0.07 * x)),
                },
            },
            {"name": f"staterror_{name}", "type": "staterror", "data": list(0.04 * bkg)},
        ]
        if shapefactor:
            bkg_mods.append({"name": "bkg_sf", "type": "shapefactor", "data": None})
        samples.append(_sample("bkg", bkg, bkg_mods))
        other_mods = [
            {"name": "other_norm", "type": "normsys", "data": {"hi": 1.2, "lo": 0.85}},
            {
                "name": "other_shape",
                "type": "histosys",
                "data": {
                    "hi_data": list(other * (1.05 - 0.1 * x)),
                    "lo_data": list(other * (0.97 + 0.05 * x)),
                },
            },
            {"name": f"staterror_{name}", "type": "staterror", "data": list(0.06 * other)},
        ]
        if lumi:
            other_mods.append({"name": "lumi", "type": "lumi", "data": None})
        if shapesys:
            other_mods.append(
                {"name": f"other_mcstat_{name}", "type": "shapesys", "data": list(0.08 * other)}
            )
        samples.append(_sample("other", other, other_mods))
        spec_channels.append({"name": name, "samples": samples})
        truth = bkg * 1.04 + other * 0.97 + (1.3 * sig if i == 0 else 0.0)
        observations.append({"name": name, "data": [float(v) for v in rng.poisson(truth)]})
    parameters = [{"name": "mu", "bounds": [[-5.0, 10.0]]}]
    if lumi:
        parameters.append(
            {
                "name": "lumi",
                "auxdata": [1.0],
                "sigmas": [0.025],
                "bounds": [[0.5, 1.5]],
                "inits": [1.0],
            }
        )
    for name in fixed:
        configured = [p for p in parameters if p["name"] == name]
        if configured:
            configured[0]["fixed"] = True
        else:
            parameters.append({"name": name, "fixed": True})
    return {
        "channels": spec_channels,
        "observations": observations,
        "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": parameters}}],
        "version": "1.0.0",
    }


def pyhf_model(spec, modifier_settings=None):
    ws = pyhf.Workspace(spec)
    kw = {} if modifier_settings is None else {"modifier_settings": modifier_settings}
    model = ws.model(**kw)
    return model, ws.data(model)


def assert_values_agree(ours, ref, errors, rtol=1e-4):
    """Agree to ``rtol`` relative, or to ``rtol`` of an error for values near zero."""
    ours, ref, errors = map(np.asarray, (ours, ref, errors))
    off = np.abs(ours - ref) > rtol * np.maximum(np.abs(ref), errors)
    assert not off.any(), list(zip(ours[off], ref[off], errors[off], strict=True))


@pytest.fixture
def numpy_minuit():
    """pyhf's numpy backend with a tight MINUIT (strategy 2); restores the default after."""
    pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer(tolerance=1e-9, strategy=2))
    yield
    pyhf.set_backend("numpy", pyhf.optimize.scipy_optimizer())


# ---------------------------------------------------------------- the likelihood is pyhf's


@pytest.mark.parametrize("settings", [CODES_PYHF_DEFAULT, CODES_EXPONENTIAL_LINEAR])
def test_nll_differences_equal_pyhf_logpdf_differences(settings):
    spec = make_workspace(seed=1)
    model, data = pyhf_model(spec, settings)
    ours = read_workspace(spec, modifier_settings=settings)
    assert ours.parameters == tuple(model.config.par_names)
    p0 = np.asarray(model.config.suggested_init())
    rng = np.random.default_rng(7)
    # nuisances over +-2 sigma (crossing the |theta| < 1 interpolation region and beyond),
    # gammas and scale factors within +-20 %
    scale = np.where(p0 == 0, 1.0, 0.1)
    ref0, our0 = -model.logpdf(p0, data)[0], float(ours.nll(p0))
    for _ in range(25):
        p = p0 + scale * rng.normal(size=p0.size)
        ref = -model.logpdf(p, data)[0] - ref0
        our = float(ours.nll(p)) - our0
        assert abs(our - ref) < 1e-8, (p, our, ref)


def test_parameters_init_bounds_fixed_and_auxdata_follow_the_measurement():
    spec = make_workspace(seed=2, fixed=("other_norm",))
    model, data = pyhf_model(spec)
    ours = read_workspace(spec)
    assert ours.poi == model.config.poi_name == "mu"
    assert ours.parameters == tuple(model.config.par_names)
    np.testing.assert_array_equal(ours.init, model.config.suggested_init())
    np.testing.assert_array_equal(ours.bounds, np.asarray(model.config.suggested_bounds()))
    np.testing.assert_array_equal(ours.fixed, model.config.suggested_fixed())
    # auxiliary data of the constrained parameters, in pyhf's auxdata order
    ours_aux = []
    for name in model.config.auxdata_order:
        sl = model.config.par_slice(name)
        ours_aux.extend(ours.auxdata[sl])
    np.testing.assert_allclose(ours_aux, model.config.auxdata, rtol=1e-12)
    np.testing.assert_array_equal(ours.observed, data[: model.config.nmaindata])


# ---------------------------------------------------------------- best fit and errors


@pytest.mark.parametrize(
    "spec_kwargs",
    [
        {"channels": (("sr", 10),)},
        {"channels": (("sr", 12), ("cr", 6))},
        {"channels": (("sr", 8), ("cra", 8), ("crb", 8)), "shapefactor": True, "shapesys": False},
    ],
    ids=["1ch-10bins", "2ch-12+6bins", "3ch-shapefactor"],
)
def test_best_fit_and_errors_agree_with_pyhf_minuit(numpy_minuit, spec_kwargs):
    spec = make_workspace(seed=3, **spec_kwargs)
    model, data = pyhf_model(spec)
    n = len(model.config.suggested_init())
    # MINUIT without limits: with limits its errors come from a transformed internal
    # parameter and differ from the Hessian's by up to 2 % here
    ref_values, ref_errors = pyhf.infer.mle.fit(
        data, model, return_uncertainties=True, par_bounds=[(-math.inf, math.inf)] * n
    ).T
    ours = fit_model(read_workspace(spec))
    assert ours.edm < 1e-10
    assert_values_agree(ours.values, ref_values, ref_errors)
    np.testing.assert_allclose(ours.errors, ref_errors, rtol=1e-3)
    # and the minimum is pyhf's: its NLL there is not above pyhf's own best fit
    assert -model.logpdf(ours.values, data)[0] <= -model.logpdf(ref_values, data)[0] + 1e-9


@pytest.mark.slow  # jit-compiling pyhf's own jax graph and its Hessian takes ~40 s
def test_errors_are_the_inverse_hessian_of_pyhf_logpdf():
    jax = pytest.importorskip("jax")
    spec = make_workspace(seed=4, channels=(("sr", 10),))
    ours = fit_model(read_workspace(spec))
    pyhf.set_backend("jax")
    try:
        model, data = pyhf_model(spec)
        data = pyhf.tensorlib.astensor(data)
        hess = jax.hessian(lambda p: -model.logpdf(p, data)[0])(
            pyhf.tensorlib.astensor(ours.values)
        )
        cov = np.linalg.inv(np.asarray(hess))
        grad = jax.grad(lambda p: -model.logpdf(p, data)[0])(pyhf.tensorlib.astensor(ours.values))
    finally:
        pyhf.set_backend("numpy")
    np.testing.assert_allclose(ours.covariance, cov, rtol=1e-8, atol=1e-12)
    # the gradient of pyhf's own likelihood vanishes at our best fit
    assert np.max(np.abs(np.asarray(grad)) * ours.errors) < 1e-6


def test_fixed_parameters_stay_at_their_initial_value(numpy_minuit):
    spec = make_workspace(seed=5, channels=(("sr", 10),), fixed=("bkg_norm", "lumi"))
    model, data = pyhf_model(spec)
    n = len(model.config.suggested_init())
    ref_values, _ = pyhf.infer.mle.fit(
        data, model, return_uncertainties=True, par_bounds=[(-math.inf, math.inf)] * n
    ).T
    ours = fit_model(read_workspace(spec))
    for name in ("bkg_norm", "lumi"):
        i = ours.parameters.index(name)
        assert ours.values[i] == model.config.suggested_init()[i]
        assert ours.errors[i] == 0.0
    assert_values_agree(ours.values, ref_values, np.where(ours.errors > 0, ours.errors, 1.0))


def test_asimov_fit_returns_the_initial_values():
    spec = make_workspace(seed=6)
    model = read_workspace(spec)
    result = fit_model(model, data="asimov")
    np.testing.assert_allclose(result.values, model.init, atol=1e-8)
    assert result.value("mu") == pytest.approx(1.0, abs=1e-9)


def test_fit_recovers_an_injected_signal_strength():
    spec = make_workspace(seed=8)
    model = read_workspace(spec)
    pars = model.init.copy()
    pars[model.index("mu")] = 2.0
    asimov = model.asimov(pars)
    result = fit_model(model, data=asimov)
    assert result.value("mu") == pytest.approx(2.0, abs=1e-7)


# ---------------------------------------------------------------- bad input names the culprit


def test_unknown_modifier_type_is_named():
    spec = make_workspace(seed=9)
    spec["channels"][0]["samples"][1]["modifiers"].append(
        {"name": "weird", "type": "shapeshifter", "data": None}
    )
    with pytest.raises(WorkspaceError, match=r"'sr'.*'bkg'.*'weird'.*'shapeshifter'"):
        read_workspace(spec)


def test_schema_invalid_workspace_is_rejected():
    spec = make_workspace(seed=9)
    del spec["channels"][1]["samples"][0]["data"]
    with pytest.raises(WorkspaceError, match="not a valid pyhf workspace"):
        read_workspace(spec)


@pytest.mark.parametrize("bad", [-3.0, float("nan")])
def test_negative_or_nan_yield_names_channel_sample_and_bin(bad):
    spec = make_workspace(seed=9)
    spec["channels"][1]["samples"][1]["data"][4] = bad  # cr / other / bin 4
    with pytest.raises(WorkspaceError, match=r"channel 'cr' sample 'other'.*bin 4"):
        read_workspace(spec)


def test_channel_without_observation_is_named():
    spec = make_workspace(seed=9)
    spec["observations"] = [o for o in spec["observations"] if o["name"] != "cr"]
    with pytest.raises(WorkspaceError, match="channel 'cr' has no observation"):
        read_workspace(spec)


def test_unreadable_json_file_is_named(tmp_path):
    path = tmp_path / "ws.json"
    path.write_text('{"channels": [')
    with pytest.raises(WorkspaceError, match="ws.json is not valid JSON"):
        read_workspace(path)


def test_workspace_is_read_from_a_json_file(tmp_path):
    spec = make_workspace(seed=10)
    path = tmp_path / "ws.json"
    path.write_text(json.dumps(spec))
    from_file, from_dict = read_workspace(path), read_workspace(spec)
    assert from_file.parameters == from_dict.parameters
    p = from_dict.init + 0.1
    assert float(from_file.nll(p)) == float(from_dict.nll(p))


# ---------------------------------------------------------------- FitResult and wmass fit ws.json


def test_fit_workspace_gives_a_fitresult_with_the_poi_by_name(tmp_path):
    from fit import FitResult, describe

    spec = make_workspace(seed=11)
    result = fit_workspace(spec, impacts=True)
    best = fit_model(read_workspace(spec))
    assert result.pois["mu"]["value"] == pytest.approx(best.value("mu"), rel=1e-9)
    assert result.pois["mu"]["error"] == pytest.approx(best.error("mu"), rel=1e-9)
    # traditional impact of mu on itself is its error; constrained groups are all there
    assert result.impacts["mu"][result.parameters.index("mu")] == pytest.approx(
        result.pois["mu"]["error"]
    )
    assert set(result.group_impacts["mu"]) == {"normsys", "histosys", "lumi", "mc_stat"}
    path = result.write(tmp_path / "fitresult.h5")
    back = FitResult.read(path)
    np.testing.assert_array_equal(back.values, result.values)
    info = describe(path)
    assert info["kind"] == "fitresult"
    assert info["pois"]["mu"]["value"] == pytest.approx(result.pois["mu"]["value"])


def test_global_impacts_add_up_to_the_total_error_on_asimov():
    # identity: sum over sources of (dx/dy)^2 var(y) = (H^-1 I_Fisher H^-1)_ii, and on Asimov
    # data the Fisher information is the Hessian, so the sources add up to the total error
    spec = make_workspace(seed=12)
    result = fit_workspace(spec, toys=-1, global_impacts=True)
    gi = result.global_impacts["mu"]
    sources = [v for k, v in gi.items() if k != "total"]
    assert set(gi) == {"data_stat", "normsys", "histosys", "lumi", "mc_stat", "total"}
    assert math.sqrt(sum(v * v for v in sources)) == pytest.approx(gi["total"], rel=1e-12)
    assert gi["total"] == pytest.approx(result.pois["mu"]["error"], rel=1e-8)
    assert gi["data_stat"] > gi["mc_stat"] > 0


def test_wmass_fit_on_a_workspace_json_writes_a_fitresult(tmp_path, capsys):
    from analysis.cli import main
    from fit import describe

    spec = make_workspace(seed=13)
    ws = tmp_path / "ws.json"
    ws.write_text(json.dumps(spec))
    out = tmp_path / "fitresult.h5"
    assert main(["fit", str(ws), "--out", str(out)]) == 0
    assert "mu = " in capsys.readouterr().out
    best = fit_model(read_workspace(spec))
    assert describe(out)["pois"]["mu"]["value"] == pytest.approx(best.value("mu"), rel=1e-8)


def test_wmass_fit_on_a_bad_workspace_names_the_culprit(tmp_path, capsys):
    from analysis.cli import main

    spec = make_workspace(seed=13)
    spec["channels"][0]["samples"][0]["data"][2] = -1.0
    ws = tmp_path / "ws.json"
    ws.write_text(json.dumps(spec))
    assert main(["fit", str(ws), "--out", str(tmp_path / "r.h5")]) == 1
    assert "channel 'sr' sample 'signal'" in capsys.readouterr().err
    assert not (tmp_path / "r.h5").exists()
