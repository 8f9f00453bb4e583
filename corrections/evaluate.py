"""Evaluate any correctionlib JSON (ours, or a real CMS payload with the same names)."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import correctionlib
import numpy as np

from corrections.errors import BadCorrections
from corrections.names import CorrectionNames

__all__ = ["BinnedTable", "Corrections"]


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


@dataclass(frozen=True)
class BinnedTable:
    """A correction that is a category of (multi)binnings with constant bins and clamped flow,
    evaluated once at every bin centre: ``values[key, flat bin]`` for the category's ``keys``,
    the bins flat in the order of ``edges`` (first input slowest). A lookup returns the very
    numbers correctionlib returns, several times faster per object (no per-call dispatch, no
    string input broadcast); :meth:`Corrections.table` makes them.

    >>> t = BinnedTable(("nominal", "up"), np.array([[1.0, 2.0], [3.0, 4.0]]),
    ...                 (np.array([0.0, 1.0, 2.0]),))
    >>> t.row("up")[t.bins(np.array([-5.0, 0.5, 1.0, 9.0]))]  # clamped below and above
    array([3., 3., 4., 4.])
    """

    keys: tuple[str, ...]
    values: np.ndarray
    edges: tuple[np.ndarray, ...]

    def bins(self, *x: np.ndarray) -> np.ndarray:
        """The flat bin of each entry of the inputs ``x`` (one array per edge set), clamped
        into range like correctionlib's ``flow="clamp"`` (``edges[i] <= x < edges[i+1]``)."""
        flat: Any = 0
        for edges, values in zip(self.edges, x, strict=True):
            n = len(edges) - 1
            i = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, n - 1)
            flat = flat * n + i
        return np.asarray(flat)

    def row(self, key: str) -> np.ndarray:
        """The values of ``key`` per flat bin."""
        return self.values[self.keys.index(key)]


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

    def table(self, name: str, keys: Sequence[str]) -> BinnedTable | None:
        """Correction ``name`` for the variation ``keys`` as a :class:`BinnedTable`, built once
        per object (not pickled with it); None where the correction has another structure
        (evaluate it with :meth:`evaluate`): the table needs a category on the correction's
        one string input whose ``keys`` are each a binning or multibinning over all its other
        inputs, with the same non-uniform edges, numeric bin contents and ``flow="clamp"``."""
        cache = self.__dict__.setdefault("_tables", {})
        key = (name, tuple(keys))
        if key not in cache:
            cache[key] = _binned_table(self, name, tuple(keys))
        return cache[key]

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


def _binned_table(corr: Corrections, name: str, keys: tuple[str, ...]) -> BinnedTable | None:
    """:meth:`Corrections.table` (None for any structure it does not cover)."""
    correction = corr._by_name.get(name, {})
    inputs = [(v.get("name"), v.get("type")) for v in correction.get("inputs", [])]
    strings = [n for n, kind in inputs if kind == "string"]
    data = correction.get("data", {})
    if len(strings) != 1 or data.get("nodetype") != "category" or data.get("input") != strings[0]:
        return None
    numeric = [n for n, kind in inputs if kind != "string"]
    by_key = {str(item["key"]): item["value"] for item in data.get("content", [])}
    edges: list[np.ndarray] | None = None
    for key in keys:
        node = by_key.get(key)
        if not isinstance(node, dict) or node.get("flow") != "clamp":
            return None
        if node.get("nodetype") == "binning":
            names, node_edges = [node.get("input")], [node.get("edges")]
        elif node.get("nodetype") == "multibinning":
            names, node_edges = list(node.get("inputs", [])), list(node.get("edges", []))
        else:
            return None
        if names != numeric or any(not isinstance(e, list) for e in node_edges):
            return None
        if not all(isinstance(v, int | float) for v in node.get("content", [None])):
            return None
        these = [np.asarray(e, dtype=np.float64) for e in node_edges]
        if edges is None:
            edges = these
        elif not all(np.array_equal(a, b) for a, b in zip(edges, these, strict=True)):
            return None
    if edges is None:
        return None
    read = [_edges_as_read(e) for e in edges]
    edges = [e for e in read if e is not None]
    if len(edges) != len(read):
        return None
    centres = np.meshgrid(*(0.5 * (e[1:] + e[:-1]) for e in edges), indexing="ij")
    flat = iter([c.ravel() for c in centres])
    per_input = {n: next(flat) for n in numeric}
    values = np.stack(
        [
            corr.evaluate(name, *(key if kind == "string" else per_input[n] for n, kind in inputs))
            for key in keys
        ]
    )
    return BinnedTable(keys, values, tuple(edges))


def _edges_as_read(edges: np.ndarray, ulps: int = 4) -> np.ndarray | None:
    """``edges`` as correctionlib reads them from JSON text: its parser can land one ulp away
    from Python's ``float()`` (e.g. ``-0.20000000000000018``), and a value on the edge then
    falls in the other bin. Found by evaluating a binning whose bins hold their own index at
    the ``ulps`` floats either side of each inner edge; None if an edge is not among them.

    >>> edges = np.linspace(-2.4, 2.4, 49)
    >>> read = _edges_as_read(edges)
    >>> bool(np.all(np.abs(read - edges) <= np.spacing(np.abs(edges)))), int((read != edges).sum()) > 0
    (True, True)
    """
    n = len(edges) - 1
    probe = {
        "schema_version": 2,
        "corrections": [
            {
                "name": "probe",
                "version": 0,
                "inputs": [{"name": "x", "type": "real"}],
                "output": {"name": "bin", "type": "real"},
                "data": {
                    "nodetype": "binning",
                    "input": "x",
                    "edges": [float(e) for e in edges],
                    "content": [float(i) for i in range(n)],
                    "flow": "clamp",
                },
            }
        ],
    }
    index = correctionlib.CorrectionSet.from_string(json.dumps(probe))["probe"]
    steps = [edges[1:-1]]
    for _ in range(ulps):
        steps.insert(0, np.nextafter(steps[0], -np.inf))
        steps.append(np.nextafter(steps[-1], np.inf))
    near = np.stack(steps, axis=1)  # [inner edge, 2 ulps + 1] ascending
    got = np.asarray(index.evaluate(near.ravel())).reshape(near.shape)
    upper = got >= np.arange(1, n)[:, None]  # at or above the edge, as correctionlib reads it
    if not (upper[:, -1].all() and not upper[:, 0].any()):
        return None
    read = edges.copy()
    read[1:-1] = near[np.arange(n - 1), upper.argmax(axis=1)]
    return read


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
