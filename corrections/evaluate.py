"""Evaluate any correctionlib JSON (ours, or a real CMS payload with the same names)."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import correctionlib
import numpy as np

from corrections.errors import BadCorrections
from corrections.names import CorrectionNames

__all__ = ["Corrections"]


def _nodes(node: Any) -> Iterator[dict]:
    """Depth-first walk over the data nodes of a correction."""
    if not isinstance(node, dict):
        return
    yield node
    content = node.get("content")
    if isinstance(content, list):
        for item in content:
            if isinstance(item, dict) and "key" in item and "value" in item:
                yield from _nodes(item["value"])
            else:
                yield from _nodes(item)
    for key in ("flow", "default"):
        yield from _nodes(node.get(key))


class Corrections:
    """A correctionlib payload kept as JSON text (so the object pickles to workers).

    ``evaluate(name, *inputs)`` works on numpy arrays; :meth:`edges` and :meth:`keys` read the
    binning and the variation keys from the JSON itself, so the processors follow the payload.
    """

    def __init__(
        self, text: str, names: CorrectionNames | None = None, *, source: str = "<text>"
    ) -> None:
        self.text = text
        self.names = names or CorrectionNames()
        self._json = _parse(text, source)
        self._by_name = {c["name"]: c for c in self._json["corrections"]}
        self._cset: correctionlib.CorrectionSet | None = None

    @classmethod
    def from_file(cls, path: str | Path, names: CorrectionNames | None = None) -> Corrections:
        """Read a ``.json`` or ``.json.gz`` correctionlib file.

        Anything wrong with the file (unreadable, not gzip, not UTF-8, not JSON, not a
        correctionlib payload that correctionlib accepts) raises :class:`BadCorrections`
        naming it, here in the driver rather than later on a worker.
        """
        path = Path(path)
        try:
            raw = path.read_bytes()
            if path.suffix == ".gz":
                raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile is an OSError
            raise BadCorrections(str(path), f"cannot read it ({err})") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise BadCorrections(
                str(path), f"not UTF-8 text ({err.reason} at byte {err.start})"
            ) from None
        corrections = cls(text, names, source=str(path))
        corrections.check(str(path))
        return corrections

    def check(self, source: str = "<text>") -> None:
        """Build the correctionlib evaluator now; a payload it refuses is :class:`BadCorrections`."""
        try:
            _ = self.cset
        except (RuntimeError, ValueError, TypeError, KeyError) as err:
            # correctionlib's C++ parser reports a payload it cannot use as one of these (e.g.
            # RuntimeError "Evaluator is designed for schema v2"); the text was parsed as JSON
            raise BadCorrections(source, f"not a usable correctionlib payload ({err})") from None

    def __getstate__(self) -> dict:
        return {"text": self.text, "names": self.names}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["text"], state["names"])  # type: ignore[misc]

    @property
    def cset(self) -> correctionlib.CorrectionSet:
        if self._cset is None:
            self._cset = correctionlib.CorrectionSet.from_string(self.text)
        return self._cset

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def evaluate(self, name: str, *inputs: Any) -> np.ndarray:
        """``name(*inputs)`` vectorised; numeric inputs as float64 arrays, strings as scalars."""
        args = [np.asarray(x, dtype=np.float64) if not isinstance(x, str) else x for x in inputs]
        return np.asarray(self.cset[name].evaluate(*args), dtype=np.float64)

    def keys(self, name: str, input_name: str = "variation") -> list[str]:
        """Keys of the first category node on ``input_name`` (the variation names)."""
        for node in _nodes(self._by_name[name]["data"]):
            if node.get("nodetype") == "category" and node.get("input") == input_name:
                return [str(item["key"]) for item in node["content"]]
        return []

    def edges(self, name: str, input_name: str = "eta") -> np.ndarray:
        """Bin edges in ``input_name`` of the first (multi)binning of correction ``name``."""
        for node in _nodes(self._by_name[name]["data"]):
            if node.get("nodetype") == "binning" and node.get("input") == input_name:
                return _edges(node["edges"])
            if node.get("nodetype") == "multibinning" and input_name in node["inputs"]:
                return _edges(node["edges"][node["inputs"].index(input_name)])
        raise KeyError(f"correction {name!r} has no binning in {input_name!r}")


def _parse(text: str, source: str) -> dict:
    """The JSON of a correctionlib payload, checked as far as this module relies on it."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadCorrections(source, f"not valid JSON ({err})") from None
    except RecursionError:
        raise BadCorrections(source, "not valid JSON (nested too deeply)") from None
    if not isinstance(doc, dict):
        raise BadCorrections(source, f"top level is a {type(doc).__name__}, not an object")
    items = doc.get("corrections")
    if not isinstance(items, list):
        raise BadCorrections(source, "no list of 'corrections'")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadCorrections(source, f"corrections[{i}] has no name")
    return doc


def _edges(edges: Any) -> np.ndarray:
    if isinstance(edges, dict):  # uniform binning
        return np.linspace(edges["low"], edges["high"], int(edges["n"]) + 1)
    return np.asarray([float(e) for e in edges])
