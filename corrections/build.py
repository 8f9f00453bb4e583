"""Build the one correctionlib JSON the processors read from the generator's ``truth.json``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import correctionlib.schemav2 as cs

from corrections.efficiency import scale_factor_correction
from corrections.momentum_scale import scale_corrections
from corrections.names import CorrectionNames
from corrections.pileup import pileup_correction
from corrections.prefiring import prefiring_correction
from fit.provenance import atomic_write_text

__all__ = ["build_correction_set", "build_corrections", "load_truth"]

_REQUIRED = ("efficiency", "pileup", "momentum_scale", "prefiring")


def load_truth(path: str | Path) -> dict[str, Any]:
    """Read ``truth.json`` and check the keys the builders need (see docs/samples.md)."""
    path = Path(path)
    truth = json.loads(path.read_text())
    missing = [k for k in _REQUIRED if k not in truth]
    if missing:
        raise KeyError(f"{path}: truth.json lacks {missing}")
    return truth


def build_correction_set(
    truth: Mapping[str, Any],
    *,
    names: CorrectionNames | None = None,
    degree: int = 2,
    probes: float = 20000.0,
) -> cs.CorrectionSet:
    """All corrections of ``truth`` as one :class:`correctionlib.schemav2.CorrectionSet`."""
    names = names or CorrectionNames()
    eff = truth["efficiency"]
    corrections = [
        pileup_correction(truth["pileup"], names.pileup),
        *(
            scale_factor_correction(
                name, eff[kind], eff["eta_edges"], eff["pt_edges"], degree=degree, probes=probes
            )
            for kind, name in (("idip", names.idip), ("trigger", names.trigger))
        ),
        prefiring_correction(truth["prefiring"], names.prefiring),
        *scale_corrections(truth["momentum_scale"], names.scale, names.scale_uncertainty),
    ]
    return cs.CorrectionSet(
        schema_version=2,
        description=f"wmass corrections from truth.json (seed {truth.get('seed')})",
        corrections=corrections,
    )


def build_corrections(
    truth_json: str | Path,
    out_json: str | Path,
    *,
    degree: int = 2,
    probes: float = 20000.0,
) -> Path:
    """Write the correction set built from ``truth_json`` to ``out_json`` (atomically)."""
    cset = build_correction_set(load_truth(truth_json), degree=degree, probes=probes)
    return atomic_write_text(out_json, cset.model_dump_json(exclude_unset=True, indent=1))
