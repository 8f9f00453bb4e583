"""The demo's report site as a user sees it: every page opened in headless Chromium.

The demo chain (``wmass demo``: generate, histmaker, setup-fit, fit, report) runs once on a
small sample; then every HTML page of its site (the index of runs, the run page, the impact
page of each POI) is loaded in Debian's Chromium. On each page every figure must load (an
``<img>`` decoded with ``naturalWidth > 0``, every plotly figure drawn as SVG), no console error
or uncaught exception may occur, and a full-page screenshot is saved under the test's
temporary directory (``screenshots/``) for a person to look at.

``WMASS_TEST_DEMO=DIR`` reuses the output of an earlier ``wmass demo --out DIR`` instead of
running the chain again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from analysis import cli
from tests.services import browser_page

EVENTS = 60_000


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory) -> Path:
    """The site of a demo run (``DIR/site``)."""
    reuse = os.environ.get("WMASS_TEST_DEMO")
    if reuse:
        site = Path(reuse) / "site"
        if not (site / "index.html").is_file():
            pytest.skip(f"WMASS_TEST_DEMO={reuse}: no site/index.html there")
        return site
    out = tmp_path_factory.mktemp("demo")
    argv = ["demo", "--out", str(out), "--events", str(EVENTS), "--executor", "iterative"]
    assert cli.main(argv) == 0
    return out / "site"


def _pages(site: Path) -> list[Path]:
    runs = json.loads((site / "runs.json").read_text())["runs"]
    pages = [site / "index.html"]
    for run in runs:
        run_dir = site / run["name"]
        pages.append(run_dir / "index.html")
        pages += sorted(run_dir.glob("impacts_*.html"))
    return pages


_LOAD_ALL_IMAGES = """async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = "eager"; });
  await Promise.all(imgs.map(i => i.complete ? null :
    new Promise(r => { i.addEventListener("load", r); i.addEventListener("error", r); })));
  return imgs.map(i => ({src: i.getAttribute("src"), ok: i.complete && i.naturalWidth > 0,
                          width: i.naturalWidth}));
}"""

_PLOTLY = """() => Array.from(document.querySelectorAll(".js-plotly-plot, #fig")).map(d => ({
  id: d.id, drawn: d.querySelector(".main-svg") !== null,
  traces: (d.data || []).length}))"""


@pytest.mark.slow
def test_every_page_of_the_demo_site_loads_every_figure_without_console_errors(demo_site, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    pages = _pages(demo_site)
    assert len(pages) >= 3  # the index, one run page, its impact page
    seen: dict[str, dict] = {}
    with browser_page() as (page, errors):
        for path in pages:
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_load_state("networkidle")
            images = page.evaluate(_LOAD_ALL_IMAGES)
            if path.name.startswith("impacts_"):
                page.wait_for_selector("#fig .main-svg")
            plotly = page.evaluate(_PLOTLY)
            bad = [i["src"] for i in images if not i["ok"]]
            assert not bad, f"{path}: images that did not load: {bad}"
            undrawn = [p["id"] for p in plotly if not p["drawn"]]
            assert not undrawn, f"{path}: plotly figures not drawn: {undrawn}"
            rel = path.relative_to(demo_site)
            page.screenshot(path=str(shots / (str(rel).replace("/", "_") + ".png")), full_page=True)
            seen[str(rel)] = {
                "images": images,
                "plotly": plotly,
                "text": page.inner_text("body"),
            }
            assert errors == [], f"{path}: console errors {errors}"

    run_pages = [k for k in seen if k.endswith("/index.html")]
    assert run_pages
    for key in run_pages:
        run_dir = demo_site / Path(key).parent
        on_page = {i["src"] for i in seen[key]["images"]}
        written = {f"plots/{p.name}" for p in (run_dir / "plots").glob("*.png")}
        assert on_page == written  # every figure written is shown, and only those
        assert all(i["width"] > 300 for i in seen[key]["images"])
        names = {Path(s).stem for s in on_page}
        for must in ("impacts_mW", "scan_mW", "pulls", "correlations", "mw_comparison"):
            if must == "scan_mW" and not (run_dir / "plots" / "scan_mW.png").exists():
                continue  # the demo fits without --scan
            assert must in names
        assert any("pullmap" in n for n in names) and any("templates" in n for n in names)
        assert any("nonprompt_closure" in n for n in names)
        text = seen[key]["text"]
        # the flags box: status, EDM, the saturated and per-projection goodness of fit
        for word in ("fit status", "EDM", "saturated GOF", ", pt: χ²/ndf", ", eta: χ²/ndf"):
            assert word in text
        assert ", charge: χ²/ndf" in text
    for key in (k for k in seen if "/impacts_" in k):
        assert any(p["traces"] >= 3 for p in seen[key]["plotly"])  # pulls and both impacts
        assert "η" in seen[key]["text"]  # nuisances named by their eta ranges
    assert len(list(shots.glob("*.png"))) == len(pages)
    assert all(p.stat().st_size > 20_000 for p in shots.glob("*.png"))
