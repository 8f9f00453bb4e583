"""Closure of a calibration against the generator's ``truth.json``.

:func:`closure` compares, bin by bin of the payload, the measured momentum-scale bias
(``1 / muon_scale_correction - 1``, error ``muon_scale_uncertainty``) and scale factors
(nominal, error = eigen-variations in quadrature) with the truth averaged over the payload
bin (the truth tables weighted by their overlap with it; efficiencies of data and MC averaged
separately, then divided). With a :class:`~analysis.calibrate.calibration.Calibration` (or a
``calib.meta.json`` beside the payload) it also checks the unsmoothed per-bin scale factors
of the fits (``<kind>_binned``). Each entry has per-bin pulls ``(measured - true) / error``,
their mean and RMS, and ``ok``: mean within ``+-0.3`` and RMS in ``[0.7, 1.4]``.

Any correctionlib payload with the :class:`corrections.CorrectionNames` works, so the same
function checks the generator's own ``corrections.json`` (zero pulls, by construction).

>>> result = closure("calib.json", "samples/truth.json")  # doctest: +SKIP
>>> result.scale.mean, result.scale.rms, result.ok  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from corrections import CorrectionNames, Corrections

__all__ = ["Closure", "ClosureEntry", "closure"]

PULL_MEAN_MAX = 0.3
PULL_RMS_RANGE = (0.7, 1.4)


@dataclass
class ClosureEntry:
    """Measured vs true in the bins of one quantity (1D in eta or 2D in eta x pT)."""

    name: str
    eta_edges: np.ndarray
    pt_edges: np.ndarray | None
    measured: np.ndarray
    true: np.ndarray
    error: np.ndarray
    used: np.ndarray = field(repr=False)  # bins that enter the pull statistics

    @property
    def pull(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.used, (self.measured - self.true) / self.error, np.nan)

    @property
    def mean(self) -> float:
        return float(np.nanmean(self.pull))

    @property
    def rms(self) -> float:
        return float(np.sqrt(np.nanmean(self.pull**2)))

    @property
    def n(self) -> int:
        return int(np.isfinite(self.pull).sum())

    @property
    def ok(self) -> bool:
        lo, hi = PULL_RMS_RANGE
        return abs(self.mean) <= PULL_MEAN_MAX and lo <= self.rms <= hi

    def summary(self) -> dict[str, Any]:
        return {"bins": self.n, "pull_mean": self.mean, "pull_rms": self.rms, "ok": self.ok}


@dataclass
class Closure:
    """The closure entries: ``scale``, ``idip``, ``trigger`` and, when the unsmoothed fits are
    known, ``idip_binned``, ``trigger_binned``."""

    entries: dict[str, ClosureEntry]

    def __getattr__(self, name: str) -> ClosureEntry:
        entries = self.__dict__.get("entries", {})
        if name in entries:
            return entries[name]
        raise AttributeError(name)

    @property
    def ok(self) -> bool:
        return all(e.ok for e in self.entries.values())

    def table(self) -> str:
        """A plain-text table: quantity, bins, pull mean, pull RMS, ok."""
        lines = [f"{'quantity':<16} {'bins':>5} {'mean':>7} {'rms':>6}  ok"]
        for e in self.entries.values():
            mark = "yes" if e.ok else "NO"
            lines.append(f"{e.name:<16} {e.n:>5} {e.mean:>+7.2f} {e.rms:>6.2f}  {mark}")
        return "\n".join(lines)

    def summary(self) -> dict[str, Any]:
        return {name: e.summary() for name, e in self.entries.items()}


def _overlap(fine: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """``[coarse bin, fine bin]`` overlap lengths."""
    lo = np.maximum(coarse[:-1, None], fine[None, :-1])
    hi = np.minimum(coarse[1:, None], fine[None, 1:])
    return np.clip(hi - lo, 0.0, None)


def _average(table: np.ndarray, fine: list[np.ndarray], coarse: list[np.ndarray]) -> np.ndarray:
    """``table`` on the ``fine`` grid averaged over the bins of the ``coarse`` grid."""
    out = np.asarray(table, dtype=float)
    for axis, (f, c) in enumerate(zip(fine, coarse, strict=True)):
        w = _overlap(np.asarray(f, float), np.asarray(c, float))
        w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
        out = np.moveaxis(np.tensordot(w, np.moveaxis(out, axis, 0), axes=(1, 0)), 0, axis)
    return out


def _centres(edges: np.ndarray) -> np.ndarray:
    return 0.5 * (edges[1:] + edges[:-1])


def _load(calib: Any) -> tuple[Corrections, dict[str, Any] | None]:
    from analysis.calibrate.calibration import Calibration

    if isinstance(calib, Calibration):
        return Corrections(calib.payload_json), calib.binned()
    if isinstance(calib, Corrections):
        return calib, None
    path = Path(calib)
    meta_path = path.with_name(path.stem + ".meta.json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else None
    binned = meta.get("efficiency") if meta else None
    return Corrections.from_file(path), binned


def closure(calib: Any, truth: Any, names: CorrectionNames | None = None) -> Closure:
    """Compare ``calib`` (a payload path, :class:`corrections.Corrections` or
    :class:`~analysis.calibrate.calibration.Calibration`) with ``truth`` (the path of
    ``truth.json`` or its content)."""
    names = names or CorrectionNames()
    corr, binned = _load(calib)
    corr.names = names
    if not isinstance(truth, dict):
        truth = json.loads(Path(truth).read_text())
    entries = {}

    scale = truth["momentum_scale"]
    edges = corr.edges(names.scale, "eta")
    c = _centres(edges)
    measured = 1.0 / corr.evaluate(names.scale, c) - 1.0
    error = corr.evaluate(names.scale_uncertainty, c)
    true = _average(scale["data_bias"], [scale["eta_edges"]], [edges])
    entries["scale"] = ClosureEntry("scale", edges, None, measured, true, error, error > 0)

    eff = truth["efficiency"]
    fine = [eff["eta_edges"], eff["pt_edges"]]
    for kind, name in (("idip", names.idip), ("trigger", names.trigger)):
        eta_edges, pt_edges = corr.edges(name, "eta"), corr.edges(name, "pt")
        true_data = _average(eff[kind]["data"], fine, [eta_edges, pt_edges])
        true_mc = _average(eff[kind]["mc"], fine, [eta_edges, pt_edges])
        true = true_data / true_mc
        ge, gp = np.meshgrid(_centres(eta_edges), _centres(pt_edges), indexing="ij")
        nominal = corr.evaluate(name, ge.ravel(), gp.ravel(), "nominal").reshape(ge.shape)
        shifts = [
            corr.evaluate(name, ge.ravel(), gp.ravel(), key).reshape(ge.shape) - nominal
            for key in corr.keys(name)
            if key.startswith("eig") and key.endswith("_up")  # statistical: not syst_up
        ]
        error = np.sqrt(np.sum(np.square(shifts), axis=0)) if shifts else np.zeros_like(nominal)
        entries[kind] = ClosureEntry(kind, eta_edges, pt_edges, nominal, true, error, error > 0)
        if binned and kind in binned:
            b = binned[kind]
            e_eta, e_pt = np.asarray(b["eta_edges"], float), np.asarray(b["pt_edges"], float)
            sf = np.asarray(b["sf"], dtype=float)
            err = np.asarray(b["sf_err"], dtype=float)
            valid = np.asarray(b["valid"], dtype=bool)
            t = _average(eff[kind]["data"], fine, [e_eta, e_pt]) / _average(
                eff[kind]["mc"], fine, [e_eta, e_pt]
            )
            entries[f"{kind}_binned"] = ClosureEntry(
                f"{kind}_binned", e_eta, e_pt, sf, t, err, valid & np.isfinite(err)
            )
    return Closure(entries)
