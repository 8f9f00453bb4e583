"""pyhf workspaces in the structured engine: the likelihood is pyhf's, the fit is ``fit.fit``'s.

Every reference is built and evaluated by pyhf itself in the test (numpy backend): the NLL
differences between parameter points (every modifier type, both interpolation codes of normsys
and histosys), the best fit and the errors of pyhf's MINUIT fit (tight tolerance, strategy 2)
and the inverse of the Hessian of pyhf's own ``logpdf``.

Why one module of ~600 lines: every modifier of HistFactory against pyhf itself, on
workspaces built by the same helpers; one comparison, one file.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyhf
import pytest

from benchmarks._common import histosys, modifier, normsys, pyhf_sample
from fit import fit
from fit.pyhf import WorkspaceError, fit_workspace, read_workspace
from fit.terms import TermsModel

CODES_PYHF_DEFAULT = (
    None  # what pyhf.Workspace(spec).model() builds: normsys code4, histosys code4p
)
CODES_EXPONENTIAL_LINEAR = {"normsys": {"interpcode": "code1"}, "histosys": {"interpcode": "code0"}}
CODES = [CODES_PYHF_DEFAULT, CODES_EXPONENTIAL_LINEAR]


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
            mods = [modifier("mu", "normfactor"), normsys("sig_theory", 1.06, 0.95)]
            if lumi:
                mods.append(modifier("lumi", "lumi"))
            samples.append(pyhf_sample("signal", sig, mods))
        bkg_mods = [
            normsys("bkg_norm", 1.10, 0.88),
            histosys("bkg_shape", bkg * (1 + 0.12 * x), bkg * (1 - 0.07 * x)),
            modifier(f"staterror_{name}", "staterror", 0.04 * bkg),
        ]
        if shapefactor:
            bkg_mods.append(modifier("bkg_sf", "shapefactor"))
        samples.append(pyhf_sample("bkg", bkg, bkg_mods))
        other_mods = [
            normsys("other_norm", 1.2, 0.85),
            histosys("other_shape", other * (1.05 - 0.1 * x), other * (0.97 + 0.05 * x)),
            modifier(f"staterror_{name}", "staterror", 0.06 * other),
        ]
        if lumi:
            other_mods.append(modifier("lumi", "lumi"))
        if shapesys:
            other_mods.append(modifier(f"other_mcstat_{name}", "shapesys", 0.08 * other))
        samples.append(pyhf_sample("other", other, other_mods))
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


def pyhf_fit(spec, modifier_settings=None):
    """pyhf's MINUIT fit without limits (with limits its errors come from a transformed internal
    parameter and differ from the Hessian's by up to 2 %): values and errors."""
    model, data = pyhf_model(spec, modifier_settings)
    n = len(model.config.suggested_init())
    res = pyhf.infer.mle.fit(
        data, model, return_uncertainties=True, par_bounds=[(-math.inf, math.inf)] * n
    )
    return res[:, 0], res[:, 1]


def pyhf_hessian_errors(model, data, x, free, eps=1e-4):
    """``sqrt(diag(H^-1))`` of the free parameters, ``H`` the central-difference Hessian of
    pyhf's own ``-logpdf`` at ``x``."""
    idx = np.flatnonzero(free)
    H = np.zeros((idx.size, idx.size))
    steps = np.eye(x.size) * eps

    def f(p):
        return -model.logpdf(p, data)[0]

    for a, ia in enumerate(idx):
        for b, ib in enumerate(idx[: a + 1]):
            ea, eb = steps[ia], steps[ib]
            d = f(x + ea + eb) - f(x + ea - eb) - f(x - ea + eb) + f(x - ea - eb)
            H[a, b] = H[b, a] = d / (4 * eps * eps)
    return np.sqrt(np.diag(np.linalg.inv(H)))


# ---------------------------------------------------------------- the likelihood is pyhf's


@pytest.mark.parametrize("settings", CODES, ids=["code4-code4p", "code1-code0"])
def test_nll_differences_equal_pyhf_logpdf_differences(settings):
    # every modifier type: normfactor, normsys, histosys, staterror, shapesys, lumi, shapefactor
    spec = make_workspace(seed=1, shapefactor=True, channels=(("sr", 8), ("cr", 8)))
    model, data = pyhf_model(spec, settings)
    ours = TermsModel(read_workspace(spec, modifier_settings=settings))
    assert ours.fit_input.parameters == list(model.config.par_names)
    p0 = np.asarray(model.config.suggested_init())
    rng = np.random.default_rng(7)
    # nuisances over +-2 sigma (crossing the |theta| < 1 interpolation region and beyond),
    # gammas and scale factors within +-20 %
    scale = np.where(p0 == 0, 1.0, 0.1)
    ref0, our0 = -model.logpdf(p0, data)[0], ours.value(p0)
    for _ in range(25):
        p = p0 + scale * rng.normal(size=p0.size)
        ref = -model.logpdf(p, data)[0] - ref0
        our = ours.value(p) - our0
        assert abs(our - ref) < 1e-8, (p, our, ref)


def test_parameters_init_bounds_fixed_and_auxdata_follow_the_measurement():
    spec = make_workspace(seed=2, fixed=("other_norm",))
    model, data = pyhf_model(spec)
    ours = read_workspace(spec, validate=True)
    assert ours.poi_name == model.config.poi_name == "mu"
    assert ours.parameters == list(model.config.par_names)
    np.testing.assert_array_equal(ours.init, model.config.suggested_init())
    np.testing.assert_array_equal(ours.bounds, np.asarray(model.config.suggested_bounds()))
    np.testing.assert_array_equal(ours.fixed, model.config.suggested_fixed())
    # auxiliary data of the constrained parameters, in pyhf's auxdata order
    ours_aux = []
    for name in model.config.auxdata_order:
        ours_aux.extend(ours.auxdata[model.config.par_slice(name)])
    np.testing.assert_allclose(ours_aux, model.config.auxdata, rtol=1e-12)
    np.testing.assert_array_equal(ours.data, data[: model.config.nmaindata])


@pytest.mark.parametrize("settings", CODES, ids=["code4-code4p", "code1-code0"])
def test_gradient_hessian_and_hvp_are_exact(settings):
    spec = make_workspace(seed=3, shapefactor=True, channels=(("sr", 8), ("cr", 8)))
    model = TermsModel(read_workspace(spec, modifier_settings=settings))
    rng = np.random.default_rng(2)
    x0 = model.x_init
    for _ in range(3):
        # nuisances inside and outside |theta| < 1 (not at the kinks), gammas off 1
        x = x0 + np.where(x0 == 0, rng.normal(0, 1.0, x0.size), rng.normal(0, 0.05, x0.size))
        f, g = model.value_and_grad(x)
        H = model.hessian(x)
        eps = 1e-6
        g_num = np.empty_like(g)
        H_num = np.empty_like(H)
        for k in range(x.size):
            e = np.zeros(x.size)
            e[k] = eps
            g_num[k] = (model.value(x + e) - model.value(x - e)) / (2 * eps)
            H_num[k] = (model.value_and_grad(x + e)[1] - model.value_and_grad(x - e)[1]) / (2 * eps)
        np.testing.assert_allclose(g, g_num, rtol=0, atol=1e-6 * np.abs(g).max())
        np.testing.assert_allclose(H, H_num, rtol=0, atol=1e-6 * np.abs(H).max())
        np.testing.assert_allclose(H, H.T, rtol=0, atol=1e-12 * np.abs(H).max())
        v = rng.normal(size=x.size)
        np.testing.assert_allclose(model.hessp(x, v), H @ v, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- best fit and errors


WORKSPACES = {
    "1ch-10bins": {"channels": (("sr", 10),)},
    "2ch-12+6bins": {"channels": (("sr", 12), ("cr", 6))},
    "3ch-shapefactor": {
        "channels": (("sr", 8), ("cra", 8), ("crb", 8)),
        "shapefactor": True,
        "shapesys": False,
    },
    "2ch-shapefactor-shapesys": {"channels": (("sr", 6), ("cr", 6)), "shapefactor": True},
}
# with code 1 / code 0 some nuisances of the shapefactor workspaces sit on the kink at theta = 0,
# where MINUIT itself fails (EDM too large): those are compared with pyhf's default codes only
FIT_CASES = [
    pytest.param(WORKSPACES[name], settings, id=f"{label}-{name}")
    for label, settings in zip(("code4-code4p", "code1-code0"), CODES, strict=True)
    for name in WORKSPACES
    if settings is None or "shapefactor" not in name
]


@pytest.mark.parametrize(("spec_kwargs", "settings"), FIT_CASES)
def test_best_fit_and_errors_agree_with_pyhf_minuit(numpy_minuit, spec_kwargs, settings):
    spec = make_workspace(seed=3, **spec_kwargs)
    ref_values, ref_errors = pyhf_fit(spec, settings)
    ours = fit(read_workspace(spec, modifier_settings=settings), yields=False)
    assert ours.edm < 1e-10
    assert_values_agree(ours.values, ref_values, ref_errors)
    mu = ours.pois["mu"]
    i = ours.parameters.index("mu")
    assert mu["value"] == pytest.approx(ref_values[i], rel=1e-4)
    # MINUIT's HESSE is numerical: ~1e-3 from the exact Hessian, and up to 1.5 % in the flat
    # directions of a shapefactor workspace; our errors are the exact inverse Hessian of pyhf's
    # own logpdf (to the 1e-5 of its finite differences here)
    assert mu["error"] == pytest.approx(ref_errors[i], rel=2e-2)
    np.testing.assert_allclose(ours.errors, ref_errors, rtol=2e-2)
    model, data = pyhf_model(spec, settings)
    free = ours.errors > 0
    exact = pyhf_hessian_errors(model, data, ours.values, free)
    # (code 1 / code 0: a nuisance fitted within 1e-3 of the kink at 0 has a one-sided exact
    # Hessian that the finite differences straddling the kink do not see)
    np.testing.assert_allclose(ours.errors[free], exact, rtol=2e-4 if settings is None else 1e-2)
    # and the minimum is pyhf's: its NLL there is not above pyhf's own best fit
    assert -model.logpdf(ours.values, data)[0] <= -model.logpdf(ref_values, data)[0] + 1e-9


@pytest.mark.slow  # jit-compiling pyhf's own jax graph and its Hessian takes ~40 s
def test_errors_are_the_inverse_hessian_of_pyhf_logpdf():
    jax = pytest.importorskip("jax")
    spec = make_workspace(seed=4, channels=(("sr", 10),))
    ours = fit(read_workspace(spec), yields=False, tol=1e-16)  # EDM 1e-10: |grad| sigma ~1e-5
    pyhf.set_backend("jax")
    try:
        model, data = pyhf_model(spec)
        data = pyhf.tensorlib.astensor(data)
        pars = pyhf.tensorlib.astensor(ours.values)
        hess = jax.hessian(lambda p: -model.logpdf(p, data)[0])(pars)
        grad = jax.grad(lambda p: -model.logpdf(p, data)[0])(pars)
    finally:
        pyhf.set_backend("numpy")
    cov = np.linalg.inv(np.asarray(hess))
    np.testing.assert_allclose(ours.covariance, cov, rtol=1e-8, atol=1e-12)
    # the gradient of pyhf's own likelihood vanishes at our best fit
    assert np.max(np.abs(np.asarray(grad)) * ours.errors) < 1e-6


def test_fixed_parameters_stay_at_their_initial_value(numpy_minuit):
    spec = make_workspace(seed=5, channels=(("sr", 10),), fixed=("bkg_norm", "lumi"))
    model, _ = pyhf_model(spec)
    ref_values, _ = pyhf_fit(spec)
    ours = fit(read_workspace(spec), impacts=True, global_impacts=True, yields=False)
    for name in ("bkg_norm", "lumi"):
        i = ours.parameters.index(name)
        assert ours.values[i] == model.config.suggested_init()[i]
        assert ours.errors[i] == 0.0
    assert_values_agree(ours.values, ref_values, np.where(ours.errors > 0, ours.errors, 1.0))
    assert "lumi" not in ours.group_impacts["mu"]  # fixed: no impact group


def test_a_normfactor_fixed_at_zero_gives_the_background_only_fit():
    spec = make_workspace(seed=5, channels=(("sr", 10),))
    spec["measurements"][0]["config"]["parameters"][0].update(inits=[0.0], fixed=True)
    result = fit(read_workspace(spec), yields=False)
    assert result.status == "converged" and np.all(np.isfinite(result.values))
    assert result.value("mu") == 0.0 and result.error("mu") == 0.0
    model, data = pyhf_model(spec)
    ref = pyhf.infer.mle.fixed_poi_fit(0.0, data, model)
    assert -model.logpdf(result.values, data)[0] <= -model.logpdf(ref, data)[0] + 1e-6


def test_asimov_fit_returns_the_initial_values():
    spec = make_workspace(seed=6)
    fi = read_workspace(spec)
    result = fit(fi, data="asimov", yields=False)
    np.testing.assert_allclose(result.values, fi.init, atol=1e-8)
    assert result.pois["mu"]["value"] == pytest.approx(1.0, abs=1e-9)


def test_fit_recovers_an_injected_signal_strength():
    fi = read_workspace(make_workspace(seed=8))
    pars = fi.init.copy()
    pars[fi.index("mu")] = 2.0
    asimov = TermsModel(fi).yields(pars).sum(axis=1)
    result = fit(fi, data=asimov, yields=False)
    assert result.pois["mu"]["value"] == pytest.approx(2.0, abs=1e-7)


# ---------------------------------------------------------------- bad input names the culprit


def test_unknown_modifier_type_is_named():
    spec = make_workspace(seed=9)
    spec["channels"][0]["samples"][1]["modifiers"].append(
        {"name": "weird", "type": "shapeshifter", "data": None}
    )
    with pytest.raises(WorkspaceError, match=r"'sr'.*'bkg'.*'weird'.*'shapeshifter'"):
        read_workspace(spec)


@pytest.mark.parametrize("validate", [False, True])
def test_schema_invalid_workspace_is_rejected(validate):
    spec = make_workspace(seed=9)
    del spec["channels"][1]["samples"][0]["data"]
    with pytest.raises(WorkspaceError, match="not a valid pyhf workspace"):
        read_workspace(spec, validate=validate)


def test_a_malformed_modifier_is_named_by_pyhfs_schema():
    spec = make_workspace(seed=9)
    del spec["channels"][0]["samples"][1]["modifiers"][0]["data"]["lo"]  # sr / bkg / bkg_norm
    with pytest.raises(WorkspaceError, match=r"workspace at /channels\[0\]\.samples\[1\]"):
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
    assert TermsModel(from_file).value(p) == TermsModel(from_dict).value(p)


# ---------------------------------------------------------------- FitResult and wmass fit ws.json


def test_fit_workspace_gives_a_fitresult_with_the_poi_by_name(tmp_path):
    from fit import FitResult, describe

    spec = make_workspace(seed=11)
    result = fit_workspace(spec, impacts=True)
    best = fit(read_workspace(spec), yields=False)
    assert result.pois["mu"]["value"] == pytest.approx(best.value("mu"), rel=1e-9)
    assert result.pois["mu"]["error"] == pytest.approx(best.error("mu"), rel=1e-9)
    # traditional impact of mu on itself is its error; constrained groups are all there
    assert result.impacts["mu"][result.parameters.index("mu")] == pytest.approx(
        result.pois["mu"]["error"]
    )
    assert set(result.group_impacts["mu"]) == {"normsys", "histosys", "lumi", "mc_stat"}
    # pulls: value - auxdata (Poisson gammas: value - 1)
    pulls = result.pulls
    assert np.isnan(pulls[result.parameters.index("mu")])
    i = result.parameters.index("other_mcstat_sr[0]")
    assert pulls[i] == pytest.approx(result.values[i] - 1.0)
    path = result.write(tmp_path / "fitresult.h5")
    back = FitResult.read(path)
    np.testing.assert_array_equal(back.values, result.values)
    info = describe(path)
    assert info["kind"] == "fitresult"
    assert info["pois"]["mu"]["value"] == pytest.approx(result.pois["mu"]["value"])
    # the yields per channel and sample, pre- and post-fit, with their bands
    assert set(result.yields) == {"cr", "sr"}
    sr = result.yields["sr"]
    assert sr["prefit"].shape == (12, 3) and np.all(sr["postfit_err"] > 0)


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
    best = fit(read_workspace(spec), yields=False)
    assert describe(out)["pois"]["mu"]["value"] == pytest.approx(best.value("mu"), rel=1e-8)


def test_wmass_fit_on_a_bad_workspace_names_the_culprit(tmp_path, capsys):
    from analysis.cli import main

    spec = make_workspace(seed=13)
    spec["channels"][0]["samples"][0]["data"][2] = -1.0
    ws = tmp_path / "ws.json"
    ws.write_text(json.dumps(spec))
    assert main(["fit", str(ws), "--out", str(tmp_path / "r.h5")]) == WorkspaceError.exit_code
    assert "channel 'sr' sample 'signal'" in capsys.readouterr().err
    assert not (tmp_path / "r.h5").exists()


# ---------------------------------------------------------------- export: FitInput -> workspace


def small_fit_input(*, asymmetric: bool = False, shape: bool = False, seed: int = 21):
    """Two channels, three processes, a signal strength and log-normal normalisations."""
    from fit import FitInputBuilder

    rng = np.random.default_rng(seed)
    x_sr, x_cr = np.linspace(0, 1, 9), np.linspace(0, 1, 5)
    sig = 40 * np.exp(-(((x_sr - 0.5) / 0.2) ** 2)) + 1
    bkg_sr, bkg_cr = 300 * np.exp(-x_sr), 800 * np.exp(-x_cr)
    oth_sr, oth_cr = 60 + 10 * x_sr, 90 + 30 * x_cr
    b = FitInputBuilder()
    b.add_channel("sr", rng.poisson(1.2 * sig + bkg_sr + oth_sr).astype(float))
    b.add_channel("cr", rng.poisson(bkg_cr * 1.05 + oth_cr).astype(float))
    b.add_process("sr", "sig", sig, signal=True)
    b.add_process("sr", "bkg", bkg_sr)
    b.add_process("sr", "other", oth_sr)
    b.add_process("cr", "bkg", bkg_cr)
    b.add_process("cr", "other", oth_cr)
    b.add_poi("mu")
    b.add_norm("lumi", ["sig", "bkg", "other"], 1.025)
    b.add_norm("bkg_xsec", ["bkg"], (1.12, 0.93) if asymmetric else 1.1)
    b.add_norm("other_xsec", ["other"], 1.3, channels=["cr"])
    if shape:
        b.add_systematic("bkg_slope", {("sr", "bkg"): bkg_sr * (1 + 0.2 * (x_sr - 0.5))})
    return b.build()


def _nll_differences(fi, points, settings):
    from fit import Model
    from fit.pyhf import to_workspace, workspace_parameters

    ours = Model(fi)
    wsi = read_workspace(to_workspace(fi), modifier_settings=settings)
    ws = TermsModel(wsi)
    x0 = np.zeros(fi.nparams)
    ref0, ws0 = ours.value(x0), ws.value(workspace_parameters(fi, x0, wsi))
    out = []
    for x in points:
        ref = ours.value(x) - ref0
        exported = ws.value(workspace_parameters(fi, x, wsi)) - ws0
        out.append((ref, exported))
    return np.array(out)


def test_export_of_lognormal_normalisations_reproduces_our_nll():
    fi = small_fit_input()
    rng = np.random.default_rng(3)
    points = rng.normal(0, 1.0, (20, fi.nparams))
    diffs = _nll_differences(fi, points, CODES_EXPONENTIAL_LINEAR)
    assert np.ptp(diffs[:, 0]) > 10  # the points are not all near the minimum
    np.testing.assert_allclose(diffs[:, 1], diffs[:, 0], rtol=0, atol=1e-8)


def test_export_of_asymmetric_normalisation_is_exact_outside_the_smoothing_region():
    fi = small_fit_input(asymmetric=True)
    k = fi.index("bkg_xsec")
    rng = np.random.default_rng(4)
    points = rng.normal(0, 1.0, (20, fi.nparams))
    points[:, k] = np.where(points[:, k] < 0, -0.5, 0.5) + points[:, k]  # |x| >= 1/2
    diffs = _nll_differences(fi, points, CODES_EXPONENTIAL_LINEAR)
    np.testing.assert_allclose(diffs[:, 1], diffs[:, 0], rtol=0, atol=1e-8)
    # inside |x| < 1/2 combinetf's smooth interpolation and pyhf's code1 kink differ
    inside = np.zeros((1, fi.nparams))
    inside[0, k] = 0.25
    ref, exported = _nll_differences(fi, inside, CODES_EXPONENTIAL_LINEAR)[0]
    assert abs(ref - exported) > 1e-4


def test_export_of_a_shape_is_exact_at_its_templates_and_approximate_between():
    fi = small_fit_input(shape=True)
    k = fi.index("bkg_slope")
    points = np.zeros((4, fi.nparams))
    points[:, k] = [-1.0, 1.0, 0.5, 2.0]
    diffs = _nll_differences(fi, points, CODES_EXPONENTIAL_LINEAR)
    np.testing.assert_allclose(diffs[:2, 1], diffs[:2, 0], rtol=0, atol=1e-8)
    assert np.all(np.abs(diffs[2:, 1] - diffs[2:, 0]) > 1e-6)  # linear vs exponential


def test_exported_workspace_is_valid_for_pyhf_and_fits_to_our_answer(tmp_path):
    from fit import fit
    from fit.pyhf import write_workspace

    fi = small_fit_input()
    path = write_workspace(fi, tmp_path / "ws.json")
    meta = json.loads((tmp_path / "ws.json.provenance.json").read_text())
    assert "git_hash" in meta
    spec = json.loads(path.read_text())
    pyhf.Workspace(spec)  # pyhf's own validation
    ours = fit(fi, yields=False)
    exported = fit_workspace(path, modifier_settings=CODES_EXPONENTIAL_LINEAR)
    mu, mu_err = ours.pois["mu"]["value"], ours.pois["mu"]["error"]
    assert exported.pois["mu"]["value"] == pytest.approx(mu, rel=1e-6)
    # our POI is log(mu): its linearised error mu * sigma_log(mu) is pyhf's error on mu
    assert exported.pois["mu"]["error"] == pytest.approx(mu_err, rel=1e-6)


# ---------------------------------------------------------------- minuit, scans and toys


def test_minuit_cross_check_agrees_with_the_trust_region_fit():
    spec = make_workspace(seed=11)
    trust = fit_workspace(spec)
    minuit = fit_workspace(spec, minimizer="minuit")
    assert minuit.minimizer == "minuit"
    assert_values_agree(minuit.values, trust.values, trust.errors)
    np.testing.assert_allclose(minuit.errors, trust.errors, rtol=1e-3)


def test_profile_scan_is_zero_at_the_minimum_and_near_half_at_one_sigma():
    spec = make_workspace(seed=11)
    result = fit_workspace(spec, scan=["mu"], scan_points=3, scan_range=1.0)
    scan = result.scans["mu"]
    np.testing.assert_allclose(scan["x"][1], result.pois["mu"]["value"])
    assert abs(scan["dnll"][1]) < 1e-9
    # a profile likelihood is close to parabolic: 1/2 at +-1 sigma within a few per cent
    np.testing.assert_allclose(scan["dnll"][[0, 2]], 0.5, rtol=0.1)


def test_toys_are_seeded_and_scatter_around_the_generating_point():
    spec = make_workspace(seed=11)
    a = fit_workspace(spec, toys=8, seed=5)
    b = fit_workspace(spec, toys=8, seed=5)
    assert a.data == "toys" and a.toys["status"] == ["converged"] * 8
    np.testing.assert_array_equal(a.toys["values"], b.toys["values"])
    mu, err = a.toys["poi_mu"][:, 0], a.toys["poi_mu"][:, 1]
    pulls = (mu - 1.0) / err
    assert abs(pulls.mean()) < 3 / math.sqrt(8) + 0.2
    assert np.all(np.abs(pulls) < 5)


def test_toys_and_scans_take_the_one_path_of_fit_fit():
    # fit_workspace is fit.fit on the read workspace: the same toys, the same scans
    spec = make_workspace(seed=14, channels=(("sr", 6),))
    a = fit_workspace(spec, toys=3, seed=2, scan=["mu"], scan_points=3, yields=False)
    b = fit(read_workspace(spec), toys=3, seed=2, scan=["mu"], scan_points=3, yields=False)
    np.testing.assert_array_equal(a.toys["values"], b.toys["values"])
    np.testing.assert_allclose(a.scans["mu"]["dnll"], b.scans["mu"]["dnll"], rtol=0, atol=1e-12)
    # toys randomise the Gaussian global observables around the initial values and the Poisson
    # ones around tau: fixed parameters (the zero-width gammas) stay where they are
    assert np.all(np.isfinite(a.toys["values"]))
