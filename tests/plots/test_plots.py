"""Plots and their .log files; the nuisance page in a real browser with thousands of rows."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.report.plots import nuisance_page, stack_plot, unroll, write_plot_log, yields_table
from fit.provenance import provenance
from tests.services import browser_page
from tests.support import nuisance_draws


def test_unroll_is_c_order_with_a_label_saying_so():
    values = np.arange(6.0).reshape(2, 3)
    flat, label = unroll(values, ["charge", "pt"])
    assert flat.tolist() == [0, 1, 2, 3, 4, 5]
    assert label == "unrolled bin (charge x pt, pt fastest)"


def test_yields_table_sums_processes_and_data():
    rows = yields_table(
        {"W": np.array([1.0, 2.0]), "Z": np.array([0.5, 0.5])},
        {"W": 0.1},
        data=np.array([4.0, 0.0]),
    )
    by = {r["process"]: r for r in rows}
    assert by["W"]["yield"] == 3.0 and by["W"]["uncertainty"] == 0.1
    assert by["Total"]["yield"] == 4.0
    assert by["Data"]["yield"] == 4.0 and by["Data"]["uncertainty"] == 2.0


def test_stack_plot_writes_png_pdf_and_a_log_with_yields(tmp_path):
    edges = np.linspace(26, 56, 31)
    stack = {"Wmunu": np.full(30, 1000.0), "QCD": np.linspace(200, 10, 30)}
    total = sum(stack.values())
    paths = stack_plot(
        edges, stack, data=total, band=0.02 * total, xlabel="pT", out=tmp_path / "pt"
    )
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    meta = provenance(args={"x": 1}, inputs=["hists.h5"], command="wmass report x")
    log = write_plot_log(paths[0], meta=meta, yields=yields_table(stack, data=total))
    text = log.read_text()
    assert "The command was: wmass report x" in text
    assert f"{30000.0:16.2f}" in text  # the Wmunu yield
    assert meta["git_hash"] in text


def test_nuisance_page_shows_every_nuisance_without_console_errors(tmp_path):
    n = 5000
    rng = np.random.default_rng(3)
    names = [f"effStat_eta{i // 100}_{i % 100}" for i in range(n)]
    groups = ["muon_eff"] * 4000 + ["pdf"] * 1000
    pulls, constraints, impacts = nuisance_draws(rng, n, impact=2, pull=0.3, constraint=(0.5, 1))
    out = nuisance_page(
        names, pulls, constraints, impacts, groups=groups, out=tmp_path / "impacts.html"
    )
    assert (tmp_path / "plotly.min.js").stat().st_size > 1_000_000  # served from the site itself
    assert "cdn" not in out.read_text().lower()
    with browser_page() as (page, errors):
        page.goto(out.as_uri())
        page.wait_for_selector("#fig .main-svg")
        assert page.locator("#rows tr").count() == n
        first = page.locator("#rows tr").first.locator("td").first.inner_text()
        assert first == names[int(np.argmax(np.abs(impacts)))]  # sorted by |impact|
        page.fill("#q", "effStat_eta7_")
        assert page.locator("#rows tr").count() == 100
        page.select_option("#group", "pdf")
        assert page.locator("#rows tr").count() == 0  # eta7 rows are all muon_eff
        page.screenshot(path=str(tmp_path / "impacts.png"))
        assert errors == []
    assert (tmp_path / "impacts.png").stat().st_size > 10_000


@pytest.mark.parametrize("poi", ["mW", "r_POI"])
def test_nuisance_page_names_the_poi(tmp_path, poi):
    out = nuisance_page(
        ["a"], np.zeros(1), np.ones(1), np.ones(1), poi=poi, out=tmp_path / "p.html"
    )
    assert f'"impact on " + "{poi}"' in out.read_text()


def test_nuisance_page_shows_labels_and_keeps_the_raw_name(tmp_path):
    """Rows show the label with its physical range; the raw name is the cell's tooltip and
    the search finds a nuisance by either."""
    names = ["nonprompt_eta16_q1_eig1", "pdf3", "<b>x</b>"]
    labels = ["nonprompt η -0.8..-0.7, μ+, eig 1", "pdf3", "<b>x</b>"]
    out = nuisance_page(
        names,
        np.zeros(3),
        np.ones(3),
        np.array([3.0, 2.0, 1.0]),
        labels=labels,
        out=tmp_path / "impacts.html",
    )
    with browser_page() as (page, errors):
        page.goto(out.as_uri())
        page.wait_for_selector("#fig .main-svg")
        first = page.locator("#rows tr").first.locator("td").first
        assert first.inner_text() == labels[0]
        assert first.get_attribute("title") == names[0]
        page.fill("#q", "eta16_q1")  # the raw name
        assert page.locator("#rows tr").count() == 1
        page.fill("#q", "-0.8..-0.7")  # the range
        assert page.locator("#rows tr").count() == 1
        page.fill("#q", "<b>")
        assert page.locator("#rows td").first.inner_text() == "<b>x</b>"  # shown literally
        assert errors == []
