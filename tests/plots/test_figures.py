"""The static figures of a fit in physics style: units on the axes, the experiment label,
LaTeX process names, categorical charge, PNG and PDF; rounding of what people read."""

from __future__ import annotations

import numpy as np

from analysis.report.figures import (
    correlation_plot,
    impact_ranking_plot,
    mw_comparison_plot,
    pull_maps,
    pulls_histogram,
    scan_plot,
    template_ratio_plot,
    top_nuisances,
)
from analysis.report.measurements import MW_EW_FIT, MW_MEASUREMENTS
from analysis.report.plots import stack_plot
from analysis.report.style import axis_label, fmt_edge, lumi_text, pdg_round, process_label
from tests.support import nuisance_draws

STYLE = {"data": False, "lumi_pb": 1.0970846710000008}


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _written(paths):
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)


def test_stack_plot_has_units_label_latex_processes_and_lumi(tmp_path):
    edges = np.linspace(26, 56, 31)
    stack = {"Wmunu": np.full(30, 1000.0), "Zmumu": np.linspace(200, 10, 30)}
    total = sum(stack.values())
    fig = stack_plot(
        edges,
        stack,
        data=total,
        band=0.02 * total,
        xlabel=axis_label("pt", "muon pT [GeV]"),
        out=tmp_path / "pt",
        style=STYLE,
    )
    _written(fig)
    ax, rax = fig.figure.axes
    assert rax.get_xlabel() == "muon $p_{T}$ [GeV]"
    assert rax.get_ylabel() == "Data / Pred."
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "$W\\to\\mu\\nu$" in legend and "$Z\\to\\mu\\mu$" in legend
    texts = _texts(fig.figure)
    assert "CMS" in texts and "Simulation Private work" in texts
    assert "1.10 pb$^{-1}$ (13 TeV)" in texts


def test_charge_is_categorical(tmp_path):
    fig = stack_plot(
        np.array([-0.5, 0.5, 1.5]),
        {"Wmunu": np.array([5.0, 6.0])},
        data=np.array([5.0, 6.0]),
        xticklabels=["$\\mu^{-}$", "$\\mu^{+}$"],
        xlabel=axis_label("charge"),
        out=tmp_path / "q",
        formats=("png",),
    )
    rax = fig.figure.axes[1]
    assert [t.get_text() for t in rax.get_xticklabels()] == ["$\\mu^{-}$", "$\\mu^{+}$"]


def test_fit_figures_are_written_with_units(tmp_path):
    rng = np.random.default_rng(1)
    n = 50
    names = [f"nuis{i}" for i in range(n)]
    pulls, constraints, impacts = nuisance_draws(rng, n, impact=5, pull=1, constraint=(0.3, 1.2))
    fig = impact_ranking_plot(
        names,
        pulls,
        constraints,
        impacts,
        poi="mW",
        unit="MeV",
        poi_value=80301.3,
        poi_error=64.11,
        out=tmp_path / "rank",
    )
    _written(fig)
    ax, iax = fig.figure.axes
    assert len(ax.get_yticklabels()) == 30
    top = names[int(np.argmax(np.abs(impacts)))]
    assert ax.get_yticklabels()[-1].get_text() == top  # largest impact on top
    assert "[MeV]" in iax.get_xlabel()
    assert iax.get_legend().get_title().get_text() == "mW = 80300 $\\pm$ 60 MeV"
    assert iax.get_title(loc="right") == "(13 TeV)"  # no luminosity given

    x = np.linspace(-100, 100, 9)
    fig = scan_plot(
        x, 0.5 * (x / 40) ** 2, poi="mW", unit="MeV", value=0, error=40, out=tmp_path / "scan"
    )
    _written(fig)
    ax = fig.figure.axes[0]
    assert ax.get_xlabel() == "mW [MeV]"
    assert sorted(round(line.get_ydata()[0], 6) for line in ax.lines[2:]) == [1.0, 4.0]
    assert ax.get_legend().get_texts()[1].get_text() == "Hessian"

    fig = pulls_histogram(rng.normal(0, 1, 300), out=tmp_path / "pulls")
    _written(fig)
    labels = [t.get_text() for t in fig.figure.axes[0].get_legend().get_texts()]
    assert "$\\mathcal{N}(0,1)$" in labels and "300 nuisances" in labels

    a = rng.normal(size=(5, 5))
    fig = correlation_plot(["mW", "a", "b", "c", "d"], a @ a.T, out=tmp_path / "corr")
    _written(fig)
    image = fig.figure.axes[0].images[0].get_array()
    np.testing.assert_allclose(np.diag(image), 1.0)


def test_pull_maps_per_charge_with_physics_axes(tmp_path):
    axes = [
        {"name": "eta", "edges": list(np.linspace(-2.4, 2.4, 9))},
        {"name": "pt", "edges": list(np.linspace(26, 56, 11))},
        {"name": "charge", "edges": [-2.0, 0.0, 2.0]},
    ]
    pred = np.full(8 * 10 * 2, 100.0)
    data = pred.copy()
    data.reshape(8, 10, 2)[3, 4, 1] += 50  # a 5 sigma bin in eta 3, pt 4, mu+
    fig = pull_maps(data, pred, axes, out=tmp_path / "map", style=STYLE)
    _written(fig)
    plus = fig.figure.axes[1]
    assert plus.get_xlabel() == "muon $\\eta$"
    assert fig.figure.axes[0].get_ylabel() == "muon $p_{T}$ [GeV]"
    assert any(t.startswith("$\\mu^{+}$") for t in _texts(fig.figure))
    mesh = plus.collections[0].get_array().reshape(10, 8)  # pt x eta
    assert mesh[4, 3] == 5.0 and np.sum(mesh != 0) == 1


def test_rounding_of_numbers_people_read():
    assert pdg_round(80301.3, 64.11) == ("80300", "60")
    assert pdg_round(80301.3, 9.8) == ("80301", "10")
    assert pdg_round(1.2345, 0.0123) == ("1.234", "0.012")
    assert fmt_edge(29.000000000000004) == "29"
    assert lumi_text(16800.0) == "16.8 fb$^{-1}$ (13 TeV)"
    assert process_label("my_proc") == "my\\_proc"
    assert list(top_nuisances(np.array([1.0, -5.0, 3.0]), np.array([1, 1, 0], bool), 30)) == [1, 0]


def test_template_ratios_per_charge(tmp_path):
    edges = np.linspace(26, 56, 31)
    up = 1 + 0.02 * np.sin((edges[:-1] - 26) / 5)
    fig = template_ratio_plot(
        edges,
        {"$\\mu^{-}$": (up, 2 - up), "$\\mu^{+}$": (up * 1.01, 2 - up * 1.01)},
        xlabel=axis_label("pt"),
        out=tmp_path / "templates",
        style=STYLE,
    )
    _written(fig)
    ax = fig.figure.axes[0]
    assert ax.get_xlabel() == "muon $p_{T}$ [GeV]"
    assert ax.get_ylabel() == "Varied / nominal signal"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "$\\mu^{-}$, $m_W$ + 100 MeV" in legend and "$\\mu^{+}$, $m_W$ $-$ 100 MeV" in legend
    steps = [c for c in ax.patches if hasattr(c, "get_data")]
    np.testing.assert_allclose(steps[0].get_data().values, up)
    lo, hi = ax.get_ylim()
    assert lo < float(np.min(2 - up * 1.01)) and hi > float(np.max(up * 1.01))


def test_mw_comparison_with_the_published_measurements(tmp_path):
    fig = mw_comparison_plot(
        MW_MEASUREMENTS,
        this=("this fit", 80410.2, 181.7),
        prediction=MW_EW_FIT,
        out=tmp_path / "mw",
        style=STYLE,
    )
    _written(fig)
    ax = fig.figure.axes[0]
    assert ax.get_xlabel() == "$m_W$ [MeV]"
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks[0] == "this fit" and ticks[-1] == MW_MEASUREMENTS[0].label  # first on top
    assert {"CDF 2022", "CMS 2024", "ATLAS 2024", "LHCb 2021"} <= set(ticks)
    texts = _texts(fig.figure)
    assert "80410 $\\pm$ 180" in texts  # rounded to its uncertainty (PDG rule)
    assert "80434 $\\pm$ 9" in texts and "80360 $\\pm$ 10" in texts
    band = ax.patches[0].get_x(), ax.patches[0].get_width()
    np.testing.assert_allclose(band, (80354 - 7, 14))
