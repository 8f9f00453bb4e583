"""The statistics of the ensembles: pulls, widths, the linearity fit, paired slopes, timings."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from benchmarks.mwbias.common import VARIANTS, converged

__all__ = [
    "chain_tables",
    "fit_only_table",
    "linearity",
    "mean_and_width",
    "paired_slopes",
    "timing_summary",
]


def pull_columns(pulls: dict, shifts: dict) -> dict:
    """The table columns of a pull summary and a shift summary (``mean``/``std`` and errors)."""
    return {
        "mean_pull": pulls["mean"],
        "mean_pull_err": pulls["mean_err"],
        "pull_width": pulls["std"],
        "pull_width_err": pulls["std_err"],
        "mean_shift_mev": shifts["mean"],
        "mean_shift_err_mev": shifts["mean_err"],
    }


def mean_and_width(x: np.ndarray) -> dict[str, float]:
    """Mean +- std/sqrt(N) and std (ddof 1) +- std/sqrt(2(N-1)) of ``x``."""
    n = len(x)
    if n == 0:
        return {"mean": math.nan, "mean_err": math.nan, "std": math.nan, "std_err": math.nan}
    std = float(np.std(x, ddof=1)) if n > 1 else math.nan
    return {
        "mean": float(np.mean(x)),
        "mean_err": std / math.sqrt(n) if n > 1 else math.nan,
        "std": std,
        "std_err": std / math.sqrt(2 * (n - 1)) if n > 1 else math.nan,
    }


def linearity(
    m_true_mev: np.ndarray, value_mev: np.ndarray, error_mev: np.ndarray, ref_mev: float
) -> dict[str, Any]:
    """Weighted least squares m_fit - ref = offset + slope (m_true - ref), weights 1/sigma^2.

    Errors from (A^T W A)^-1, scaled by sqrt(chi2/ndf) when that exceeds 1 (PDG scale factor).
    With a single true mass only the offset is fitted.
    """
    x, y, w = m_true_mev - ref_mev, value_mev - ref_mev, 1.0 / error_mev**2
    n = len(x)
    with_slope = len(np.unique(x)) > 1
    A = np.column_stack([np.ones(n), x]) if with_slope else np.ones((n, 1))
    if n < A.shape[1] + (1 if with_slope else 0) or n == 0:
        return {"n": n}
    AtWA = A.T @ (w[:, None] * A)
    cov = np.linalg.inv(AtWA)
    beta = cov @ (A.T @ (w * y))
    chi2 = float(np.sum(w * (y - A @ beta) ** 2))
    ndf = n - A.shape[1]
    scale = max(1.0, chi2 / ndf) if ndf > 0 else 1.0
    err = np.sqrt(np.diag(cov) * scale)
    out = {"n": n, "offset_mev": float(beta[0]), "offset_err_mev": float(err[0])}
    if with_slope:
        out.update(slope=float(beta[1]), slope_err=float(err[1]))
    out.update(chi2=chi2, ndf=ndf, error_scale=math.sqrt(scale))
    return out


def paired_slopes(rows: list[dict[str, Any]], ref_mev: float) -> dict[str, Any]:
    """Per seed, the least-squares slope of m_fit against m_true over its converged masses
    (two or more); their mean +- std / sqrt(N) and spread. For ``--paired`` runs, where one
    seed's samples at every mass share their MC and their data's events."""
    by_seed: dict[int, list[tuple[float, float]]] = {}
    for r in rows:
        by_seed.setdefault(int(r["seed"]), []).append(
            (1000.0 * r["mass_true_gev"] - ref_mev, r["value_mev"] - ref_mev)
        )
    slopes, offsets = [], []
    for pts in by_seed.values():
        x, y = np.array(pts).T
        if len(np.unique(x)) < 2:
            continue
        b, a = np.polyfit(x, y, 1)
        slopes.append(b)
        offsets.append(a)
    sl, of = mean_and_width(np.array(slopes)), mean_and_width(np.array(offsets))
    return {
        "n_seeds": len(slopes),
        "slope": sl["mean"],
        "slope_err": sl["mean_err"],
        "slope_spread": sl["std"],
        "offset_mev": of["mean"],
        "offset_err_mev": of["mean_err"],
    }


def chain_tables(
    rows: list[dict[str, Any]], masses: Sequence[float], ref_gev: float
) -> dict[str, Any]:
    """Per variant: per-mass statistics, failures, the linearity fit, the overall pull and,
    where seeds were run at several masses (``--paired``), the per-seed slope."""
    out: dict[str, Any] = {}
    present = {r["variant"] for r in rows}
    order = [v for v, _ in VARIANTS]

    def rank(name: str) -> tuple[int, bool, str]:  # fit variants' order, plain setup first
        fit_variant = name.split("/")[0]
        return (order.index(fit_variant) if fit_variant in order else len(order), "/" in name, name)

    for variant in sorted(present, key=rank):
        mine = [r for r in rows if r["variant"] == variant]
        per_mass = []
        for m in masses:
            at = [r for r in mine if abs(r["mass_true_gev"] - m) < 1e-9]
            ok = converged(at)
            pulls = np.array([r["pull"] for r in ok])
            shift = np.array([r["value_mev"] - 1000.0 * m for r in ok])
            err = np.array([r["error_mev"] for r in ok])
            ps, ds = mean_and_width(pulls), mean_and_width(shift)
            per_mass.append(
                {
                    "mass_true_gev": m,
                    "n": len(ok),
                    "failed": len(at) - len(ok),
                    **pull_columns(ps, ds),
                    "mean_error_mev": float(err.mean()) if len(err) else math.nan,
                }
            )
        ok = converged(mine)
        allp = mean_and_width(np.array([r["pull"] for r in ok]))
        lin = linearity(
            np.array([1000.0 * r["mass_true_gev"] for r in ok]),
            np.array([r["value_mev"] for r in ok]),
            np.array([r["error_mev"] for r in ok]),
            1000.0 * ref_gev,
        )
        failures = [
            {k: r.get(k) for k in ("mass_true_gev", "seed", "status", "message")}
            for r in mine
            if r not in ok
        ]
        out[variant] = {
            "per_mass": per_mass,
            "linearity": lin,
            "paired": paired_slopes(ok, 1000.0 * ref_gev),
            "mean_pull_all": allp["mean"],
            "mean_pull_all_err": allp["mean_err"],
            "pull_width_all": allp["std"],
            "pull_width_all_err": allp["std_err"],
            "n": len(ok),
            "failed": len(mine) - len(ok),
            "failures": failures,
        }
    return out


def paired_shift(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> dict[str, float]:
    """Fits ``(a, b)`` of the same samples: the mean of ``m_W(a) - m_W(b)`` with its error,
    the RMS of the differences and the mean change of the fit's error (MeV)."""
    shift = np.array([a["value_mev"] - b["value_mev"] for a, b in pairs])
    grow = np.array([a["error_mev"] - b["error_mev"] for a, b in pairs])
    rms = float(shift.std(ddof=1)) if len(shift) > 1 else math.nan
    return {
        "n": len(pairs),
        "shift_mev": float(shift.mean()),
        "shift_err_mev": rms / math.sqrt(len(shift)),
        "shift_rms_mev": rms,
        "error_change_mev": float(grow.mean()),
    }


def setup_variant_shifts(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """PE by PE, each setup variant (``bb-lite/NAME``, ``--setup-variant``) against the plain
    setup of the same fit variant on the same sample (:func:`paired_shift`)."""
    fits = {
        (r["variant"], r["seed"], r["mass_true_gev"], r.get("corrections")): r
        for r in converged(rows)
    }
    out: dict[str, dict[str, float]] = {}
    for name in sorted({r["variant"] for r in rows if "/" in r["variant"]}):
        base = name.split("/")[0]
        pairs = [
            (r, fits[(base, *key[1:])])
            for key, r in fits.items()
            if key[0] == name and (base, *key[1:]) in fits
        ]
        if pairs:
            out[name] = paired_shift(pairs)
    return out


def measured_minus_truth(
    rows: list[dict[str, Any]], kind: Callable[[dict[str, Any]], str]
) -> dict[str, dict[str, float]]:
    """Per fit variant, the same samples fitted with measured corrections and with the truth
    tables (``kind(row)``: ``"measured"`` or ``"truth"``) compared PE by PE
    (:func:`paired_shift`): what the calibration does, free of the samples' fluctuations."""
    fits: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for r in converged(rows):
        fits.setdefault((r["variant"], r["seed"], r["mass_true_gev"]), {})[kind(r)] = r
    out: dict[str, dict[str, float]] = {}
    for variant in sorted({k[0] for k in fits}):
        pairs = [
            (v["measured"], v["truth"])
            for k, v in fits.items()
            if k[0] == variant and {"measured", "truth"} <= set(v)
        ]
        if pairs:
            out[variant] = paired_shift(pairs)
    return out


def fit_only_table(rows: list[dict[str, Any]], shift_mev: float) -> dict[str, Any]:
    ok = converged(rows)
    ps = mean_and_width(np.array([r["pull"] for r in ok]))
    ds = mean_and_width(np.array([r["value_mev"] - r["_truth"] for r in ok]))
    warm = [r["fit_s"] for r in rows if r.get("warm")] or [r["fit_s"] for r in rows]
    return {
        "n": len(ok),
        "failed": len(rows) - len(ok),
        "shift_mev": shift_mev,
        **pull_columns(ps, ds),
        "mean_error_mev": float(np.mean([r["error_mev"] for r in ok])) if ok else math.nan,
        "mean_iterations": float(np.mean([r["n_iter"] for r in ok])) if ok else math.nan,
        "fit_s_mean": float(np.mean(warm)) if warm else math.nan,
        "failures": [
            {k: r.get(k) for k in ("toy", "seed", "status", "message")} for r in rows if r not in ok
        ],
    }


def timing_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean seconds per stage of a PE (once per PE, not per variant); warm PEs only when any."""
    pes: dict[int, dict[str, Any]] = {}
    for r in rows:
        pe = pes.setdefault(r["seed"], {"warm": r.get("warm", False), "pe_s": r.get("pe_s")})
        for k in ("generate_s", "histmaker_s", "setup_s", "calib_generate_s", "calibrate_s"):
            if r.get(k) is not None and not (isinstance(r[k], float) and math.isnan(r[k])):
                pe[k] = r[k]
        if r.get("fit_s") is not None:
            pe[f"fit_{r['variant']}_s"] = r["fit_s"]
    chosen = [p for p in pes.values() if p["warm"]] or list(pes.values())
    keys = (
        "generate_s",
        "histmaker_s",
        "setup_s",
        "fit_bb-lite_s",
        "fit_no-mc-stat_s",
        "pe_s",
        "calib_generate_s",
        "calibrate_s",
    )
    out: dict[str, Any] = {"n_pe": len(chosen), "warm_only": any(p["warm"] for p in pes.values())}
    for k in keys:
        vals = [p[k] for p in chosen if p.get(k) is not None]
        out[k] = float(np.mean(vals)) if vals else math.nan
    return out
