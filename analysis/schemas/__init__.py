"""The JSON Schemas of ``wmass inspect FILE --json``: the machine-readable contract.

``inspect-histograms.schema.json`` (``kind: histograms``, :func:`analysis.io.describe`) and
``inspect-fitresult.schema.json`` (``kind: fitresult``, ``fit.describe``) ship in the package;
scripts, notebooks and CI read these keys. Add keys freely; never rename or drop the required
ones. A pyhf workspace fitted with ``wmass fit ws.json`` reports its POI under ``pois`` by the
workspace's POI name; the W-mass fit reports ``pois.mW`` in MeV.

>>> validate(describe_file("hists.h5"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

#: the ``kind`` values that have a schema
__all__ = ["KINDS", "schema", "validate"]

KINDS = ("histograms", "fitresult")


def schema(kind: str) -> dict[str, Any]:
    """The JSON Schema of ``wmass inspect --json`` for an output of this ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"no inspect schema for kind {kind!r}; known: {', '.join(KINDS)}")
    text = files(__name__).joinpath(f"inspect-{kind}.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


def validate(doc: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``doc`` follows the schema of its ``kind``."""
    import jsonschema

    jsonschema.validate(doc, schema(doc.get("kind", "")))
