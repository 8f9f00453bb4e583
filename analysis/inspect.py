"""Show what an output file holds and how it was made (``wmass inspect FILE [--json]``).

:func:`describe` is the one entry point for any wmass output: it reads the root attribute
``kind`` once and hands the open file to the description of that kind (:data:`DESCRIBERS`):
:func:`analysis.io.describe` for ``histograms``, :func:`fit.result.describe` for ``fitinput``
and ``fitresult`` (``fit`` stands alone, so it describes its own files). ``--json`` prints the description (the contract in
``analysis/schemas/inspect-*.schema.json``, see :mod:`analysis.schemas`); without it, rich
tables. A file that is not a wmass HDF5 output, or a malformed one, raises
:class:`~processors.errors.BadInputFile` naming it.

>>> import tempfile, hist
>>> from pathlib import Path
>>> from analysis.io import DatasetHistograms, write_histograms
>>> h = hist.Hist.new.Reg(4, 0, 4, name="x").Weight()
>>> _ = h.fill(x=[0.5, 1.5], weight=[2.0, 3.0])
>>> ds = DatasetHistograms("wmunu", process="Wmunu", sumw=5.0, histograms={"nominal": h})
>>> path = write_histograms(Path(tempfile.mkdtemp()) / "hists.h5", [ds], meta={})
>>> desc = describe(path)
>>> desc["kind"], desc["datasets"]["wmunu"]["sumw"], desc["datasets"]["wmunu"]["histograms"]
('histograms', 5.0, {'nominal': {'axes': ['x'], 'shape': [6], 'sum': 5.0}})
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Callable
from typing import Any

import h5py

from analysis import io
from fit import result as fit_result
from processors.errors import BadInputFile

__all__ = ["DESCRIBERS", "add_arguments", "describe", "describe_file", "main", "render"]

#: kind -> the description of an open file of that kind
DESCRIBERS: dict[str, Callable[[h5py.File], dict[str, Any]]] = {
    "histograms": io.describe,
    "fitinput": fit_result.describe,
    "fitresult": fit_result.describe,
}


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON-able description of any wmass output file, by its ``kind`` (``wmass inspect``).

    Raises :class:`~processors.errors.BadInputFile` naming ``path`` when it is missing, a
    directory, not HDF5, of no or an unknown kind, or lacks what its kind must hold.
    """
    kind = io.file_kind(path)
    describer = DESCRIBERS.get(kind)
    if describer is None:
        known = ", ".join(DESCRIBERS)
        raise BadInputFile(str(path), f"unknown kind {kind!r} ({known})")
    try:
        with h5py.File(path, "r") as f:
            return describer(f)
    except KeyError as err:
        raise BadInputFile(str(path), f"malformed {kind} file, missing {err}") from None
    except (OSError, ValueError, TypeError, IndexError) as err:
        raise BadInputFile(str(path), f"malformed {kind} file: {err}") from None


#: the name this function had before :func:`describe` became the one entry point
describe_file = describe


def _meta_table(meta: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title="provenance", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key in ("command", "time", "git_hash", "inputs", "args"):
        if key in meta:
            value = meta[key]
            if key == "inputs" and isinstance(value, list) and len(value) > 6:
                value = [*value[:6], f"... {len(value) - 6} more"]
            table.add_row(key, value if isinstance(value, str) else json.dumps(value))
    if meta.get("git_diff"):
        table.add_row("git_diff", f"{len(meta['git_diff'].splitlines())} lines (uncommitted)")
    return table


def _number(x: Any, fmt: str = ".4g") -> str:
    return format(x, fmt) if isinstance(x, int | float) and not isinstance(x, bool) else str(x)


def _human(key: str, value: Any) -> str:
    """A value of a description as a person reads it: POIs rounded to their error, the
    goodness of fit as chi2/ndf and p, impacts to 0.1 of the unit, other numbers to 4 digits
    (``--json`` keeps every digit)."""
    from fit.result import rounded

    if isinstance(value, str):
        return value
    if key == "pois" and isinstance(value, dict):
        parts = []
        for name, d in value.items():
            v, e = rounded(float(d.get("value", math.nan)), float(d.get("error", math.nan)))
            parts.append(f"{name} = {v} ± {e} {d.get('unit', '')}".rstrip())
        return "\n".join(parts)
    if key == "gof" and isinstance(value, dict) and {"chi2", "ndf"} <= set(value):
        p = value.get("p_value")
        return f"chi2/ndf = {value['chi2']:.1f}/{value['ndf']}, p = {_number(p, '.3g')}"
    if key == "global_impacts" and isinstance(value, dict):
        lines = []
        for poi, groups in value.items():
            ranked = sorted(groups.items(), key=lambda kv: -abs(kv[1]))
            lines.append(f"{poi}: " + ", ".join(f"{g} {v:.1f}" for g, v in ranked))
        return "\n".join(lines)
    if key in ("nll",) and isinstance(value, float):
        return f"{value:.2f}"
    if key.endswith("_s") and isinstance(value, float):
        return f"{value:.1f}"
    if isinstance(value, float):
        return _number(value)
    return json.dumps(value)


def render(desc: dict[str, Any]) -> list[Any]:
    """Rich renderables of a description (histograms files in detail, others as key/values)."""
    from rich.table import Table

    out: list[Any] = []
    if desc.get("kind") == "histograms":
        title = f"histograms ({desc.get('analysis') or '?'}), lumi {desc.get('lumi_pb')} pb-1"
        table = Table(title=title)
        for col in ("dataset", "data", "xsec [pb]", "read", "selected", "sumw", "lumi", "files"):
            table.add_column(col, justify="left" if col == "dataset" else "right")
        for name, d in desc["datasets"].items():
            failed = len(d["files_failed"])
            table.add_row(
                name,
                "yes" if d["is_data"] else "",
                "-" if d.get("xsec_pb") is None else f"{d['xsec_pb']:.6g}",
                f"{d['events_read']:,}",
                f"{d['events_selected']:,}",
                f"{d['sumw']:.6g}",
                "-" if d.get("lumi_pb") is None else f"{d['lumi_pb']:.6g}",
                f"{len(d['files_processed'])}" + (f" ({failed} failed)" if failed else ""),
            )
        out.append(table)
        hists = Table(title="histograms")
        for col in ("dataset", "name", "axes", "shape", "sum"):
            hists.add_column(col)
        for name, d in desc["datasets"].items():
            for h, s in d["histograms"].items():
                shape = "x".join(map(str, s["shape"]))
                hists.add_row(name, h, ", ".join(s["axes"]), shape, f"{s['sum']:.6g}")
        out.append(hists)
    else:
        table = Table(title=str(desc.get("kind")), show_header=False)
        table.add_column("key", style="bold")
        table.add_column("value", overflow="fold")
        for key, value in desc.items():
            if key != "meta":
                table.add_row(key, _human(key, value))
        out.append(table)
    out.append(_meta_table(desc.get("meta", {})))
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a wmass output: hists.h5, fitinput.h5, fitresult.h5")
    parser.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")


def main(args: argparse.Namespace) -> int:
    from analysis.course.outputs import blind_description

    # the output of a blinded course sample shows m_W blinded (analysis.course.outputs)
    desc = blind_description(describe(args.file), args.file)
    if args.json:
        print(json.dumps(desc, indent=2, sort_keys=False, default=str))
        return 0
    from rich.console import Console

    console = Console()
    for item in render(desc):
        console.print(item)
    return 0
