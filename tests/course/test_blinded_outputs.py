"""A student's outputs stay blinded: ``wmass report``, ``wmass inspect`` and what ``wmass fit``
prints show m_W only as the blinded value (fitted minus the hidden offset) while the fit was
made from a blinded course sample and the course secret is not set; with the right secret
they show the fitted value.

The fit is the report tests' small W-like model (injected m_W = reference + 30 MeV), its
provenance chained to a course sample directory as the real chain is (fit result -> fit input
-> the sample's datasets.yaml).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from analysis.constants import MW_REF_MEV
from analysis.course.blinding import blinded_mw, write_blinding
from analysis.course.outputs import (
    blind_description,
    blind_printed,
    blinding_for,
    find_sample,
)
from analysis.report import write_report
from analysis.report.style import pdg_round
from fit.fitter import fit
from fit.provenance import provenance
from tests.analysis.test_report import w_like_fit_input

SECRET = "a-school-secret"
STUDENT = "Ada Lovelace"


@pytest.fixture
def no_secret(monkeypatch):
    for var in ("WMASS_COURSE_SECRET", "WMASS_COURSE_SECRET_FILE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def course_fit(tmp_path_factory):
    """A sample directory with blinding.json, and a fit input and result made 'from' it."""
    d = tmp_path_factory.mktemp("blinded")
    sample_dir = d / "samples" / "ada-lovelace"
    sample_dir.mkdir(parents=True)
    (sample_dir / "datasets.yaml").write_text("{}\n")
    sample = write_blinding(sample_dir, STUDENT, SECRET)
    fi = w_like_fit_input()
    fi.write(d / "fitinput.h5", meta=provenance(inputs=[str(sample_dir / "datasets.yaml")]))
    result = fit(fi, scan=["mW"], scan_points=5)
    result.write(d / "fitresult.h5", meta=provenance(inputs=[str(d / "fitinput.h5")]))
    return sample, result, d


def _shown(value: float, error: float) -> str:
    """m_W as the report shows it (PDG-rounded)."""
    return pdg_round(value, error)[0]


def _has_number(text: str, shown: str) -> bool:
    return re.search(rf"(?<![\d.]){re.escape(shown)}(?![\d])", text) is not None


def _site_text(site: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in site.rglob("*.html"))


def test_the_fit_recovers_the_injected_mass(course_fit):
    _, result, _ = course_fit
    mw = result.pois["mW"]
    assert abs(mw["value"] - (MW_REF_MEV + 30)) < 2 * mw["error"]


def test_the_sample_is_found_through_the_provenance(course_fit, no_secret):
    sample, _, d = course_fit
    assert find_sample(d / "fitresult.h5").commitment == sample.commitment
    assert blinding_for(d / "fitresult.h5") is not None
    assert find_sample(d / "samples") is None  # the parent of samples is not one


def test_the_report_of_a_blinded_student_hides_the_fitted_mass(course_fit, no_secret, tmp_path):
    sample, result, d = course_fit
    mw = result.pois["mW"]
    true_shown = _shown(mw["value"], mw["error"])
    blind_value = blinded_mw(mw["value"], sample)
    blind_shown = _shown(blind_value, mw["error"])
    assert abs(blind_value - mw["value"]) > 70_000  # a difference from the reference, not a mass
    page = write_report(d / "fitresult.h5", out=tmp_path / "site", formats=("png",))
    html = _site_text(tmp_path / "site")
    assert not _has_number(html, true_shown), f"the fitted m_W {true_shown} is in the site"
    assert not _has_number(html, f"{mw['value']:.1f}")
    run_html = page.read_text(encoding="utf-8")
    assert 'class="blinded"' in run_html and "mW (blinded)<" in run_html
    assert _has_number(run_html, blind_shown)
    runs = json.loads((tmp_path / "site" / "runs.json").read_text())["runs"]
    assert runs[0]["pois"]["mW"]["blinded"] is True
    assert runs[0]["pois"]["mW"]["value"] == pytest.approx(blind_value, abs=1e-6)
    # the figure that places the fitted value among the published measurements is left out
    assert not (page.parent / "plots" / "mw_comparison.png").exists()
    # the team's slides, filled from this run, quote the blinded value and copy the figures
    from analysis.course.slides import team_slides

    slides = team_slides(page.parent, tmp_path / "slides", team="Team J", members=["Ada"])
    text = slides.read_text(encoding="utf-8")
    assert f"blinded m_W = {blind_shown} ± " in text and "Team J" in text
    assert not _has_number(text.split("<!-- provenance")[0], true_shown)
    for fig in re.findall(r"\(plots/([^)]+\.png)\)", text):
        assert (tmp_path / "slides" / "plots" / fig).is_file()
    assert "pulls.png" in text and '"command": "wmass course slides"' in text
    # a wrong secret does not unblind
    import os

    os.environ["WMASS_COURSE_SECRET"] = "not-the-secret"
    try:
        assert blinding_for(d / "fitresult.h5") is not None
    finally:
        del os.environ["WMASS_COURSE_SECRET"]


def test_with_the_course_secret_the_report_unblinds(course_fit, no_secret, monkeypatch, tmp_path):
    _, result, d = course_fit
    mw = result.pois["mW"]
    site = tmp_path / "site"
    write_report(d / "fitresult.h5", out=site, formats=("png",))
    assert not _has_number(_site_text(site), _shown(mw["value"], mw["error"]))
    monkeypatch.setenv("WMASS_COURSE_SECRET", SECRET)
    page = write_report(d / "fitresult.h5", out=site, formats=("png",))  # the same run, again
    html = _site_text(site)
    assert _has_number(page.read_text(encoding="utf-8"), _shown(mw["value"], mw["error"]))
    assert _has_number((site / "index.html").read_text(), _shown(mw["value"], mw["error"]))
    # (the page also shows the working tree's git diff, which may hold these words: look at
    # the elements themselves)
    assert 'class="blinded"' not in html and "mW (blinded)<" not in html
    assert (page.parent / "plots" / "mw_comparison.png").exists()
    runs = json.loads((site / "runs.json").read_text())["runs"]
    assert len(runs) == 1 and runs[0]["pois"]["mW"]["value"] == pytest.approx(mw["value"])


def test_inspect_and_the_fit_summary_are_blinded_until_the_secret_is_set(
    course_fit, no_secret, monkeypatch
):
    from analysis.inspect import describe

    sample, result, d = course_fit
    mw = result.pois["mW"]
    desc = describe(d / "fitresult.h5")
    assert desc["pois"]["mW"]["value"] == pytest.approx(mw["value"])  # inspect itself
    blinded = blind_description(desc, d / "fitresult.h5")
    assert blinded["pois"]["mW"]["blinded"] is True
    assert blinded["pois"]["mW"]["value"] == pytest.approx(blinded_mw(mw["value"], sample))
    assert blinded["pois"]["mW"]["error"] == pytest.approx(mw["error"])
    assert "BLINDED" in blinded["blinding"]
    printed = blind_printed(result.summary(), d / "fitinput.h5")
    assert "mW (blinded)" in printed
    assert not _has_number(printed, _shown(mw["value"], mw["error"]))
    toys_line = f"  mW: mean {mw['value']:.6g}, spread 12.3"
    assert f"{mw['value']:.6g}" not in blind_printed(toys_line, d / "fitinput.h5")
    monkeypatch.setenv("WMASS_COURSE_SECRET", SECRET)
    assert blind_description(desc, d / "fitresult.h5") is desc
    assert blind_printed(result.summary(), d / "fitinput.h5") == result.summary()


def test_outputs_of_an_ordinary_sample_are_not_touched(tmp_path, no_secret):
    fi = w_like_fit_input(seed=2)
    fi.write(tmp_path / "fitinput.h5", meta=provenance(inputs=[str(tmp_path / "nowhere.yaml")]))
    assert blinding_for(tmp_path / "fitinput.h5") is None
    text = "mW = 80410 +- 20 MeV"
    assert blind_printed(text, tmp_path / "fitinput.h5") == text


def test_wmass_fit_prints_the_blinded_mass_through_blinded_stdout(
    course_fit, no_secret, capsys, tmp_path
):
    """What ``analysis/cli.py`` does around ``wmass fit`` (``blinded_stdout(args.input)``)."""
    from analysis import cli
    from analysis.course.outputs import blinded_stdout

    sample, _, d = course_fit
    with blinded_stdout(d / "fitinput.h5"):
        rc = cli.main(["fit", str(d / "fitinput.h5"), "--out", str(tmp_path / "r.h5")])
    printed = capsys.readouterr().out
    assert rc == 0 and "mW (blinded) = " in printed and "wrote" in printed
    from fit.result import FitResult

    mw = FitResult.read(tmp_path / "r.h5").pois["mW"]  # the file itself is not blinded
    assert not _has_number(printed, _shown(mw["value"], mw["error"]))
    shown = float(re.search(r"mW \(blinded\) = ([-+]\d+\.\d)", printed).group(1))
    # blinded from the printed (PDG-rounded) value: within the rounding of the value
    assert abs(shown - blinded_mw(mw["value"], sample)) <= 5.0
