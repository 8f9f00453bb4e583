"""The whole calibration: read the Z -> mu mu pairs, measure the momentum scale, correct the data,
tag and probe in all bins at once, smooth the scale factors, build the payload.

>>> cal = calibrate("samples/datasets.yaml")  # doctest: +SKIP
>>> cal.write("calib.json")  # doctest: +SKIP
>>> print(cal.log())  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis.calibrate.events import Dimuons, TooFewEvents, read_dimuons
from analysis.calibrate.peakfit import EfficiencyFit, fit_efficiencies
from analysis.calibrate.scale import DEFAULT_SCALE_EDGES, ScaleMeasurement, measure_scale
from analysis.calibrate.smoothing import SmoothedScaleFactors, smooth_scale_factors
from analysis.calibrate.systematics import SystematicShifts, alternative_fits, systematic_shifts
from analysis.calibrate.tnp import (
    DEFAULT_BINNING,
    KINDS,
    MassGrid,
    TnpBinning,
    histogram_probes,
    select_probes,
)
from analysis.errors import ConfigError

__all__ = ["MIN_PAIRS", "Calibration", "calibrate"]

#: fewest Z -> mu mu pairs in data and in MC to calibrate from: with 24 eta bins of the scale
#: and 144 tag-and-probe bins, fewer leave most bins without a measurement
MIN_PAIRS = 2000


@dataclass
class Calibration:
    """Everything :func:`calibrate` measured, and the payload built from it."""

    scale: ScaleMeasurement
    efficiencies: dict[str, EfficiencyFit]
    smoothed: dict[str, SmoothedScaleFactors]
    payload_json: str
    inputs: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    systematics: dict[str, SystematicShifts] | None = None

    def binned(self) -> dict[str, dict[str, Any]]:
        """The unsmoothed fit results per efficiency (JSON-able lists)."""
        out = {}
        for kind, f in self.efficiencies.items():
            out[kind] = {
                "eta_edges": f.eta_edges.tolist(),
                "pt_edges": f.pt_edges.tolist(),
                "eff_data": f.eff_data.tolist(),
                "err_data": f.err_data.tolist(),
                "eff_mc": f.eff_mc.tolist(),
                "err_mc": f.err_mc.tolist(),
                "sf": f.sf.tolist(),
                "sf_err": f.sf_err.tolist(),
                "valid": f.valid.tolist(),
                "probes_data": f.probes_data.tolist(),
                "smoothing_chi2": self.smoothed[kind].chi2.tolist(),
                "smoothing_ndf": self.smoothed[kind].ndf.tolist(),
            }
            if self.systematics:
                sy = self.systematics[kind]
                out[kind]["syst"] = sy.total.tolist()
                out[kind]["syst_per_source"] = {k: v.tolist() for k, v in sy.per_source.items()}
        return out

    def meta(self, provenance: Mapping[str, Any]) -> dict[str, Any]:
        """The ``calib.meta.json`` content: provenance and every measured number."""
        s = self.scale
        return {
            "provenance": dict(provenance),
            "timings_s": self.timings,
            "counts": self.counts,
            "scale": {
                "eta_edges": s.eta_edges.tolist(),
                "bias": s.bias.tolist(),
                "error": s.error.tolist(),
                "cov": s.cov.tolist(),
                "cells": s.cells.tolist(),
                "cell_delta": s.delta.tolist(),
                "cell_delta_err": s.delta_err.tolist(),
                "chi2": s.chi2,
                "ndf": s.ndf,
            },
            "efficiency": self.binned(),
        }

    def log(self) -> str:
        """A human-readable summary (also written as ``calib.log``)."""
        s = self.scale
        lines = [
            "wmass calibrate",
            "inputs: " + ", ".join(self.inputs),
            "pairs: " + ", ".join(f"{k} {v:,}" for k, v in self.counts.items()),
            f"momentum scale: {len(s.bias)} eta bins from {len(s.delta)} (eta1, eta2) cells, "
            f"chi2/ndf {s.chi2:.1f}/{s.ndf}",
            "  bias x 1e3: " + " ".join(f"{b * 1e3:+.2f}" for b in s.bias),
            "  error x 1e3: " + " ".join(f"{e * 1e3:.2f}" for e in s.error),
        ]
        for kind, f in self.efficiencies.items():
            sm = self.smoothed[kind]
            lines.append(
                f"{kind}: {f.valid.sum()}/{f.valid.size} bins measured in data and MC; "
                f"smoothing chi2/ndf {sm.chi2.sum():.1f}/{sm.ndf.sum()} "
                f"(degree {sm.degree}, {len(sm.shifts)} eigen-variations)"
            )
            if self.systematics:
                sy = self.systematics[kind]
                stat = np.where(f.valid, f.sf_err, np.nan)
                parts = [
                    f"{k} {np.nanmedian(np.where(f.valid, v, np.nan) / stat):.2f}"
                    for k, v in sy.per_source.items()
                ]
                lines.append(
                    "  T&P systematics, median |SF_alt - SF| / stat error: "
                    + ", ".join(parts)
                    + f"; total {np.nanmedian(np.where(f.valid, sy.total, np.nan) / stat):.2f}"
                )
        lines.append("timings [s]: " + ", ".join(f"{k} {v:.1f}" for k, v in self.timings.items()))
        return "\n".join(lines) + "\n"

    def write(
        self, out: str | Path, provenance: Mapping[str, Any] | None = None, extra_log: str = ""
    ) -> dict[str, Path]:
        """Write the payload, ``.meta.json`` and ``.log`` (atomically)."""
        import correctionlib.schemav2 as cs

        from analysis.calibrate.payload import write_calibration
        from fit.provenance import provenance as make_provenance

        prov = provenance if provenance is not None else make_provenance(inputs=self.inputs)
        cset = cs.CorrectionSet.model_validate_json(self.payload_json)
        return write_calibration(cset, out, self.meta(prov), self.log() + extra_log)


def _pick(datasets: Mapping[str, Any], wanted: Sequence[str] | None, default, what: str, src):
    if wanted:
        unknown = [n for n in wanted if n not in datasets]
        if unknown:
            raise ConfigError(f"datasets.{unknown[0]}", f"no such {what} dataset", source=src)
        return [datasets[n] for n in wanted]
    chosen = [d for d in datasets.values() if default(d)]
    if not chosen:
        raise ConfigError("datasets", f"no {what} dataset", source=src)
    return chosen


def _smooth(
    f: EfficiencyFit, degree: int, free_below: float, iterations: int = 3
) -> SmoothedScaleFactors:
    """Smooth the SFs of ``f``, weighting each bin by its *expected* error at the smoothed SF.

    A bin's fitted error follows its own fluctuation (fewer failing probes: higher efficiency
    and smaller error), so weights ``1 / err^2`` pull a fit towards the upward fluctuations.
    After a first fit, the data efficiency's error is rescaled to the smoothed data efficiency
    ``e = SF_smooth x eff_mc`` by the binomial factor ``sqrt(e (1 - e) / (e_fit (1 - e_fit)))``
    (its effective number of probes kept), and the fit repeated.
    """
    err = f.sf_err
    with np.errstate(divide="ignore", invalid="ignore"):
        fitted = f.eff_data * (1.0 - f.eff_data)
        for _ in range(iterations):
            s = smooth_scale_factors(
                f.sf, err, f.valid, f.pt_edges, degree=degree, free_below=free_below
            )
            expected = np.clip(s.nominal * f.eff_mc, 1e-6, 1.0 - 1e-6)
            err_data = f.err_data * np.sqrt(expected * (1.0 - expected) / fitted)
            err = np.abs(s.nominal) * np.hypot(err_data / expected, f.err_mc / f.eff_mc)
            err = np.where(np.isfinite(err), err, f.sf_err)
    return s


def _read(datasets: list[Any]) -> Dimuons:
    return Dimuons.concatenate([read_dimuons(d) for d in datasets])


def calibrate(
    datasets: str | Path,
    *,
    data: Sequence[str] | None = None,
    mc: Sequence[str] | None = None,
    corrections: str | Path | None = None,
    binning: Mapping[str, TnpBinning] | None = None,
    scale_edges: np.ndarray = DEFAULT_SCALE_EDGES,
    degree: int = 2,
    grid: MassGrid | None = None,
    description: str = "",
    min_pairs: int = MIN_PAIRS,
    systematics: bool = True,
) -> Calibration:
    """Calibrate from the samples of ``datasets`` (a datasets.yaml).

    ``data``: the data datasets (default: all ``is_data``); ``mc``: the Z -> mu mu simulation
    (default: the datasets of process ``Zmumu``); ``corrections``: the payload whose pileup
    and prefiring are copied (default ``corrections.json`` beside the YAML). Fewer than
    ``min_pairs`` Z -> mu mu pairs (the histmaker's Z selection) in the data or the MC raise
    :class:`~analysis.calibrate.events.TooFewEvents`, naming the dataset and its files.
    ``systematics``: also fit the alternatives of :mod:`analysis.calibrate.systematics` and
    add their shifts to the payload (``syst_up`` / ``syst_down``).
    """
    from analysis.calibrate.payload import build_payload, copy_corrections
    from analysis.datasets import load_datasets
    from corrections import CorrectionNames

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    fileset = load_datasets(datasets)
    src = fileset.source
    data_sets = _pick(fileset, data, lambda d: d.is_data, "data", src)
    mc_sets = _pick(fileset, mc, lambda d: not d.is_data and d.process == "Zmumu", "Z MC", src)
    if corrections is None:
        corrections = Path(src).parent / "corrections.json"
    binning = dict(binning or DEFAULT_BINNING)
    eta_sets = {tuple(binning[k].eta_edges) for k in KINDS}
    if len(eta_sets) != 1:
        # the histmaker decorrelates both SFs in the eta bins of the ID+IP payload
        raise ConfigError("binning", "ID+IP and trigger need the same eta edges")
    names = CorrectionNames()
    copied = copy_corrections(corrections, [names.pileup, names.prefiring])

    d_pairs, m_pairs = _read(data_sets), _read(mc_sets)
    timings["read"] = time.perf_counter() - t0
    from analysis.calibrate.scale import z_pairs

    for what, sets, pairs in (("data", data_sets, d_pairs), ("Z MC", mc_sets, m_pairs)):
        n_z = int(z_pairs(pairs).sum())
        if n_z < min_pairs:
            names = "+".join(d.name for d in sets)
            files = tuple(f for d in sets for f in d.files)
            raise TooFewEvents(f"{what} ({names})", n_z, min_pairs, files)

    t0 = time.perf_counter()
    scale = measure_scale(d_pairs, m_pairs, scale_edges)
    timings["scale"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    pt_corrected = scale.correct(d_pairs.eta, d_pairs.pt)
    hists = [
        histogram_probes(
            kind,
            select_probes(d_pairs, kind, pt_corrected),
            select_probes(m_pairs, kind),
            binning[kind],
            grid,
        )
        for kind in KINDS
    ]
    fits, _ = fit_efficiencies(hists)
    timings["tag_and_probe"] = time.perf_counter() - t0
    syst = None
    if systematics:
        t0 = time.perf_counter()
        alts = alternative_fits(d_pairs, m_pairs, pt_corrected, binning, grid)
        syst = systematic_shifts(fits, alts)
        timings["tnp_systematics"] = time.perf_counter() - t0

    smoothed = {kind: _smooth(f, degree, binning[kind].free_below) for kind, f in fits.items()}
    cset = build_payload(
        {
            kind: (fits[kind].eta_edges, smoothed[kind], syst[kind].total if syst else None)
            for kind in KINDS
        },
        scale.eta_edges,
        scale.bias,
        scale.error,
        copied,
        names=names,
        description=description,
    )
    inputs = [src, str(Path(corrections).resolve())]
    inputs += [f for ds in (*data_sets, *mc_sets) for f in ds.files]
    return Calibration(
        scale=scale,
        efficiencies=fits,
        smoothed=smoothed,
        payload_json=cset.model_dump_json(exclude_unset=True),
        inputs=inputs,
        timings=timings,
        counts={"data": len(d_pairs), "mc": len(m_pairs)},
        systematics=syst,
    )
