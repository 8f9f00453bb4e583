"""The report's HTML from jinja2 templates (``analysis/report/templates/``).

One environment with autoescape on: every string given to a template is escaped where it lands
(text, attributes), so a name from an input (a nuisance, channel, process or POI of a pyhf
workspace) is shown literally and can run nothing. HTML made elsewhere (a section rendered by
its own template, a plotly div) is passed as :class:`markupsafe.Markup`. Undefined variables
raise (``StrictUndefined``): a template cannot silently drop a value.

Data given to a script goes through the ``script_json`` filter (:func:`script_json`): JSON with
``<``, ``>`` and ``&`` escaped, so no string inside it can close the ``<script>``.

>>> str(render_string("<p>{{ x }}</p>", x="<b>"))
'<p>&lt;b&gt;</p>'
>>> str(render_string("<script>const X = {{ x|script_json }};</script>", x="</script>"))
'<script>const X = "\\\\u003c/script\\\\u003e";</script>'
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

__all__ = [
    "TEMPLATES",
    "Markup",
    "environment",
    "render",
    "render_page",
    "render_string",
    "script_json",
]

#: the directory of the templates (package data of ``analysis.report``)
TEMPLATES = Path(__file__).with_name("templates")


def script_json(obj: Any) -> Markup:
    """``obj`` as JSON safe inside ``<script>``: ``<``, ``>`` and ``&`` as ``\\u003c``,
    ``\\u003e`` and ``\\u0026`` (JavaScript reads the same strings), so an input string such as
    ``</script>`` or ``<!--`` stays a string.

    >>> str(script_json(["</script><!--&"]))
    '["\\\\u003c/script\\\\u003e\\\\u003c!--\\\\u0026"]'
    """
    text = json.dumps(obj)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


@functools.cache
def environment() -> jinja2.Environment:
    """The report's jinja2 environment: the templates directory, autoescape, StrictUndefined."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["script_json"] = script_json
    return env


def render(template: str, **context: Any) -> Markup:
    """Render ``templates/<template>`` with ``context``; the result is HTML (Markup)."""
    return Markup(environment().get_template(template).render(**context))


def render_page(template: str, **context: Any) -> str:
    """A whole page from ``templates/<template>``, as the text of its file (ends with a newline)."""
    return str(render(template, **context)) + "\n"


def render_string(source: str, **context: Any) -> Markup:
    """Render a template given as text in the same environment (tests, small fragments)."""
    return Markup(environment().from_string(source).render(**context))
