"""Names from inputs as file names and element ids; the templates' escaping."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import jinja2
import numpy as np
import pytest

from analysis.report.files import safe_filename
from analysis.report.render import environment, render_string, script_json
from analysis.report.runplots import make_plots, poi_slug

HOSTILE = [
    "window.__hit",
    "a/b",
    "../../etc/passwd",
    "..",
    ".",
    "",
    " ",
    "-rf",
    "a--b",
    "</script><script>window.__hit(13)</script>",
    '\'"><svg onload="x"> ü',
    "μ ü∑θ",
    "C:\\temp\\x",
    "x" * 300,
    "a\x00b",
    "\u202eRTL",
]


@pytest.mark.parametrize("name", ["mW", "r_POI", "wmunu", "eta-pt", "nonprompt_eta16_q1_eig1"])
def test_a_safe_name_stays_as_it_is(name):
    assert safe_filename(name) == name


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_name_is_a_plain_file_name_and_id(name, tmp_path):
    s = safe_filename(name)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]*--[0-9a-f]{8}", s), s
    assert len(s) <= 70
    path = tmp_path / f"{s}_prefit_unrolled"
    assert path.parent == tmp_path and path.with_suffix(".png").stem == path.name


def test_names_that_slug_alike_stay_apart():
    names = sorted({"a b", "a/b", "a.b", "a_b", "a?b", "a--b", "a-b", "a_b--c8687a08", *HOSTILE})
    slugs = [safe_filename(n) for n in names]
    assert len(set(slugs)) == len(names), slugs
    assert safe_filename("a b").startswith("a_b--")  # readable


def test_poi_slug_is_the_one_safe_name():
    assert poi_slug('mu"+x+"<b>') == safe_filename('mu"+x+"<b>')


def test_every_plot_of_hostile_channels_has_its_own_file_in_the_plots_directory(tmp_path):
    """Channels named with '.', '/' and '..': one file per figure, all inside plots/."""
    axes = [
        {"name": "eta", "edges": [-2.4, 0.0, 2.4]},
        {"name": "pt", "edges": [26.0, 40.0, 56.0]},
    ]
    yields = {}
    for channel in ("window.__hit", "a/b", "../up", "a b"):
        pred = np.array([[10.0, 2.0], [12.0, 3.0], [11.0, 2.5], [9.0, 1.0]])
        yields[channel] = {
            "processes": ["W.x", "../QCD"],
            "axes": axes,
            "prefit": pred,
            "postfit": pred * 1.01,
            "data": pred.sum(axis=1).round(),
        }
    result = SimpleNamespace(yields=yields)
    plots_dir = tmp_path / "site" / "run" / "plots"
    plots, totals = make_plots(result, None, plots_dir, {}, {}, ("png",))
    assert set(totals) == set(yields)
    pngs = [p.png for p in plots]
    assert len(pngs) == 4 * 2 * 3  # channels x stages x (unrolled, eta, pt)
    assert len(set(pngs)) == len(pngs), sorted(pngs)
    written = sorted(p.name for p in tmp_path.rglob("*.png"))
    assert written == sorted(pngs)
    assert all(p.parent == plots_dir for p in tmp_path.rglob("*") if p.is_file())


def test_templates_escape_and_refuse_undefined_names():
    env = environment()
    assert env.autoescape is True and env.undefined is jinja2.StrictUndefined
    assert str(render_string("<a title='{{ x }}'>{{ x }}</a>", x="'\"<&")) == (
        "<a title='&#39;&#34;&lt;&amp;'>&#39;&#34;&lt;&amp;</a>"
    )
    with pytest.raises(jinja2.UndefinedError):
        render_string("{{ missing }}")


def test_script_json_cannot_close_its_script():
    text = str(script_json({"n": "</script><!--<script>&"}))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"n": "</script><!--<script>&"}
