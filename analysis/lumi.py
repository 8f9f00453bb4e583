"""Integrated luminosity of the data actually processed: golden JSON and brilcalc-style CSV.

- :func:`read_lumi_csv` reads ``brilcalc lumi --byls --output-style csv`` output: comment lines
  start with ``#``, columns ``run:fill,ls,time,beamstatus,E(GeV),delivered(UNIT),
  recorded(UNIT),avgpu,source`` with ``ls`` as ``"N:N"``; the unit (``/ub``, ``/nb``, ``/pb``,
  ``/fb``) is read from the header and everything is converted to pb^-1.
- :func:`golden_mask` is coffea's :class:`coffea.lumi_tools.LumiMask` of a golden JSON
  (``{"run": [[first_ls, last_ls], ...]}``), the same mask the processors apply to data events.
- :func:`integrated_lumi` sums the *recorded* luminosity of the lumisections that were read and
  are in the golden JSON. When lumisections were read but none has luminosity (wrong year's
  CSV, or none certified) the result is 0 with a :class:`LumiWarning` saying why.

>>> lumi = integrated_lumi({(297050, 12), (297050, 13)}, "lumi.csv", "golden.json")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from processors.errors import ConfigError

__all__ = [
    "LumiTable",
    "LumiWarning",
    "golden_mask",
    "in_golden",
    "integrated_lumi",
    "read_lumi_csv",
]

#: inverse-luminosity unit -> factor to pb^-1
UNITS_TO_PB = {"/ub": 1e-6, "/nb": 1e-3, "/pb": 1.0, "/fb": 1e3}


class LumiWarning(UserWarning):
    """Processed data lumisections without (certified) luminosity."""


@dataclass(frozen=True)
class LumiTable:
    """Per-lumisection recorded luminosity: parallel arrays ``run``, ``ls``, ``recorded_pb``."""

    run: np.ndarray
    ls: np.ndarray
    recorded_pb: np.ndarray
    source: str = ""

    def lookup(self) -> dict[tuple[int, int], float]:
        return {
            (int(r), int(ls)): float(v)
            for r, ls, v in zip(self.run, self.ls, self.recorded_pb, strict=True)
        }


def _unit(header: str, path: str) -> float:
    match = re.search(r"recorded\((/[a-z]+)\)", header)
    if match is None:
        raise ConfigError("recorded", "no 'recorded(UNIT)' column in the header", source=path)
    unit = match.group(1)
    if unit not in UNITS_TO_PB:
        raise ConfigError("recorded", f"unknown unit {unit!r}; known {sorted(UNITS_TO_PB)}", path)
    return UNITS_TO_PB[unit]


@lru_cache(maxsize=16)
def _read_lumi_csv(path: str, mtime: float) -> LumiTable:
    factor, columns = None, None
    runs, lss, recs = [], [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                if factor is None and "recorded(" in line:
                    factor = _unit(line, path)
                    columns = [c.split("(")[0] for c in line.lstrip("#").split(",")]
                continue
            if factor is None:
                raise ConfigError("header", "data before the '#run:fill,ls,...' header", path)
            fields = line.split(",")
            try:
                run = int(fields[columns.index("run:fill")].split(":")[0])
                ls = int(fields[columns.index("ls")].split(":")[0])
                rec = float(fields[columns.index("recorded")])
            except (ValueError, IndexError) as err:
                raise ConfigError(f"line {lineno}", f"cannot parse {line!r}: {err}", path) from err
            runs.append(run)
            lss.append(ls)
            recs.append(rec * factor)
    if factor is None:
        raise ConfigError("header", "no '#run:fill,ls,...,recorded(UNIT),...' header", path)
    return LumiTable(
        np.asarray(runs, dtype=np.int64),
        np.asarray(lss, dtype=np.int64),
        np.asarray(recs, dtype=np.float64),
        source=path,
    )


def read_lumi_csv(path: str | os.PathLike) -> LumiTable:
    """Read a brilcalc ``--byls`` CSV (see the module docstring); values in pb^-1."""
    path = str(path)
    if not Path(path).is_file():
        raise ConfigError("lumi_csv", f"no such file {path}", source=path)
    return _read_lumi_csv(path, os.path.getmtime(path))


def golden_mask(path: str | os.PathLike):
    """coffea's ``LumiMask`` of a golden JSON; ``mask(runs, lumis) -> bool array``."""
    from coffea.lumi_tools import LumiMask

    path = str(path)
    if not Path(path).is_file():
        raise ConfigError("golden_json", f"no such file {path}", source=path)
    try:
        with open(path) as f:
            doc = json.load(f)
        if not isinstance(doc, dict):
            raise ValueError("top level must be {run: [[first, last], ...]}")
        return LumiMask(path)
    except (ValueError, TypeError) as err:
        raise ConfigError("golden_json", f"not a golden JSON: {err}", source=path) from err


def in_golden(
    lumisections: Iterable[tuple[int, int]], golden: str | os.PathLike | None
) -> set[tuple[int, int]]:
    """The ``(run, ls)`` pairs certified by ``golden`` (all of them when ``golden`` is None)."""
    pairs = sorted({(int(r), int(ls)) for r, ls in lumisections})
    if golden is None or not pairs:
        return set(pairs)
    arr = np.asarray(pairs, dtype=np.uint32).reshape(-1, 2)
    keep = np.asarray(golden_mask(golden)(arr[:, 0], arr[:, 1]), dtype=bool)
    return {p for p, k in zip(pairs, keep, strict=True) if k}


def integrated_lumi(
    lumisections: Iterable[tuple[int, int]],
    csv: str | os.PathLike,
    golden: str | os.PathLike | None = None,
) -> float:
    """Recorded luminosity in pb^-1 of the distinct ``(run, ls)`` read that are in ``golden``.

    Zero (with a :class:`LumiWarning`, not an error) when lumisections were read but none of
    them is both certified and in the CSV.
    """
    read = {(int(r), int(ls)) for r, ls in lumisections}
    certified = in_golden(read, golden)
    table = read_lumi_csv(csv).lookup()
    total = float(sum(table.get(p, 0.0) for p in sorted(certified)))
    if read and total == 0.0:
        runs = sorted({r for r, _ in read})
        shown = ", ".join(map(str, runs[:5])) + (" ..." if len(runs) > 5 else "")
        if not certified:
            why = f"none is in the golden JSON {golden}"
        else:
            why = f"none of the certified ones is in the lumi CSV {csv}"
        warnings.warn(
            f"integrated luminosity is 0: {len(read)} lumisections read (runs {shown}) but {why}",
            LumiWarning,
            stacklevel=2,
        )
    return total
