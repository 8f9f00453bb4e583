"""The names under which the processors look corrections up in a correctionlib JSON."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CorrectionNames"]


@dataclass(frozen=True)
class CorrectionNames:
    """Correction names; change them to read a payload that names things differently."""

    pileup: str = "pileup"
    idip: str = "muon_idip_sf"
    trigger: str = "muon_trigger_sf"
    prefiring: str = "muon_prefiring"
    scale: str = "muon_scale_correction"
    scale_uncertainty: str = "muon_scale_uncertainty"
