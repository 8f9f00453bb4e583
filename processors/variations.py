"""Weight variations as tensors: theory weights, pileup, efficiency eigen-variations per eta
bin, prefiring per eta bin, and the muon momentum scale as a shape variation.

Each builder returns ratios to the nominal weight; the fill kernel multiplies them by the
nominal in float64, so every variation histogram is the varied prediction itself. Theory
ratios (``LHEPdfWeight``, ``LHEScaleWeight``, ``MEParamWeight``) are the raw NanoAOD buffers
viewed as ``[n_events, n]`` without a copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import hist
import numpy as np

from corrections import BinnedTable, Corrections
from processors.columns import Columns

__all__ = [
    "MASS_SHIFTS_MEV",
    "QCD_SCALE_LABELS",
    "THEORY",
    "BlockRatios",
    "EfficiencyModel",
    "ScaleShifts",
    "TheoryWeight",
    "block_of",
    "momentum_scale_shifts",
    "pileup_weights",
    "prefiring_weights",
    "theory_ratios",
    "variation_axis",
]

log = logging.getLogger(__name__)

MASS_SHIFTS_MEV = tuple(range(-100, 101, 10))
# LHEScaleWeight order in NanoAOD: muR x muF in {0.5, 1, 2} x {0.5, 1, 2}
QCD_SCALE_LABELS = tuple(f"muR{r}_muF{f}" for r in ("0p5", "1", "2") for f in ("0p5", "1", "2"))


@dataclass(frozen=True)
class TheoryWeight:
    """A per-event theory weight vector branch and the labels of its entries."""

    name: str
    branch: str
    labels: tuple[str, ...]


THEORY = (
    TheoryWeight("pdf", "LHEPdfWeight", tuple(f"pdf{i}" for i in range(103))),
    TheoryWeight("qcdScale", "LHEScaleWeight", QCD_SCALE_LABELS),
    TheoryWeight("massWeight", "MEParamWeight", tuple(f"massShift{m}MeV" for m in MASS_SHIFTS_MEV)),
)


def variation_axis(name: str, labels: tuple[str, ...] | list[str]) -> hist.axis.StrCategory:
    """The variation axis (last axis of a variation histogram): labels, no overflow."""
    return hist.axis.StrCategory(list(labels), name=name, label=name, overflow=False)


def theory_ratios(cols: Columns, weight: TheoryWeight) -> np.ndarray | None:
    """``[n_events, n]`` view of a theory-weight branch, or ``None`` (logged) when it is absent
    or has another length than ``weight.labels``."""
    if cols.n == 0:
        return None
    if not cols.has(weight.branch):
        _warn_once(cols.filename, weight.branch, "absent", weight.name)
        return None
    tensor = cols.tensor(weight.branch)
    n = len(weight.labels)
    if tensor is None or tensor.shape[1] != n:
        found = "a varying number of" if tensor is None else tensor.shape[1]
        _warn_once(cols.filename, weight.branch, f"has {found} entries, expected {n}", weight.name)
        return None
    return tensor


_warned: set[tuple[str | None, str]] = set()


def _warn_once(filename: str | None, branch: str, what: str, name: str) -> None:
    if (filename, branch) not in _warned:
        _warned.add((filename, branch))
        log.warning("%s: %s %s; %s variations skipped", filename, branch, what, name)


def block_of(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Bin of ``values`` in ``edges`` (-1 outside): the block of a per-bin variation."""
    idx = np.searchsorted(edges, values, side="right") - 1
    idx[(idx < 0) | (idx >= len(edges) - 1)] = -1
    return idx.astype(np.int64)


def pileup_weights(corr: Corrections, n_true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nominal pileup weight per event and ``[n, 2]`` up/down ratios to it."""
    name = corr.names.pileup
    table = corr.table(name, ("nominal", "up", "down"))
    if table is not None:  # the same arithmetic once per bin, then a lookup per event
        bins = table.bins(n_true)
        nominal = table.row("nominal")
        per_bin = np.stack([_ratio(table.row(key), nominal) for key in ("up", "down")], axis=1)
        return nominal[bins], per_bin[bins]
    nominal = corr.evaluate(name, n_true, "nominal")
    ratio = np.stack([_ratio(corr.evaluate(name, n_true, key), nominal) for key in ("up", "down")])
    return nominal, ratio.T.copy()


def _same_edges(a: BinnedTable | None, b: BinnedTable) -> bool:
    if a is None or len(a.edges) != len(b.edges):
        return False
    return all(np.array_equal(x, y) for x, y in zip(a.edges, b.edges, strict=True))


def _ratio(varied: np.ndarray, nominal: np.ndarray) -> np.ndarray:
    """``varied / nominal``, 1 where the nominal is 0."""
    return np.divide(varied, nominal, out=np.ones_like(varied), where=nominal != 0)


@dataclass
class BlockRatios:
    """Per-object ratios for variations organised in blocks (one block per eta bin)."""

    group: np.ndarray  # [n_objects] block of each object, -1: none
    ratio: np.ndarray  # [n_objects, n_local]
    labels: list[str]  # n_blocks * n_local labels, block-major


class EfficiencyModel:
    """Muon ID+IP and trigger scale factors and their eigen-variations from a payload."""

    def __init__(self, corr: Corrections) -> None:
        self.corr = corr
        names = corr.names
        self.kinds = {"idip": names.idip, "trigger": names.trigger}
        self.eig = {
            kind: sorted({k[: -len("_up")] for k in corr.keys(name) if k.endswith("_up")})
            for kind, name in self.kinds.items()
        }
        self.edges = corr.edges(names.idip, "eta")
        self.local = [
            (kind, eig, direction)
            for kind in self.kinds
            for eig in self.eig[kind]
            for direction in ("up", "down")
        ]
        self.varied = {
            kind: [f"{e}_{d}" for e in self.eig[kind] for d in ("up", "down")]
            for kind in self.kinds
        }
        self.tables = {
            kind: corr.table(name, ("nominal", *self.varied[kind]))
            for kind, name in self.kinds.items()
        }
        #: per kind, ``[variation, bin]`` ratios to the nominal (1 where the nominal is 0)
        self.ratios = {
            kind: np.stack([_ratio(t.row(key), t.row("nominal")) for key in self.varied[kind]])
            for kind, t in self.tables.items()
            if t is not None and self.varied[kind]
        }

    def labels(self) -> list[str]:
        """``effStat_eta{b}_{kind}_{eig}{Up|Down}``; a measured payload's tag-and-probe
        systematic (its ``syst`` variation) is ``effSyst_...``, its own nuisance group."""
        return [
            f"{'effSyst' if eig.startswith('syst') else 'effStat'}_eta{b}_{kind}_{eig}"
            f"{d.capitalize()}"
            for b in range(len(self.edges) - 1)
            for kind, eig, d in self.local
        ]

    def weights(
        self, eta: np.ndarray, pt: np.ndarray, trigger_leg: np.ndarray, variations: bool
    ) -> tuple[np.ndarray, BlockRatios | None]:
        """Per-event product of SFs over the ``[n, k]`` muons (trigger SF on the trigger legs)
        and, with ``variations``, the per-muon eigen-variation ratios."""
        n, k = eta.shape
        e, p, leg = eta.ravel(), pt.ravel(), trigger_leg.ravel()
        bins: dict[str, np.ndarray] = {}
        for kind, table in self.tables.items():
            if table is None:
                continue
            same = [b for other, b in bins.items() if _same_edges(self.tables[other], table)]
            bins[kind] = same[0] if same else table.bins(e, p)
        nominal = {kind: self._evaluate(kind, "nominal", e, p, bins) for kind in self.kinds}
        nominal["trigger"] = np.where(leg, nominal["trigger"], 1.0)
        sf = (nominal["idip"] * nominal["trigger"]).reshape(n, k).prod(axis=1)
        if not variations:
            return sf, None
        ratio = np.ones((n * k, len(self.local)))
        start = 0
        for kind in self.kinds:
            cols = slice(start, start + len(self.varied[kind]))
            start = cols.stop
            if kind in self.ratios:
                ratio[:, cols] = self.ratios[kind][:, bins[kind]].T
            else:
                for j, key in enumerate(self.varied[kind], start=cols.start):
                    ratio[:, j] = _ratio(self._evaluate(kind, key, e, p, bins), nominal[kind])
            if kind == "trigger":
                ratio[~leg, cols] = 1.0
        return sf, BlockRatios(block_of(self.edges, e), ratio, self.labels())

    def _evaluate(
        self, kind: str, key: str, eta: np.ndarray, pt: np.ndarray, bins: dict[str, np.ndarray]
    ) -> np.ndarray:
        table = self.tables[kind]
        if table is None:
            return self.corr.evaluate(self.kinds[kind], eta, pt, key)
        return table.row(key)[bins[kind]]


def prefiring_weights(
    corr: Corrections, eta: np.ndarray, offsets: np.ndarray, variations: bool
) -> tuple[np.ndarray, BlockRatios | None]:
    """Per-event ``prod(1 - p(eta))`` over all muons and per-muon up/down ratios per eta bin."""
    name = corr.names.prefiring
    keys = ("nominal", "up", "down") if variations else ("nominal",)
    table = corr.table(name, keys)
    if table is not None:  # the same arithmetic once per bin, then a lookup per muon
        bins = table.bins(eta)
        keep_per_bin = 1.0 - table.row("nominal")
        keep = keep_per_bin[bins]
    else:
        keep = 1.0 - corr.evaluate(name, eta, "nominal")
    n = len(offsets) - 1
    event = np.repeat(np.arange(n), np.diff(offsets))
    weight = np.ones(n)
    np.multiply.at(weight, event, keep)
    if not variations:
        return weight, None
    edges = corr.edges(name, "eta")
    if table is not None:
        per_bin = [_ratio(1.0 - table.row(key), keep_per_bin) for key in ("up", "down")]
        ratio = np.stack(per_bin, axis=1)[bins]
    else:
        varied = [_ratio(1.0 - corr.evaluate(name, eta, key), keep) for key in ("up", "down")]
        ratio = np.stack(varied, axis=1)
    labels = [f"prefiringStat_eta{b}{d}" for b in range(len(edges) - 1) for d in ("Up", "Down")]
    return weight, BlockRatios(block_of(edges, eta), ratio, labels)


@dataclass
class ScaleShifts:
    """Momentum-scale shape variation: per muon its eta region and relative uncertainty."""

    group: np.ndarray  # [n, k]
    uncertainty: np.ndarray  # [n, k]
    labels: list[str]


def momentum_scale_shifts(corr: Corrections, eta: np.ndarray) -> ScaleShifts:
    """Regions and uncertainties of the selected ``[n, k]`` muons."""
    name = corr.names.scale_uncertainty
    edges = corr.edges(name, "eta")
    unc = corr.evaluate(name, eta.ravel()).reshape(eta.shape)
    group = block_of(edges, eta.ravel()).reshape(eta.shape)
    labels = [f"muonScale_eta{b}{d}" for b in range(len(edges) - 1) for d in ("Up", "Down")]
    return ScaleShifts(group, unc, labels)
