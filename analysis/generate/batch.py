"""Generated events in memory: a :class:`Batch` of one process through the MC or data
detector (:func:`generate_batch`: particle level, detector, theory and mass weights) and its
NanoAOD branches as ``uproot`` writes them (:func:`to_branches`). Same generator state, same
arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np

from analysis.generate.detector import Jagged, RecoEvents, simulate
from analysis.generate.processes import MASS_SHIFTS_MEV, MW_REF, ProcessSpec
from analysis.generate.truth import DetectorTruth
from analysis.generate.weights import TheoryCoefficients, theory_weights

__all__ = ["N_MASS", "Batch", "generate_batch", "to_branches"]

N_MASS = len(MASS_SHIFTS_MEV)


def _jagged(counts: np.ndarray, content: dict[str, np.ndarray] | np.ndarray) -> ak.Array:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if isinstance(content, dict):
        inner = ak.contents.RecordArray(
            [ak.contents.NumpyArray(v) for v in content.values()], list(content)
        )
    else:
        inner = ak.contents.NumpyArray(content)
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), inner))


def _fixed(values: np.ndarray) -> ak.Array:
    """``[n, m]`` as a NanoAOD vector branch (``var * float32`` with an ``n...`` counter)."""
    n, m = values.shape
    return _jagged(np.full(n, m), np.ascontiguousarray(values).reshape(-1))


@dataclass
class Batch:
    """One batch of generated events: event-level arrays and collections, ready to write."""

    flat: dict[str, np.ndarray]
    collections: dict[str, Jagged]

    def __len__(self) -> int:
        return len(next(iter(self.flat.values())))

    def select(self, keep: np.ndarray) -> Batch:
        flat = {k: v[keep] for k, v in self.flat.items()}
        cols = {}
        for name, jag in self.collections.items():
            event = np.repeat(keep, jag.counts)
            cols[name] = Jagged(jag.counts[keep], {k: v[event] for k, v in jag.fields.items()})
        return Batch(flat, cols)

    @staticmethod
    def concatenate(batches: Sequence[Batch]) -> Batch:
        flat = {k: np.concatenate([b.flat[k] for b in batches]) for k in batches[0].flat}
        cols = {
            name: Jagged(
                np.concatenate([b.collections[name].counts for b in batches]),
                {
                    f: np.concatenate([b.collections[name].fields[f] for b in batches])
                    for f in jag.fields
                },
            )
            for name, jag in batches[0].collections.items()
        }
        return Batch(flat, cols)

    def reorder(self, order: np.ndarray) -> Batch:
        flat = {k: v[order] for k, v in self.flat.items()}
        cols = {}
        for name, jag in self.collections.items():
            offsets = np.zeros(len(jag.counts) + 1, dtype=np.int64)
            np.cumsum(jag.counts, out=offsets[1:])
            counts = jag.counts[order]
            starts = np.repeat(offsets[:-1][order], counts)
            within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            idx = starts + within
            cols[name] = Jagged(counts, {k: v[idx] for k, v in jag.fields.items()})
        return Batch(flat, cols)


def to_branches(batch: Batch) -> dict[str, Any]:
    """The ``{branch: array}`` dict that ``uproot`` writes (collections as records)."""
    out: dict[str, Any] = {}
    for k in ("run", "luminosityBlock", "event"):
        out[k] = batch.flat[k]
    for name, jag in batch.collections.items():
        out[name] = _jagged(jag.counts, jag.fields)
    for k, v in batch.flat.items():
        if k in out:
            continue
        out[k] = _fixed(v) if v.ndim == 2 else v
    return out


def generate_batch(
    spec: ProcessSpec,
    n: int,
    rng: np.random.Generator,
    truth: DetectorTruth,
    coefficients: TheoryCoefficients,
    *,
    is_data: bool,
    mw: float = MW_REF,
) -> Batch:
    """``n`` events of ``spec`` through the MC or data detector (data: before prefiring, with
    ``keep`` applied; no run/event ids yet)."""
    gen = spec.generate(rng, n, mw=mw)
    reco: RecoEvents = simulate(gen, truth, rng, is_data=is_data)
    flat = dict(reco.flat)
    if not is_data:
        sign = np.where(rng.random(n) < spec.negative_fraction, -1.0, 1.0)
        flat["genWeight"] = (sign * spec.weight).astype(np.float32)
        pdf, scale = theory_weights(gen, coefficients)
        flat["LHEPdfWeight"] = pdf
        flat["LHEScaleWeight"] = scale
        mass = gen.mass_weights if gen.mass_weights is not None else np.ones((n, N_MASS))
        flat["MEParamWeight"] = mass.astype(np.float32)
    batch = Batch(flat, reco.collections)
    return batch.select(reco.keep) if is_data else batch
