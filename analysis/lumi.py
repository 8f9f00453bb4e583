"""Integrated luminosity of the data actually processed: golden JSON and brilcalc-style CSV.

- :func:`read_lumi_csv` reads ``brilcalc lumi --byls --output-style csv`` output: comment lines
  start with ``#``, columns ``run:fill,ls,time,beamstatus,E(GeV),delivered(UNIT),
  recorded(UNIT),avgpu,source`` with ``ls`` as ``"N:N"``; the unit (``/ub``, ``/nb``, ``/pb``,
  ``/fb``) is read from the header and everything is converted to pb^-1.
- :func:`golden_mask` is the :class:`processors.golden.GoldenJSON` mask of a golden JSON
  (``{"run": [[first_ls, last_ls], ...]}``), the same mask the processors apply to data events.
- :func:`integrated_lumi` sums the *recorded* luminosity of the lumisections that were read and
  are in the golden JSON. When lumisections were read but none has luminosity (wrong year's
  CSV, or none certified) the result is 0 with a :class:`LumiWarning` saying why.
- :func:`read_lumi_blocks` reads the ``LuminosityBlocks`` tree of a NanoAOD file (``run``,
  ``luminosityBlock``: one entry per lumisection the file covers, events or not), and
  :func:`processed_lumisections` takes the union over the files processed; files without the
  tree (older or hand-made files) fall back to the lumisections of the events read, which
  misses the lumisections in which no event was written.

>>> lumi = integrated_lumi({(297050, 12), (297050, 13)}, "lumi.csv", "golden.json")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from processors.errors import BadInputFile, ConfigError, MissingBranch
from processors.golden import GoldenJSON

__all__ = [
    "LUMI_TREE",
    "LumiTable",
    "LumiWarning",
    "golden_mask",
    "in_golden",
    "integrated_lumi",
    "processed_lumisections",
    "read_lumi_blocks",
    "read_lumi_csv",
]

log = logging.getLogger(__name__)

#: the NanoAOD tree with one entry per lumisection of a file, and its two branches
LUMI_TREE = "LuminosityBlocks"
LUMI_BRANCHES = ("run", "luminosityBlock")

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
    factor: float | None = None
    columns: list[str] = []  # read with the header, before any data
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


def golden_mask(path: str | os.PathLike) -> GoldenJSON:
    """The mask of a golden JSON (:class:`processors.golden.GoldenJSON`, the one the
    processors apply); ``mask(runs, lumis) -> bool array``."""
    path = str(path)
    if not Path(path).is_file():
        raise ConfigError("golden_json", f"no such file {path}", source=path)
    try:
        return GoldenJSON(path)
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


def read_lumi_blocks(path: str | os.PathLike) -> set[tuple[int, int]] | None:
    """The ``(run, luminosityBlock)`` pairs of the ``LuminosityBlocks`` tree of ``path``, or
    ``None`` when the file has no such tree. Only the two branches are read.

    A file that cannot be opened or whose tree is not a TTree of unsigned integers raises
    :class:`BadInputFile`; a tree without ``run`` or ``luminosityBlock`` raises
    :class:`MissingBranch`; both name the file.
    """
    import uproot

    path = str(path)
    try:
        file = uproot.open(path)
    except Exception as err:  # uproot raises many types for a broken file
        raise BadInputFile(path, f"not a readable ROOT file ({_why(err)})") from err
    with file:
        try:
            if LUMI_TREE not in file:
                return None
            tree = file[LUMI_TREE]
        except Exception as err:
            raise BadInputFile(path, f"cannot read the {LUMI_TREE!r} tree ({_why(err)})") from err
        if not hasattr(tree, "num_entries") or not hasattr(tree, "arrays"):
            raise BadInputFile(path, f"{LUMI_TREE!r} is a {type(tree).__name__}, not a TTree")
        for branch in LUMI_BRANCHES:
            if branch not in tree:
                hint = f"the {LUMI_TREE} tree has {sorted(tree.keys())}"
                raise MissingBranch(f"{LUMI_TREE}/{branch}", path, hint)
        typenames = {branch: tree[branch].typename for branch in LUMI_BRANCHES}
        try:
            arrays = tree.arrays(list(LUMI_BRANCHES), library="np")
        except Exception as err:
            raise BadInputFile(path, f"cannot read the {LUMI_TREE!r} tree ({_why(err)})") from err
    columns = []
    for branch in LUMI_BRANCHES:
        values = arrays[branch]
        if values.ndim != 1 or values.dtype.kind not in "ui":
            raise BadInputFile(
                path,
                f"{LUMI_TREE}/{branch} must hold one unsigned integer per entry, got "
                f"{typenames[branch]}",
            )
        if len(values) and (values.min() < 0 or values.max() > 0xFFFFFFFF):
            raise BadInputFile(path, f"{LUMI_TREE}/{branch} has values outside 0..2^32-1")
        columns.append(values.astype(np.uint64))
    pairs = np.unique((columns[0] << np.uint64(32)) | columns[1])
    return {(int(p >> 32), int(p & 0xFFFFFFFF)) for p in pairs}


def processed_lumisections(
    files: Iterable[str],
    from_events: Iterable[tuple[int, int]] = (),
    *,
    dataset: str = "data",
) -> tuple[set[tuple[int, int]], str]:
    """The lumisections of the processed ``files`` and where they come from.

    The union of the files' ``LuminosityBlocks`` trees (:func:`read_lumi_blocks`, each file
    read once): every lumisection a file covers counts, with or without events, and a
    lumisection split over several files counts once. ``from_events`` are the lumisections of
    the events read (the processors' ``lumisections``); when a file has no tree they are added
    (the fallback: lumisections without events are then missed), and lumisections of events
    that no tree lists are added with a :class:`LumiWarning`. The second value is
    ``"LuminosityBlocks"``, ``"events"`` or ``"LuminosityBlocks+events"``.
    """
    files = list(files)
    events = {(int(r), int(ls)) for r, ls in from_events}
    listed: set[tuple[int, int]] = set()
    without: list[str] = []
    for path in files:
        blocks = read_lumi_blocks(path)
        if blocks is None:
            without.append(path)
        else:
            listed |= blocks
    if not without:
        extra = events - listed
        if extra:
            warnings.warn(
                f"{dataset}: {len(extra)} lumisections of the events read (e.g. "
                f"{min(extra)}) are in no {LUMI_TREE} tree of the files processed; counted too",
                LumiWarning,
                stacklevel=2,
            )
        log.info(
            "%s: luminosity over the %d lumisections listed in the %s trees of %d files",
            dataset,
            len(listed),
            LUMI_TREE,
            len(files),
        )
        return listed | events, LUMI_TREE
    source = "events" if len(without) == len(files) else f"{LUMI_TREE}+events"
    log.warning(
        "%s: %d of %d files processed have no %s tree (e.g. %s): their lumisections are taken "
        "from the events read, which misses lumisections without events",
        dataset,
        len(without),
        len(files),
        LUMI_TREE,
        without[0],
    )
    return listed | events, source


def _why(err: BaseException) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())}"
