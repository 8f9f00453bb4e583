"""``wmass report``: bands that propagate the covariance right, logs, and a site in Chromium.

The fit is a small W-mass-like model: a Jacobian-peak muon pT spectrum in 4 eta x 10 pT bins
whose peak moves with m_W (the POI, from +-100 MeV templates), Z and QCD backgrounds, a
luminosity, a 30 % QCD normalisation and per-eta efficiency nuisances; pseudo-data are Poisson
draws at m_W = 80379 + 30 MeV.
"""

from __future__ import annotations

import json

import hist
import numpy as np
import pytest

from analysis import cli
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

MW_REF = 80379.0


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


def _hists_file(path):
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
    return write_histograms(path, [ds], provenance(command="wmass histmaker test"))


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
    fit_figures = ["correlations", "impacts_mW", "pulls", "scan_mW"]
    assert sorted(p.stem for p in plots.glob("*.png")) == sorted(
        [f"wmunu_{s}_{v}" for s in ("prefit", "postfit") for v in ("pullmap", "eta", "pt")]
        + fit_figures
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
        assert page.locator(".plot img").count() == 10  # 6 distributions, 4 fit figures
        assert page.locator(".flags li").count() >= 5
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
    assert cli.main(["report", str(d / "fitinput.h5"), "--out", str(tmp_path / "s")]) == 1


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
    assert "<\\/script>" in impacts  # inline JSON cannot close its <script>
    assert "esc(r.name)" in impacts  # and rows are escaped when the table is built
