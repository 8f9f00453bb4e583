"""A downloaded pyhf workspace cannot run script in the browser of whoever opens the report.

The workspace below is a valid pyhf workspace whose channel, sample, modifier (nuisance),
measurement and POI names -- and the name of the file itself -- are HTML/JavaScript injection
payloads: an ``<img onerror>``, a ``</script>`` that tries to close the page's inline JSON, an
attribute breakout ``"'><svg onload>``, a ``javascript:`` URL inside an ``<a>``, an
``<iframe srcdoc>``, an HTML comment opener, plus non-ASCII text. Every payload, if it ever
ran, would call ``window.__hit(n)`` (defined before the page's own scripts), open an
``alert``/``confirm`` dialog or set ``document.title`` to ``"pwned"``.

It is fitted with ``wmass fit ws.json --impacts --global-impacts`` and reported with
``wmass report``; every HTML page of the site is then opened in headless Chromium, mouse-over,
focus, load and error events are dispatched to every element and the search box is exercised,
and the test asserts that no payload ran (no ``__hit`` call, no dialog, title unchanged, no
element, inline event handler or ``javascript:`` link of theirs in the DOM, no console error)
and that the names that reach the report are shown literally in the page text. Three more
sites: a hostile POI name (it is also the id of plotly divs), a channel name with ``/`` (HDF5
reads it as a path), and the plot files of channels whose names hold a ``.`` (they collided).
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from analysis import cli
from tests.services import browser_page

#: role in the workspace -> hostile name (each payload calls __hit with its own number)
PAYLOADS = {
    "channel": '<img src=x onerror="window.__hit(1);alert(1)">',
    "channel2": "'\"><svg onload=\"window.__hit(2);document.title='pwned'\"> ü",
    "signal": "</script><script>window.__hit(3);document.title='pwned'</script>",
    "background": '<a href="javascript:window.__hit(4)">click me</a> ü€ 😀',
    "normsys": '<iframe srcdoc="<script>parent.__hit(6)</script>"></iframe>',
    "histosys": "<!--<script>window.__hit(7)</script>-->",
    "staterror": "stat'\"<svg/onload=window.__hit(8)>",
    "shapesys": "javascript:window.__hit(9)//\u202eRTL ∑θ",
    "measurement": '<body onload="window.__hit(10)">',
}
#: a channel name with '/', which HDF5 reads as a path
SLASH_CHANNEL = "</script><script>window.__hit(13)</script>"
#: the file name of the workspace is an input too (it lands in the provenance)
FILE_PAYLOAD = "ws <img src=y onerror=window.__hit(11)>"

#: defined before any script of a page: records calls and anything that would open a dialog
INIT_SCRIPT = """
window.__hits = [];
window.__hit = (n) => window.__hits.push(n);
"""


def hostile_workspace(poi: str, channel: str | None = None) -> dict:
    """Two channels (4 and 3 bins), a signal and a background; every name a payload, the POI
    (the normfactor of the signal) named ``poi``, the first channel ``channel`` if given."""
    p = {**PAYLOADS, "poi": poi}
    if channel is not None:
        p["channel"] = channel
    rng = np.random.default_rng(7)
    channels, observations = [], []
    for i, (name, nbins) in enumerate(((p["channel"], 4), (p["channel2"], 3))):
        x = (np.arange(nbins) + 0.5) / nbins
        bkg = 100.0 * np.exp(-x) * (1 + i)
        sig = 20.0 * np.exp(-(((x - 0.5) / 0.2) ** 2)) + 1.0
        samples = [
            {
                "name": p["signal"],
                "data": sig.tolist(),
                "modifiers": [{"name": p["poi"], "type": "normfactor", "data": None}],
            },
            {
                "name": p["background"],
                "data": bkg.tolist(),
                "modifiers": [
                    {"name": p["normsys"], "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}},
                    {
                        "name": p["histosys"],
                        "type": "histosys",
                        "data": {
                            "hi_data": (bkg * (1 + 0.1 * x)).tolist(),
                            "lo_data": (bkg * (1 - 0.1 * x)).tolist(),
                        },
                    },
                    {
                        "name": f"{p['staterror']}_{i}",
                        "type": "staterror",
                        "data": (0.05 * bkg).tolist(),
                    },
                    {
                        "name": f"{p['shapesys']}_{i}",
                        "type": "shapesys",
                        "data": (0.08 * bkg).tolist(),
                    },
                ],
            },
        ]
        channels.append({"name": name, "samples": samples})
        observations.append(
            {"name": name, "data": rng.poisson(bkg + 1.2 * sig).astype(float).tolist()}
        )
    return {
        "channels": channels,
        "observations": observations,
        "measurements": [
            {
                "name": p["measurement"],
                "config": {
                    "poi": p["poi"],
                    "parameters": [{"name": p["poi"], "bounds": [[-5, 10]]}],
                },
            }
        ],
        "version": "1.0.0",
    }


#: a POI name that is only unusual (non-ASCII, spaces): the site must work with it
PLAIN_POI = "μ ü∑θ"
#: hostile POI names: a JavaScript string breakout and an HTML tag with an event handler
HOSTILE_POI = 'mu"+window.__hit(12)+"<b onmouseover="window.__hit(5);confirm(1)">'


def _site(d: Path, poi: str, channel: str | None = None) -> Path:
    """``wmass fit ws.json --impacts --global-impacts`` and ``wmass report``; the site."""
    ws = d / f"{FILE_PAYLOAD}.json"
    spec = hostile_workspace(poi, channel)
    ws.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    fitresult = d / "fitresult.h5"
    argv = ["fit", str(ws), "--out", str(fitresult), "--impacts", "--global-impacts"]
    assert cli.main(argv) == 0
    site = d / "site"
    assert cli.main(["report", str(fitresult), "--out", str(site), "--formats", "png"]) == 0
    return site


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory) -> Path:
    """The site of the workspace with hostile names everywhere but in the POI."""
    return _site(tmp_path_factory.mktemp("hostile"), PLAIN_POI)


@pytest.fixture(scope="module")
def hostile_poi_site(tmp_path_factory) -> Path:
    """The site of the workspace whose POI name is hostile too."""
    return _site(tmp_path_factory.mktemp("hostile-poi"), HOSTILE_POI)


def _slash_channel_site(d: Path) -> Path:
    return _site(d, PLAIN_POI, channel=SLASH_CHANNEL)


#: run in each page after loading: elements, handlers and links the payloads would create
FIND_INJECTED = r"""() => {
  const out = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      const v = a.value.toLowerCase();
      if (a.name.startsWith('on') && v.includes('__hit(')) out.push(el.tagName + ' ' + a.name);
      if (['href', 'src', 'xlink:href', 'srcdoc', 'action'].includes(a.name)
          && v.trim().startsWith('javascript:'))
        out.push(el.tagName + ' ' + a.name + '=' + a.value);
    }
    if (['IFRAME', 'OBJECT', 'EMBED', 'svg'].includes(el.tagName) && el.getAttribute('onload'))
      out.push(el.tagName);
    if (el.tagName === 'IFRAME') out.push('IFRAME');
    if (el.tagName === 'IMG' && /\/[xy]$/.test(el.getAttribute('src') || ''))
      out.push('IMG src=' + el.getAttribute('src'));
  }
  for (const s of document.scripts) {
    if (/^\s*(window|parent)\.__hit/.test(s.text)) out.push('SCRIPT ' + s.text);
  }
  return out;
}"""

#: every element gets the events that inline handlers of the payloads listen to
DISPATCH = """() => {
  for (const el of document.querySelectorAll('*')) {
    for (const t of ['mouseover', 'mouseenter', 'focus', 'load', 'error']) {
      el.dispatchEvent(new Event(t, {bubbles: true}));
    }
  }
}"""


@dataclass
class Visit:
    """What happened on one page: calls of ``__hit``, injected DOM, the title, the text."""

    hits: list
    injected: list
    title: str
    expected_title: str
    text: str


def visit_site(site: Path) -> tuple[dict[str, Visit], list[str], list[str]]:
    """Open every HTML page of ``site`` in Chromium; ``({page: Visit}, dialogs, errors)``."""
    visits: dict[str, Visit] = {}
    dialogs: list[str] = []
    with browser_page() as (page, errors):
        page.add_init_script(INIT_SCRIPT)

        def _dialog(d) -> None:
            dialogs.append(f"{d.type}: {d.message}")
            d.dismiss()

        page.on("dialog", _dialog)
        for html_file in sorted(site.rglob("*.html")):
            source = html_file.read_text(encoding="utf-8")
            title = html.unescape(source.split("<title>", 1)[1].split("</title>", 1)[0]).strip()
            page.goto(html_file.as_uri())
            page.wait_for_load_state("load")
            if page.locator(".plotly-graph-div, #fig").count():
                page.wait_for_selector(".main-svg", timeout=30_000)
            if page.locator("#q").count():  # the impacts page: search, then show all again
                page.fill("#q", "<")
                page.fill("#q", "")
            page.evaluate(DISPATCH)
            page.wait_for_timeout(200)
            visits[str(html_file.relative_to(site))] = Visit(
                hits=page.evaluate("window.__hits"),
                injected=page.evaluate(FIND_INJECTED),
                title=page.title(),
                expected_title=title,
                text=page.inner_text("body"),
            )
    return visits, dialogs, list(errors)


def _assert_nothing_ran(site: Path) -> dict[str, Visit]:
    visits, dialogs, errors = visit_site(site)
    assert "index.html" in visits
    assert any(Path(k).name.startswith("impacts_") for k in visits), list(visits)
    for where, v in visits.items():
        assert v.hits == [], (where, v.hits)
        assert v.injected == [], (where, v.injected)
        assert v.title == v.expected_title != "pwned", where
    assert dialogs == []
    assert errors == []  # a name that broke a script would show up here
    return visits


def test_no_injected_script_runs_and_names_are_shown_literally(hostile_site):
    visits = _assert_nothing_ran(hostile_site)
    assert len(visits) == 3, list(visits)  # the index, the run page, the impacts page
    assert PLAIN_POI in visits["index.html"].text  # the runs table names the POI
    (run,) = [v for k, v in visits.items() if k.endswith("/index.html")]
    (impacts,) = [v for k, v in visits.items() if Path(k).name.startswith("impacts_")]
    assert PLAIN_POI in run.text
    # every nuisance of the workspace, literally, in the impacts table
    for name in (PAYLOADS["normsys"], PAYLOADS["histosys"]):
        assert name in impacts.text, name
    for name in (PAYLOADS["staterror"], PAYLOADS["shapesys"]):  # pyhf: one per bin, NAME[i]
        assert f"{name}_0[0]" in impacts.text and f"{name}_1[2]" in impacts.text, name
    # the strongly pulled per-bin nuisances are named in the run page's flags, as text
    assert PAYLOADS["shapesys"] in run.text


def test_a_hostile_poi_name_runs_no_script(hostile_poi_site):
    """The POI name is also the id of plotly divs: a quote in it must not end the attribute
    (its onmouseover handler ran) nor a JavaScript string."""
    visits = _assert_nothing_ran(hostile_poi_site)
    for where, v in visits.items():
        assert HOSTILE_POI in v.text, where


def test_a_channel_name_with_a_slash_is_reported_and_runs_no_script(tmp_path):
    """A '/' in a channel name (HDF5 reads it as a path) still gives a readable fit result
    and a report that shows the name and runs nothing of it."""
    site = _slash_channel_site(tmp_path)
    visits = _assert_nothing_ran(site)
    (run,) = [v for k, v in visits.items() if k.endswith("/index.html")]
    assert SLASH_CHANNEL in run.text


def test_every_plot_of_a_hostile_channel_has_its_own_file(hostile_site):
    """Plot files named after a channel with '.' in its name do not collide (the file name
    lost everything after the dot, so all plots of the channel shared one image)."""
    (run,) = [p for p in hostile_site.glob("*/index.html")]
    sources = re.findall(r'<img src="([^"]+)"', run.read_text(encoding="utf-8"))
    assert len(sources) >= 6
    assert len(set(sources)) == len(sources), sorted(sources)
