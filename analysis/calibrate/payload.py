"""The calibration as a correctionlib CorrectionSet that drops in for the generator's payload.

Same names (:class:`corrections.CorrectionNames`) and inputs as ``corrections.json``:
``muon_idip_sf`` / ``muon_trigger_sf`` ``(eta, pt, variation) -> sf`` with the variations
``nominal``, ``eig<k>_up`` / ``eig<k>_down`` (:mod:`analysis.calibrate.smoothing`) and
``syst_up`` / ``syst_down`` (the tag-and-probe systematics, :mod:`analysis.calibrate.systematics`;
the histmaker reads every ``<key>_up`` / ``<key>_down`` pair as a variation), clamped
(multi)binnings; ``muon_scale_correction`` / ``muon_scale_uncertainty`` ``(eta)`` from
:func:`corrections.scale_corrections` with the measured bias and its error; pileup and
prefiring copied unchanged from the sample's ``corrections.json``.

:func:`write_calibration` writes ``calib.json``, and beside it ``calib.meta.json`` (the
provenance of :func:`fit.provenance.provenance` and every measured number) and ``calib.log``
(the summary), each through :func:`fit.provenance.atomic_write_text` (temporary file in the
same directory, fsynced, renamed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import correctionlib.schemav2 as cs
import numpy as np

from analysis.calibrate.smoothing import SmoothedScaleFactors
from analysis.errors import ConfigError
from corrections import CorrectionNames, scale_corrections
from fit.provenance import atomic_write_text

__all__ = ["build_payload", "copy_corrections", "scale_factor_payload", "write_calibration"]


def _real(name: str, description: str = "") -> cs.Variable:
    return cs.Variable(name=name, type="real", description=description or None)


def _grid(eta_edges: np.ndarray, pt_edges: np.ndarray, values: np.ndarray) -> cs.MultiBinning:
    return cs.MultiBinning(
        nodetype="multibinning",
        inputs=["eta", "pt"],
        edges=[[float(x) for x in eta_edges], [float(x) for x in pt_edges]],
        content=[float(v) for v in np.asarray(values, dtype=float).ravel()],
        flow="clamp",
    )


def scale_factor_payload(
    name: str,
    eta_edges: np.ndarray,
    sf: SmoothedScaleFactors,
    description: str = "",
    syst: np.ndarray | None = None,
) -> cs.Correction:
    """``name(eta, pt, variation) -> sf`` with ``nominal``, ``eig<k>_up/down`` and, with
    ``syst`` (the systematic shift per bin, ``[eta, pt]``), ``syst_up/down``."""
    nodes = {"nominal": _grid(eta_edges, sf.pt_edges, sf.nominal)}
    for k, shift in enumerate(sf.shifts):
        nodes[f"eig{k}_up"] = _grid(eta_edges, sf.pt_edges, sf.nominal + shift)
        nodes[f"eig{k}_down"] = _grid(eta_edges, sf.pt_edges, sf.nominal - shift)
    if syst is not None:
        nodes["syst_up"] = _grid(eta_edges, sf.pt_edges, sf.nominal + syst)
        nodes["syst_down"] = _grid(eta_edges, sf.pt_edges, sf.nominal - syst)
    free = f", bins below {sf.free_below:g} GeV unsmoothed" if sf.free_below > 0 else ""
    if syst is not None:
        free += "; syst_up/down: tag-and-probe systematics (alternative fits in quadrature)"
    return cs.Correction(
        name=name,
        description=description
        or f"muon {name} data/MC scale factor from tag and probe (wmass calibrate); "
        f"eig<k>_up/down: stat eigen-variations (degree-{sf.degree} polynomial in pT per eta "
        f"bin{free})",
        version=1,
        inputs=[
            _real("eta", "muon eta"),
            _real("pt", "muon pT [GeV]"),
            cs.Variable(name="variation", type="string"),
        ],
        output=_real("sf", "data/MC efficiency ratio"),
        data=cs.Category(
            nodetype="category",
            input="variation",
            content=[cs.CategoryItem(key=k, value=v) for k, v in nodes.items()],
        ),
    )


def copy_corrections(path: str | Path, names: list[str]) -> list[cs.Correction]:
    """The corrections ``names`` of the correctionlib JSON ``path``, unchanged."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("corrections", f"no such file {path}", source=str(path))
    try:
        doc = json.loads(path.read_text())
        by_name = {c["name"]: c for c in doc["corrections"]}
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError("corrections", f"not a correctionlib JSON: {err}", str(path)) from err
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ConfigError(f"corrections.{missing[0]}", "no such correction", source=str(path))
    return [cs.Correction.model_validate(by_name[n]) for n in names]


def build_payload(
    efficiencies: Mapping[str, tuple[np.ndarray, SmoothedScaleFactors]]
    | Mapping[str, tuple[np.ndarray, SmoothedScaleFactors, np.ndarray | None]],
    scale_edges: np.ndarray,
    scale_bias: np.ndarray,
    scale_error: np.ndarray,
    copied: list[cs.Correction],
    *,
    names: CorrectionNames | None = None,
    description: str = "",
) -> cs.CorrectionSet:
    """The CorrectionSet: ``efficiencies`` = ``{"idip"|"trigger": (eta_edges, smoothed[,
    syst])}``, the measured scale, and the ``copied`` corrections (pileup, prefiring)."""
    names = names or CorrectionNames()
    by_kind = {"idip": names.idip, "trigger": names.trigger}
    sfs = [
        scale_factor_payload(by_kind[k], v[0], v[1], syst=v[2] if len(v) > 2 else None)
        for k, v in efficiencies.items()
    ]
    scale = scale_corrections(
        {
            "eta_edges": [float(x) for x in scale_edges],
            "data_bias": [float(x) for x in scale_bias],
            "uncertainty": [float(x) for x in scale_error],
        },
        names.scale,
        names.scale_uncertainty,
    )
    scale[0].description = "multiply the data muon pT by this factor (measured from Z -> mu mu)"
    scale[1].description = "relative muon momentum-scale uncertainty (the measurement's error)"
    order = [names.pileup, names.idip, names.trigger, names.prefiring]
    corrections = sorted([*copied, *sfs], key=lambda c: order.index(c.name)) + scale
    return cs.CorrectionSet(
        schema_version=2,
        description=description or "wmass calibrate: tag and probe and Z mass-peak calibration",
        corrections=corrections,
    )


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    return x


def write_calibration(
    cset: cs.CorrectionSet, out: str | Path, meta: Mapping[str, Any], log: str
) -> dict[str, Path]:
    """Write ``out`` (the CorrectionSet), ``<stem>.meta.json`` and ``<stem>.log``, each
    atomically; returns their paths."""
    out = Path(out)
    paths = {
        "payload": out,
        "meta": out.with_name(out.stem + ".meta.json"),
        "log": out.with_suffix(".log"),
    }
    atomic_write_text(paths["meta"], json.dumps(_jsonable(meta), indent=1))
    atomic_write_text(paths["log"], log)
    atomic_write_text(out, cset.model_dump_json(exclude_unset=True, indent=1))
    return paths
