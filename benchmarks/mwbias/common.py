"""Constants and small helpers shared by the benchmark's driver and its worker processes."""

from __future__ import annotations

import math
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from analysis.constants import MW_REF

__all__ = [
    "CHAIN_FIELDS",
    "MW_REF_GEV",
    "POI",
    "THREAD_VARS",
    "TOY_FIELDS",
    "VARIANTS",
    "add_pull",
    "converged",
    "describe",
    "error_rows",
    "row_variants",
    "variant_name",
]

MW_REF_GEV = MW_REF  # the reference mass of the MC
VARIANTS: tuple[tuple[str, bool], ...] = (("bb-lite", True), ("no-mc-stat", False))
POI = "mW"
CHAIN_FIELDS = (
    "variant",
    "mass_true_gev",
    "seed",
    "value_mev",
    "error_mev",
    "pull",
    "status",
    "n_iter",
    "fit_s",
    "generate_s",
    "histmaker_s",
    "setup_s",
    "pe_s",
    "corrections",
    "calib_generate_s",
    "calibrate_s",
    "scale_err_mean",
    "worker_pid",
    "warm",
    "message",
)
TOY_FIELDS = (
    "toy",
    "seed",
    "shift_mev",
    "value_mev",
    "error_mev",
    "pull",
    "status",
    "n_iter",
    "fit_s",
    "warm",
    "message",
)
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def describe(err: BaseException) -> str:
    """``Type: message (at file:line in function)`` of the innermost frame."""
    frames = traceback.extract_tb(err.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name})"
    return f"{type(err).__name__}: {err}" + (where if frames else "")


def variant_name(fit_variant: str, setup_variant: str = "") -> str:
    """The ``variant`` column: the fit variant, then ``/`` and the setup variant if any
    (``--setup-variants``), e.g. ``bb-lite/factorised``."""
    return f"{fit_variant}/{setup_variant}" if setup_variant else fit_variant


def row_variants(task: dict[str, Any]) -> list[str]:
    """The ``variant`` of every row one PE gives: each fit variant with the plain setup, then
    with each setup variant."""
    fits = task.get("variants") or [v for v, _ in VARIANTS]
    setups = [""] + [name for name, _ in task.get("setup_variants", [])]
    return [variant_name(f, s) for s in setups for f in fits]


def error_rows(task: dict[str, Any], message: str) -> list[dict[str, Any]]:
    """Failure rows of a PE that did not run (one per variant of the task)."""
    names = row_variants(task)
    return [
        {
            "variant": v,
            "mass_true_gev": task["mass_gev"],
            "seed": task["seed"],
            "status": "error",
            "message": message,
            "pull": math.nan,
        }
        for v in names
    ]


def add_pull(row: dict[str, Any], truth_mev: float) -> None:
    v, e = row.get("value_mev", math.nan), row.get("error_mev", math.nan)
    ok = row.get("status") == "converged" and math.isfinite(v) and math.isfinite(e) and e > 0
    row["pull"] = (v - truth_mev) / e if ok else math.nan


def converged(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of converged fits with a finite pull."""
    return [r for r in rows if r.get("status") == "converged" and math.isfinite(r["pull"])]
