"""``wmass report``: bands that propagate the covariance right, logs, and a site in Chromium.

The fit is a small W-mass-like model: a Jacobian-peak muon pT spectrum in 4 eta x 10 pT bins
whose peak moves with m_W (the POI, from +-100 MeV templates), Z and QCD backgrounds, a
luminosity, a 30 % QCD normalisation and per-eta efficiency nuisances; pseudo-data are Poisson
draws at m_W = 80379 + 30 MeV.

Why one module of ~510 lines: one command's tests, sharing one fit result and its site.
"""

from __future__ import annotations

import json

import hist
import numpy as np
import pytest

from analysis import cli
from analysis.constants import MW_REF_MEV as MW_REF
from analysis.io import DatasetHistograms, write_histograms
from analysis.report import ReportError, write_report
from analysis.report.plots import project
from analysis.report.site import _Bands
from analysis.report.style import pdg_round
from fit.builder import FitInputBuilder
from fit.fitter import fit
from fit.model import Model
from fit.provenance import provenance
from tests.services import browser_page


def w_like_fit_input(
    seed: int = 1, shift_mev: float = 30.0, n_eta: int = 4, extra_norm: str | None = None
):
    rng = np.random.default_rng(seed)
    eta = hist.axis.Regular(n_eta, -2.4, 2.4, name="eta")
    pt = hist.axis.Regular(10, 26, 56, name="pt")
    c = pt.centers

    def w_spectrum(mw_mev: float) -> np.ndarray:  # the Jacobian peak sits near m_W / 2
        peak = 40.0 * mw_mev / MW_REF
        return np.ones(n_eta)[:, None] * (1e4 * np.exp(-0.5 * ((c - peak) / 6.0) ** 2) + 500)

    def h(values: np.ndarray) -> hist.Hist:
        out = hist.Hist(eta, pt)
        out[...] = values
        return out

    w0, wup, wdn = w_spectrum(MW_REF), w_spectrum(MW_REF + 100), w_spectrum(MW_REF - 100)
    z = np.ones(n_eta)[:, None] * 800 * np.exp(-(c - 26) / 15)
    q = np.ones(n_eta)[:, None] * 1500 * np.exp(-(c - 26) / 8)
    truth = w0 * (1 + shift_mev / 100 * (wup / w0 - 1)) + z + q
    b = FitInputBuilder()
    b.add_channel("wmunu", h(rng.poisson(truth).astype(float)))
    b.add_process("wmunu", "Wmunu", h(w0), signal=True)
    b.add_process("wmunu", "Zmumu", h(z))
    b.add_process("wmunu", "QCD", h(q))
    b.add_poi(
        "mW",
        variations={("wmunu", "Wmunu"): (h(wup), h(wdn))},
        offset=MW_REF,
        scale=100.0,
        unit="MeV",
    )
    b.add_norm("lumi", ["Wmunu", "Zmumu"], 1.017, group="luminosity")
    b.add_norm("QCD_norm", ["QCD"], 1.3, group="nonprompt")
    if extra_norm is not None:  # a name from an input, e.g. one that is HTML
        b.add_norm(extra_norm, ["QCD"], 3.0, group=extra_norm)
    for i in range(n_eta):
        up = w0.copy()
        up[i] *= 1 + 0.01 * (c - 40) / 15
        b.add_systematic(f"effStat_eta{i}", {("wmunu", "Wmunu"): h(up)}, group="muon_eff")
    return b.build()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """fitinput.h5 and fitresult.h5 of the toy model, the result naming its input."""
    d = tmp_path_factory.mktemp("fit")
    fi = w_like_fit_input()
    fi.write(d / "fitinput.h5")
    result = fit(fi, impacts=True, global_impacts=True, scan=["mW"], scan_points=7)
    meta = provenance(inputs=[str(d / "fitinput.h5")], command="wmass fit fitinput.h5")
    result.write(d / "fitresult.h5", meta=meta)
    return fi, result, d


def test_the_toy_fit_recovers_the_injected_mass(fitted):
    _, result, _ = fitted
    mw = result.pois["mW"]
    assert abs(mw["value"] - (MW_REF + 30)) < 2 * mw["error"]


def test_projected_band_per_bin_is_the_fits_own_band(fitted):
    fi, result, _ = fitted
    bands = _Bands(fi, result)
    y = result.yields["wmunu"]
    for stage in ("prefit", "postfit"):
        ours = bands.band(stage, "wmunu", (4, 10), keep=[0, 1])
        np.testing.assert_allclose(ours, y[f"{stage}_err"], rtol=1e-9)


def test_projected_band_propagates_correlations_like_sampled_parameters(fitted):
    """The band of a projection (sum over eta) is not the quadrature sum of its bins: the
    efficiency nuisances are per eta slice and the normalisations are anticorrelated after the
    fit. An independent reference: sample the parameters from the post-fit covariance and take
    the spread of the projected yields."""
    fi, result, _ = fitted
    bands = _Bands(fi, result)
    model = Model(fi)
    on_pt = bands.band("postfit", "wmunu", (4, 10), keep=[1])
    total = bands.band("postfit", "wmunu", (4, 10), keep=[])[0]
    rng = np.random.default_rng(7)
    xs = rng.multivariate_normal(result.values, result.covariance, size=4000)
    sampled = np.array([project(model.yields(x).sum(axis=1), (4, 10), [1]) for x in xs])
    np.testing.assert_allclose(on_pt, sampled.std(axis=0), rtol=0.06)
    np.testing.assert_allclose(total, sampled.sum(axis=1).std(), rtol=0.06)
    per_bin = np.asarray(result.yields["wmunu"]["postfit_err"])
    naive = np.sqrt(np.sum(per_bin**2))
    assert abs(total - naive) / total > 0.2  # correlations matter here


def test_process_errors_match_sampled_parameters(fitted):
    fi, result, _ = fitted
    errs = _Bands(fi, result).process_errors("postfit", "wmunu")
    model = Model(fi)
    rng = np.random.default_rng(11)
    xs = rng.multivariate_normal(result.values, result.covariance, size=4000)
    per_proc = np.array([model.yields(x).sum(axis=0) for x in xs])
    np.testing.assert_allclose(errs, per_proc.std(axis=0), rtol=0.06)
    qcd = fi.processes.index("QCD")
    assert errs[qcd] / result.yields["wmunu"]["proc_postfit"][qcd] < 0.3 / 3  # constrained


def _hists_file(path, meta=None):
    """A hists.h5 of one W dataset and one pT histogram; ``meta`` its provenance."""
    h = hist.Hist(hist.axis.Regular(10, 26, 56, name="pt"), storage=hist.storage.Weight())
    h.fill(pt=np.linspace(27, 55, 100))
    ds = DatasetHistograms(
        name="wmunu",
        process="Wmunu",
        xsec_pb=20508.9,
        sumw=1234.5,
        events_read=5000,
        events_selected=100,
        files_processed=["wmunu/nano_0.root"],
        histograms={"pt": h},
    )
    return write_histograms(path, [ds], meta or provenance(command="wmass histmaker test"))


@pytest.fixture(scope="module")
def site(fitted, tmp_path_factory):
    """One site with the toy fit's run (and a hists.h5 for the samples table)."""
    _, _, d = fitted
    top = tmp_path_factory.mktemp("site")
    hists = _hists_file(top / "hists.h5")
    page = write_report(
        d / "fitresult.h5", [hists], out=top / "site", formats=("png",), command="wmass r"
    )
    return page


def test_logs_carry_command_yields_and_input_provenance(fitted, site):
    _, result, _ = fitted
    page = site
    plots = page.parent / "plots"
    fit_figures = ["correlations", "impacts_mW", "mw_comparison", "pulls", "scan_mW"]
    assert sorted(p.stem for p in plots.glob("*.png")) == sorted(
        [f"wmunu_{s}_{v}" for s in ("prefit", "postfit") for v in ("pullmap", "eta", "pt")]
        + fit_figures
        + ["wmunu_templates_mW"]
    )
    assert all((plots / f"{p.stem}.log").exists() for p in plots.glob("*.png"))
    log = (plots / "wmunu_postfit_pt.log").read_text()
    assert "The command was: wmass r" in log
    w_post = float(np.sum(result.yields["wmunu"]["postfit"][:, 0]))
    assert f"{'Wmunu':<12} {w_post:16.2f}" in log
    assert "Meta info from input file fitresult.h5" in log and "wmass fit fitinput.h5" in log
    assert "Meta info from input file hists.h5" in log and "wmass histmaker test" in log
    html = page.read_text()
    assert "20508.9" in html and "5,000" in html  # the samples table


def test_site_in_chromium_index_run_and_impacts_pages(fitted, site, tmp_path):
    fi, result, d = fitted
    first, site = site, site.parent.parent
    # a second fit (another pseudo-data seed) becomes a second run; re-reporting the first
    # replaces it instead of adding a third
    fi2 = w_like_fit_input(seed=2)
    fi2.write(tmp_path / "fitinput2.h5")
    r2 = fit(fi2, impacts=True, global_impacts=True)
    r2.write(tmp_path / "fit2.h5", meta=provenance(inputs=[str(tmp_path / "fitinput2.h5")]))
    write_report(tmp_path / "fit2.h5", out=site, formats=("png",), projections=[])
    write_report(d / "fitresult.h5", out=site, formats=("png",), command="wmass r")
    runs = json.loads((site / "runs.json").read_text())["runs"]
    assert len(runs) == 2
    assert (site / "plotly.min.js").stat().st_size > 1_000_000
    assert not list(first.parent.glob("plotly*.js"))  # one bundle for the whole site
    n_nuisances = len(result.parameters) - len(result.pois)
    with browser_page() as (page, errors):
        page.goto((site / "index.html").as_uri())
        assert page.locator("table.runs tbody tr").count() == 2
        page.wait_for_selector("#history-mW .main-svg")  # m_W over the runs, with error bars
        assert page.locator("#history-mW .point").count() == 2
        page.locator(f'table.runs a[href="{first.parent.name}/index.html"]').click()
        page.wait_for_selector("#global-mW .main-svg")
        pois = page.locator("table.pois tbody tr td").all_inner_texts()
        mw = result.pois["mW"]
        assert pois[0] == "mW" and pois[1:3] == list(pdg_round(mw["value"], mw["error"]))
        # 6 distributions, 4 fit figures, the m_W templates and the m_W comparison
        assert page.locator(".plot img").count() == 12
        assert page.locator(".flags li").count() >= 5
        # the figures load lazily, as a reader scrolls: scroll through the page
        for _ in range(40):
            page.mouse.wheel(0, 800)
            page.wait_for_timeout(50)
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('.plot img')).every(i => i.complete)"
        )
        widths = page.eval_on_selector_all(".plot img", "els => els.map(e => e.naturalWidth)")
        assert all(w > 100 for w in widths)  # every plot image actually loaded
        page.screenshot(path=str(tmp_path / "run.png"), full_page=True)
        page.goto((first.parent / "impacts_mW.html").as_uri())
        page.wait_for_selector("#fig .main-svg")
        assert page.locator("#rows tr").count() == n_nuisances
        top = page.locator("#rows tr").first.locator("td").first.inner_text()
        imp = np.abs(result.impacts["mW"])
        imp[result.parameters.index("mW")] = -1
        assert top == result.parameters[int(np.argmax(imp))]
        page.screenshot(path=str(tmp_path / "impacts.png"))
        for log in sorted((first.parent / "plots").glob("wmunu_*.log"))[:2]:
            page.goto(log.as_uri())
            assert "Yields" in page.content()
        assert errors == []
    assert (tmp_path / "run.png").stat().st_size > 50_000


def test_without_fit_input_projections_have_no_band(fitted, tmp_path):
    _, result, _ = fitted
    result.write(tmp_path / "lonely.h5", meta=provenance(inputs=[]))
    page = write_report(
        tmp_path / "lonely.h5", out=tmp_path / "site", formats=("png",), projections=["pt"]
    )
    assert (page.parent / "plots" / "wmunu_postfit_pullmap.png").exists()
    assert "none (no fit input)" in (page.parent / "plots" / "wmunu_postfit_pt.log").read_text()


def test_cli_report_prints_the_page(fitted, tmp_path, capsys):
    _, _, d = fitted
    rc = cli.main(
        [
            "report",
            str(d / "fitresult.h5"),
            "--out",
            str(tmp_path / "s"),
            "--formats",
            "png",
            "--project",
            "pt",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "[report] wrote" in out and str(tmp_path / "s") in out


def test_a_file_that_is_not_a_fit_result_is_named(fitted, tmp_path):
    _, _, d = fitted
    with pytest.raises(ReportError, match="fitinput.h5: not a fit result"):
        write_report(d / "fitinput.h5", out=tmp_path / "s")
    with pytest.raises(ReportError, match="nope.h5: no such histograms file"):
        write_report(d / "fitresult.h5", [tmp_path / "nope.h5"], out=tmp_path / "s")
    assert cli.main(["report", str(d / "fitinput.h5"), "--out", str(tmp_path / "s")]) == 13


def test_any_projection_of_the_fitted_axes(fitted, tmp_path):
    """--project pt eta-pt: a 1D and a 2D (unrolled) projection; a 2D projection onto all the
    axes is the unrolled channel itself, so its band is the fit's per-bin band."""
    fi, result, d = fitted
    page = write_report(
        d / "fitresult.h5", out=tmp_path / "site", formats=("png",), projections=["pt", "eta-pt"]
    )
    plots = page.parent / "plots"
    assert sorted(p.stem for p in plots.glob("wmunu_postfit_*.png")) == [
        "wmunu_postfit_eta-pt",
        "wmunu_postfit_pt",
        "wmunu_postfit_pullmap",
    ]
    bands = _Bands(fi, result)
    np.testing.assert_allclose(
        bands.band("postfit", "wmunu", (4, 10), keep=[0, 1]),
        result.yields["wmunu"]["postfit_err"],
        rtol=1e-9,
    )
    with pytest.raises(ReportError, match="no channel has axis 'mt'"):
        write_report(d / "fitresult.h5", out=tmp_path / "s2", projections=["mt"])


def test_toys_section_shows_that_the_error_describes_the_spread(tmp_path):
    """60 pseudo-experiments of the toy model: the spread of m_W over the toys, divided by the
    median fitted error, is 1 within its statistical precision (1/sqrt(2N) = 0.09)."""
    fi = w_like_fit_input()
    fi.write(tmp_path / "fitinput.h5")
    result = fit(fi, toys=60, seed=4)
    result.write(tmp_path / "toys.h5", meta=provenance(inputs=[str(tmp_path / "fitinput.h5")]))
    page = write_report(
        tmp_path / "toys.h5", out=tmp_path / "site", formats=("png",), projections=[]
    )
    html = page.read_text()
    assert "Pseudo-experiments" in html and 'id="toys-mW"' in html
    rep = np.asarray(result.toys["poi_mW"])
    ratio = np.std(rep[:, 0], ddof=1) / np.median(rep[:, 1])
    assert abs(ratio - 1) < 3 * 0.09
    assert f"<td>{ratio:.3f}</td>" in html


def test_run_page_is_physics_style_and_flags_constraints(fitted, site):
    """POIs rounded by the PDG rule, NLL rounded, the flags box lists the strongly constrained
    QCD normalisation and explains global versus Hessian uncertainty."""
    _, result, _ = fitted
    html = site.read_text()
    value, error = pdg_round(result.pois["mW"]["value"], result.pois["mW"]["error"])
    assert f"<td>{value}</td><td>{error}</td>" in html
    assert f"<td>{result.nll:.2f}</td>" in html
    flags = html[html.index('<div class="flags">') : html.index("</div>", html.index("flags"))]
    assert "fit status: converged" in flags and "EDM" in flags
    assert "global-impact total" in flags and "Asimov" in flags
    i = result.parameters.index("QCD_norm")
    if result.constraints[i] < 0.3:
        assert "<code>QCD_norm</code>" in flags


def test_names_from_inputs_are_escaped_everywhere(tmp_path):
    evil = "<script>alert(1)</script>"
    fi = w_like_fit_input(n_eta=2, extra_norm=evil)
    fi.write(tmp_path / "fitinput.h5")
    result = fit(fi, impacts=True, global_impacts=True)
    result.write(tmp_path / "evil.h5", meta=provenance(inputs=[str(tmp_path / "fitinput.h5")]))
    page = write_report(
        tmp_path / "evil.h5", out=tmp_path / "site", formats=("png",), projections=[]
    )
    for html in (page.read_text(), (page.parent / "impacts_mW.html").read_text()):
        assert evil not in html
    run = page.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in run  # flags and the global impacts
    impacts = (page.parent / "impacts_mW.html").read_text()
    # inline JSON cannot close its <script>: its <, > and & are JavaScript escapes
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in impacts
    assert "esc(r.name)" in impacts  # and rows are escaped when the table is built


def _fd_bin_jacobian(model, x, eps=1e-6):
    """d(total yield per bin)/dx by central differences: no use of the model's Jacobian."""
    cols = []
    for k in range(len(x)):
        up, dn = x.copy(), x.copy()
        up[k] += eps
        dn[k] -= eps
        cols.append((model.yields(up).sum(axis=1) - model.yields(dn).sum(axis=1)) / (2 * eps))
    return np.stack(cols, axis=1)


def test_projection_gof_equals_an_independent_numpy_computation(fitted):
    """chi2 of the pT and eta projections, pre- and post-fit, against numpy: a finite-difference
    Jacobian, the residual covariance S -+ J C J^T written out and solved directly."""
    from scipy import stats

    from fit.gof import projection_gofs

    fi, result, _ = fitted
    model = Model(fi)
    gofs = projection_gofs(model, result)["wmunu"]
    cons = np.asarray(result.constrained, bool)
    points = {
        "prefit": (np.zeros(model.K), np.diag(cons.astype(float)), +1.0),
        "postfit": (np.asarray(result.values), np.asarray(result.covariance), -1.0),
    }
    data = np.asarray(fi.data).reshape(4, 10)
    for stage, (x, cov, sign) in points.items():
        n = model.yields(x).sum(axis=1).reshape(4, 10)
        jac = _fd_bin_jacobian(model, x).reshape(4, 10, -1)
        for axis, drop in (("eta", 1), ("pt", 0)):
            d, p, j = data.sum(axis=drop), n.sum(axis=drop), jac.sum(axis=drop)
            v = np.diag(p) + sign * j @ cov @ j.T
            r = d - p
            if stage == "prefit":  # S + J C0 J^T: full rank
                chi2, ndf = float(r @ np.linalg.solve(v, r)), len(d)
            else:  # the directions the fit fixes (residual variance < 1 % of S) are no dof
                w = 1 / np.sqrt(p)
                vw = w[:, None] * v * w[None, :]
                ndf = int(np.sum(np.linalg.eigvalsh(vw) > 0.01))
                chi2 = float((r * w) @ np.linalg.pinv(vw, rcond=0.01, hermitian=True) @ (r * w))
            got = gofs[axis][stage]
            assert got["ndf"] == ndf
            assert got["chi2"] == pytest.approx(chi2, rel=1e-6)
            assert got["p_value"] == pytest.approx(stats.chi2.sf(chi2, ndf), rel=1e-5)
        # pT post-fit: two directions (the total, which the data measure far better than the
        # 1.7 % luminosity prior, and the m_W shape) are fixed by the fit
        assert gofs["pt"]["postfit"]["ndf"] == 8 and gofs["pt"]["prefit"]["ndf"] == 10
    # the fit moved the prediction towards the data: the post-fit pT chi2 is the smaller
    assert gofs["pt"]["postfit"]["chi2"] < gofs["pt"]["prefit"]["chi2"]


def test_projection_gof_drops_the_direction_a_free_normalisation_fits():
    """One process with a free signal strength: the fit makes the total exact, so post-fit the
    projection has one degree of freedom fewer and its chi2 is Pearson's sum (d - n)^2 / n."""
    from fit.gof import projection_gofs

    nominal = np.array([100.0, 200.0, 300.0, 250.0, 150.0])
    data = np.array([130.0, 190.0, 320.0, 260.0, 120.0])
    b = FitInputBuilder()
    ax = hist.axis.Regular(5, 26, 56, name="pt")
    hd, hn = hist.Hist(ax), hist.Hist(ax)
    hd[...], hn[...] = data, nominal
    b.add_channel("sr", hd)
    b.add_process("sr", "sig", hn, signal=True)
    b.add_poi("mu")
    fi = b.build()
    result = fit(fi)
    g = projection_gofs(Model(fi), result)["sr"]["pt"]["postfit"]
    n = nominal * data.sum() / nominal.sum()
    assert g["ndf"] == 4
    assert g["chi2"] == pytest.approx(float(np.sum((data - n) ** 2 / n)), rel=1e-6)


def test_flags_and_gof_section_show_the_projections(fitted, site):
    from fit.gof import projection_gofs

    fi, result, _ = fitted
    gofs = projection_gofs(Model(fi), result)["wmunu"]
    html = site.read_text()
    flags = html[html.index('<div class="flags">') : html.index("</div>", html.index("flags"))]
    post = gofs["pt"]["postfit"]
    line = f"wmunu, pt: χ²/ndf = {post['chi2']:.1f}/{post['ndf']}, p = {post['p_value']:.2g}"
    assert line in flags
    assert "saturated GOF" in flags and "wmunu, eta:" in flags
    section = html[html.index("<h2>Goodness of fit</h2>") :]
    pre = gofs["eta"]["prefit"]
    assert f"<td>{pre['chi2']:.1f}/4</td><td>{pre['p_value']:.2g}</td>" in section


def test_nuisance_names_carry_their_physical_ranges(fitted, tmp_path):
    """Channel axes from the fit result, eta binnings of the corrections from the payload the
    histograms were filled with (named in the hists.h5 provenance)."""
    from analysis.report.names import binning_of, display_name

    _, result, _ = fitted
    payload = {
        "schema_version": 2,
        "corrections": [
            {
                "name": name,
                "version": 1,
                "inputs": [{"name": "eta", "type": "real"}],
                "output": {"name": "w", "type": "real"},
                "data": {
                    "nodetype": "binning",
                    "input": "eta",
                    "edges": edges,
                    "content": [1.0] * (len(edges) - 1),
                    "flow": "clamp",
                },
            }
            for name, edges in (
                ("muon_idip_sf", [-2.4, -0.8, -0.7, 2.4]),
                ("muon_prefiring", [-2.4, -1.2, 1.2, 2.4]),
                ("muon_scale_uncertainty", [-2.4, 0.0, 2.4]),
            )
        ],
    }
    corr = tmp_path / "corrections.json"
    corr.write_text(json.dumps(payload))
    hists = _hists_file(tmp_path / "hists.h5", provenance(args={"corrections": str(corr)}))
    b = binning_of(result, [hists])
    assert b.eta == pytest.approx(list(np.linspace(-2.4, 2.4, 5)))  # the fit channel's eta
    assert display_name("effStat_eta1_idip_eig2", b) == "eff. stat. ID+IP η -0.8..-0.7, eig 2"
    assert display_name("prefiringStat_eta2", b) == "prefiring stat. η 1.2..2.4"
    assert display_name("muonScale_eta0", b) == "muon scale η -2.4..0"
    # the toy fit has no charge axis: a per-charge name stays raw, as does an unknown index
    assert display_name("nonprompt_eta1_q1_eig0", b) == "nonprompt_eta1_q1_eig0"
    assert display_name("muonScale_eta7", b) == "muonScale_eta7"
    b.charge = [-2.0, 0.0, 2.0]
    assert display_name("nonprompt_eta1_q1_eig0", b) == "nonprompt η -1.2..0, μ+, eig 0"
    assert display_name("nonprompt_eta3_q0_norm", b) == "nonprompt η 1.2..2.4, μ-, norm"


def test_new_figures_templates_and_mw_comparison(fitted, site):
    """The m_W +-100 MeV template ratios (from the model at x_mW = +-1) and the comparison with
    the published measurements, whose log lists every reference."""
    from analysis.report.measurements import MW_EW_FIT, MW_MEASUREMENTS

    plots = site.parent / "plots"
    assert (plots / "wmunu_templates_mW.png").stat().st_size > 10_000
    # the ratios drawn (listed in the log): the +-100 MeV templates of the toy over its nominal
    c = np.linspace(27.5, 54.5, 10)

    def w(mw):  # the toy's W spectrum summed over its 4 eta bins
        return 4 * (1e4 * np.exp(-0.5 * ((c - 40.0 * mw / MW_REF) / 6.0) ** 2) + 500)

    rows = (plots / "wmunu_templates_mW.log").read_text().split("pT bin")[1].splitlines()[1:11]
    got = np.array([[float(v) for v in r.split()[1:3]] for r in rows])
    np.testing.assert_allclose(got[:, 0], w(MW_REF + 100) / w(MW_REF), rtol=1e-5)
    np.testing.assert_allclose(got[:, 1], w(MW_REF - 100) / w(MW_REF), rtol=1e-5)
    log = (plots / "mw_comparison.log").read_text()
    for m in (*MW_MEASUREMENTS, MW_EW_FIT):
        assert m.reference in log
    assert {m.label.split()[0] for m in MW_MEASUREMENTS} >= {"LEP", "CDF", "D0", "ATLAS", "LHCb"}
    cms = next(m for m in MW_MEASUREMENTS if m.label.startswith("CMS"))
    assert (cms.value, cms.error) == (80360.2, 9.9)
