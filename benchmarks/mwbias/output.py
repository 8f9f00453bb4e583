"""Tables (markdown), the CSV/JSON outputs, provenance, and ``--tables`` (earlier runs' CSVs)."""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import io
import math
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.mwbias.common import MW_REF_GEV
from benchmarks.mwbias.stats import (
    chain_tables,
    fit_only_table,
    measured_minus_truth,
    setup_variant_shifts,
)

__all__ = [
    "csv_text",
    "json_safe",
    "print_chain",
    "print_fit_only",
    "print_timing",
    "provenance",
    "read_rows",
    "tables_of",
    "write_atomic",
]

_ROOT = Path(__file__).resolve().parents[2]


def _pm(v: float, e: float, fmt: str = "+.3f") -> str:
    if not math.isfinite(v):
        return "-"
    return f"{v:{fmt}} ± {e:.{fmt[-2]}f}" if math.isfinite(e) else f"{v:{fmt}}"


def _md(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        lines.append("| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |")
    return "\n".join(lines)


def print_chain(tables: dict[str, Any], ref_gev: float, wall_s: float) -> None:
    header = (
        "m_true [GeV]",
        "N",
        "mean pull",
        "pull width",
        "<m_fit - m_true> [MeV]",
        "<sigma_fit> [MeV]",
        "failed",
    )
    for variant, t in tables.items():
        print(f"\n### full chain, {variant}\n")
        rows = [
            (
                f"{p['mass_true_gev']:.3f}",
                str(p["n"]),
                _pm(p["mean_pull"], p["mean_pull_err"]),
                _pm(p["pull_width"], p["pull_width_err"], ".3f"),
                _pm(p["mean_shift_mev"], p["mean_shift_err_mev"], "+.1f"),
                f"{p['mean_error_mev']:.1f}" if math.isfinite(p["mean_error_mev"]) else "-",
                str(p["failed"]),
            )
            for p in t["per_mass"]
        ]
        print(_md(header, rows))
        lin = t["linearity"]
        print()
        if "offset_mev" in lin:
            slope = (
                f" + ({lin['slope']:.4f} ± {lin['slope_err']:.4f}) * (m_true - m_ref)"
                if "slope" in lin
                else " (one true mass: no slope)"
            )
            print(
                f"linearity ({lin['n']} fits, m_ref = {1000 * ref_gev:.0f} MeV): m_fit - m_ref = "
                f"({lin['offset_mev']:+.1f} ± {lin['offset_err_mev']:.1f}) MeV{slope}; "
                f"chi2/ndf = {lin['chi2']:.1f}/{lin['ndf']}"
            )
        else:
            print("linearity: too few converged fits")
        pr = t.get("paired")
        if pr and pr["n_seeds"]:
            print(
                f"paired slope ({pr['n_seeds']} seeds, each at every mass): "
                f"{pr['slope']:.4f} ± {pr['slope_err']:.4f} (spread per seed "
                f"{pr['slope_spread']:.3f}); offset {pr['offset_mev']:+.1f} ± "
                f"{pr['offset_err_mev']:.1f} MeV"
            )
        print(
            f"mean pull over all: {_pm(t['mean_pull_all'], t['mean_pull_all_err'])} "
            f"(width {_pm(t['pull_width_all'], t['pull_width_all_err'], '.3f')}, "
            f"N = {t['n']}, failed {t['failed']})"
            + (f"; wall time of the run {wall_s:.0f} s" if math.isfinite(wall_s) else "")
        )
        for f in t["failures"]:
            print(
                f"  failed: m_true {f['mass_true_gev']:.3f} seed {f['seed']}: {f['status']}"
                f"{': ' + f['message'] if f.get('message') else ''}"
            )


def print_fit_only(t: dict[str, Any], globals_: str) -> None:
    print(
        f"\n### fit only (BB-lite, toys from the model at {t['shift_mev']:+.0f} MeV, "
        f"global observables {globals_})\n"
    )
    header = (
        "N",
        "mean pull",
        "pull width",
        "<m_fit - m_gen> [MeV]",
        "<sigma_fit> [MeV]",
        "iterations",
        "s / fit",
        "failed",
    )
    row = (
        str(t["n"]),
        _pm(t["mean_pull"], t["mean_pull_err"]),
        _pm(t["pull_width"], t["pull_width_err"], ".3f"),
        _pm(t["mean_shift_mev"], t["mean_shift_err_mev"], "+.2f"),
        f"{t['mean_error_mev']:.1f}" if math.isfinite(t["mean_error_mev"]) else "-",
        f"{t['mean_iterations']:.1f}" if math.isfinite(t["mean_iterations"]) else "-",
        f"{t['fit_s_mean']:.1f}" if math.isfinite(t["fit_s_mean"]) else "-",
        str(t["failed"]),
    )
    print(_md(header, [row]))
    print("target of the issue: 1000 toys, |mean pull| <= 0.05")
    for f in t["failures"]:
        print(f"  failed: toy {f['toy']} (seed {f['seed']}): {f['status']}: {f['message']}")


def write_atomic(path: Path, text: str) -> None:
    from fit.provenance import atomic_write_text

    atomic_write_text(path, text)


def csv_text(rows: list[dict[str, Any]], fields: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def provenance(argv: Sequence[str]) -> dict[str, Any]:
    """Command line, time, git commit (and whether the tree is dirty), package versions."""

    def git(*args: str) -> str | None:
        try:
            r = subprocess.run(
                ["git", *args], cwd=_ROOT, capture_output=True, text=True, timeout=30, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip()

    versions = {}
    for pkg in ("wmass", "numpy", "scipy", "jax", "jaxlib", "numba", "coffea", "awkward"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "command": " ".join(shlex.quote(a) for a in [sys.executable, *argv]),
        "time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "python": sys.version.split()[0],
        "versions": versions,
        "host_cpus": os.cpu_count(),
        "load_avg_start": os.getloadavg()[0],
    }


def _number(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(text, text)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a CSV written by this benchmark, numbers as numbers (empty: NaN)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        out.append({k: (math.nan if v == "" else _number(v)) for k, v in row.items()})
    return out


def tables_of(paths: Sequence[Path]) -> int:
    """``--tables``: print the tables of earlier runs' CSVs, joined."""
    chain: list[dict[str, Any]] = []
    toys: list[dict[str, Any]] = []
    for path in paths:
        if not path.is_file():
            print(f"mw_bias: --tables: no such file {path}", file=sys.stderr)
            return 2
        rows = read_rows(path)
        (toys if path.name.endswith("_fitonly.csv") else chain).extend(rows)
    if chain:
        keys = [(r["seed"], r["mass_true_gev"], r["variant"], _corrections(r)) for r in chain]
        if len(set(keys)) != len(keys):
            print(
                "mw_bias: --tables: a seed repeats at one mass (the same PE twice)", file=sys.stderr
            )
            return 2
        masses = sorted({r["mass_true_gev"] for r in chain})
        kinds = sorted({_corrections(r) for r in chain})
        for kind in kinds:
            rows = [r for r in chain if _corrections(r) == kind]
            n_pe = len({(r["seed"], r["mass_true_gev"]) for r in rows})
            which = f", corrections: {kind}" if len(kinds) > 1 else ""
            print(f"{n_pe} pseudo-experiments from {len(paths)} file(s){which}")
            print_chain(chain_tables(rows, masses, MW_REF_GEV), MW_REF_GEV, math.nan)
            print_setup_shifts(setup_variant_shifts(rows))
        if set(kinds) == {"measured", "truth"}:
            print_measured_minus_truth(chain)
    if toys:
        shift = float(np.nanmean([r["shift_mev"] for r in toys]))
        for r in toys:
            r["_truth"] = r["value_mev"] - r["pull"] * r["error_mev"]
        print_fit_only(fit_only_table(toys, shift), "as in the run")
    return 0


def _print_shift(label: str, t: dict[str, float]) -> None:
    print(
        f"\n{label}, PE by PE ({t['n']} PEs): m_W "
        f"{_pm(t['shift_mev'], t['shift_err_mev'], '+.1f')} MeV (RMS {t['shift_rms_mev']:.1f} "
        f"MeV); sigma_fit {t['error_change_mev']:+.2f} MeV"
    )


def print_setup_shifts(shifts: dict[str, dict[str, float]]) -> None:
    """The PE-by-PE shifts of :func:`~benchmarks.mwbias.stats.setup_variant_shifts`."""
    for name, t in shifts.items():
        _print_shift(f"{name} - {name.split('/')[0]}", t)


def _corrections(row: dict[str, Any]) -> str:
    """``measured`` (``--calibrate``) or ``truth`` (the generator's tables; older CSVs)."""
    kind = row.get("corrections")
    return kind if isinstance(kind, str) else "truth"


def print_measured_minus_truth(chain: list[dict[str, Any]]) -> None:
    """PE by PE, a ``--calibrate`` run against the run of the same seeds without it
    (:func:`~benchmarks.mwbias.stats.measured_minus_truth`)."""
    for variant, t in measured_minus_truth(chain, _corrections).items():
        _print_shift(f"{variant}, m_W(measured) - m_W(truth tables)", t)


def print_timing(t: dict[str, Any]) -> None:
    """The mean seconds per step of a PE (:func:`~benchmarks.mwbias.stats.timing_summary`)."""
    steps = ", ".join(
        f"{label} {t[key]:.1f} s" if math.isfinite(t[key]) else f"{label} -"
        for label, key in (
            ("generate", "generate_s"),
            ("histmaker", "histmaker_s"),
            ("setup-fit", "setup_s"),
            ("fit bb-lite", "fit_bb-lite_s"),
            ("fit no-mc-stat", "fit_no-mc-stat_s"),
            ("total", "pe_s"),
            ("calibration sample (per seed)", "calib_generate_s"),
            ("calibrate (per seed)", "calibrate_s"),
        )
    )
    which = "warm workers" if t["warm_only"] else "incl. worker start-up"
    print(f"\ntime per PE ({which}, mean of {t['n_pe']}): {steps}")
