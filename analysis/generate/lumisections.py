"""Lumisections of the generated data: per-LS luminosity (a brilcalc-style CSV), a golden JSON
that leaves a few lumisections out, the split of the lumisections among the data files and the
assignment of data events to lumisections.

The CSV has the columns of ``brilcalc lumi --byls -u /pb`` (as in
``tests/data/nanoaod/lumi_small.csv``)::

    #run:fill,ls,time,beamstatus,E(GeV),delivered(/pb),recorded(/pb),avgpu,source

Data events are spread over *all* lumisections in proportion to their recorded luminosity, the
excluded ones included (the histmaker must mask those with the golden JSON); the luminosity of
the sample, ``lumi_pb`` in datasets.yaml, is the recorded luminosity of the golden LS only.
With several data files, each file owns a block of consecutive lumisections
(:meth:`LumiPlan.split`), holds the events of those only and lists them all, events or not,
in its ``LuminosityBlocks`` tree.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fit.provenance import atomic_write_text

__all__ = ["LumiPlan", "plan_lumisections"]

#: (run, fill, number of lumisections, lumisections left out of the golden JSON)
RUNS = (
    (362616, 8456, 140, (1, 2, 77)),
    (362617, 8456, 90, (45,)),
    (362695, 8479, 170, (1, 120, 121, 122)),
)
LS_SECONDS = 23.31


@dataclass(frozen=True)
class LumiPlan:
    """Per-lumisection arrays of the data sample."""

    run: np.ndarray
    fill: np.ndarray
    ls: np.ndarray
    delivered: np.ndarray  # /pb
    recorded: np.ndarray  # /pb
    avgpu: np.ndarray
    golden: np.ndarray  # bool

    @property
    def lumi_all_pb(self) -> float:
        """Recorded luminosity of every lumisection (the data are generated for this)."""
        return float(self.recorded.sum())

    @property
    def lumi_golden_pb(self) -> float:
        """Recorded luminosity of the golden lumisections (``lumi_pb`` of datasets.yaml)."""
        return float(self.recorded[self.golden].sum())

    def split(self, parts: int) -> list[np.ndarray]:
        """Indices of the lumisections of each of ``parts`` data files: consecutive blocks (in
        run, ls order) of about equal recorded luminosity; every lumisection is in exactly one
        block (a block is empty when there are more files than lumisections)."""
        if parts < 1:
            raise ValueError(f"parts must be >= 1, got {parts}")
        cum = np.cumsum(self.recorded)
        centre = (cum - 0.5 * self.recorded) / cum[-1]
        owner = np.minimum((centre * parts).astype(np.int64), parts - 1)
        return [np.flatnonzero(owner == k) for k in range(parts)]

    def assign(
        self, rng: np.random.Generator, n: int, index: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(run, luminosityBlock)`` of ``n`` data events, in proportion to recorded lumi,
        among the lumisections ``index`` (default: all of them)."""
        recorded = self.recorded if index is None else self.recorded[index]
        if n == 0:
            return self.run[:0], self.ls[:0]
        if len(recorded) == 0:
            raise ValueError(f"{n} events to assign to no lumisection")
        cdf = np.cumsum(recorded)
        i = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(cdf) - 1)
        if index is not None:
            i = index[i]
        return self.run[i], self.ls[i]

    def write_csv(self, path: Path) -> Path:
        """The brilcalc-style per-LS CSV."""
        start = dt.datetime(2022, 11, 20, 8, 0, 0)
        lines = [
            "#Data tag : wmass-generate , Norm tag: None",
            "#run:fill,ls,time,beamstatus,E(GeV),delivered(/pb),recorded(/pb),avgpu,source",
        ]
        for j in range(len(self.run)):
            t = start + dt.timedelta(seconds=LS_SECONDS * j)
            lines.append(
                f"{self.run[j]}:{self.fill[j]},{self.ls[j]}:{self.ls[j]},"
                f"{t:%m/%d/%y %H:%M:%S},STABLE BEAMS,6800,{_decimal(self.delivered[j])},"
                f"{_decimal(self.recorded[j])},{self.avgpu[j]:.1f},HFET"
            )
        atomic_write_text(path, "\n".join(lines) + "\n")
        return path

    def golden_json(self) -> dict[str, list[list[int]]]:
        """``{"run": [[first, last], ...]}`` of the golden lumisections."""
        out: dict[str, list[list[int]]] = {}
        for run in np.unique(self.run):
            sel = self.run == run
            ranges: list[list[int]] = []
            for ls, good in zip(self.ls[sel], self.golden[sel], strict=True):
                if not good:
                    continue
                if ranges and ranges[-1][1] == ls - 1:
                    ranges[-1][1] = int(ls)
                else:
                    ranges.append([int(ls), int(ls)])
            out[str(int(run))] = ranges
        return out

    def write_golden(self, path: Path) -> Path:
        atomic_write_text(path, json.dumps(self.golden_json()) + "\n")
        return path


def _decimal(value: float) -> str:
    """12 significant digits without an exponent: the CSV sums to ``lumi_pb`` to ~1e-11
    relative, however small the sample (a fixed 9 decimals lost 1e-6 below ~0.01 /pb)."""
    return np.format_float_positional(value, precision=12, unique=False, fractional=False)


def plan_lumisections(lumi_golden_pb: float, rng: np.random.Generator) -> LumiPlan:
    """Three runs of lumisections whose golden recorded luminosity is ``lumi_golden_pb``.

    The instantaneous luminosity decays during a fill (and the pileup with it), the recorded
    fraction is ~93-97% of the delivered.
    """
    run, fill, ls, golden, t = [], [], [], [], []
    for r, f, n_ls, bad in RUNS:
        run += [r] * n_ls
        fill += [f] * n_ls
        ls += list(range(1, n_ls + 1))
        golden += [i not in bad for i in range(1, n_ls + 1)]
        t += list(np.arange(n_ls) * LS_SECONDS / 3600.0)
    t = np.array(t)
    inst = np.exp(-t / 12.0) * rng.uniform(0.97, 1.03, len(t))
    efficiency = rng.uniform(0.93, 0.97, len(t))
    golden = np.array(golden)
    recorded = inst * efficiency
    recorded *= lumi_golden_pb / recorded[golden].sum()
    return LumiPlan(
        run=np.array(run, dtype=np.uint32),
        fill=np.array(fill),
        ls=np.array(ls, dtype=np.uint32),
        delivered=recorded / efficiency,
        recorded=recorded,
        avgpu=34.0 * inst,
        golden=golden,
    )
