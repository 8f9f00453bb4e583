"""The worker side: functions run in the spawned worker processes (one full-chain
pseudo-experiment, one calibration of a seed, the fit-only sample, one fit-only toy)."""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.mwbias.common import (
    MW_REF_GEV,
    POI,
    VARIANTS,
    add_pull,
    describe,
    row_variants,
    variant_name,
)

__all__ = [
    "init_worker",
    "prepare_fit_only",
    "run_calibration",
    "run_pe",
    "run_toy",
    "setup_fit_args",
]

_WORKER: dict[str, Any] = {"tasks": 0, "models": {}}


def init_worker() -> None:
    """Import the chain once per worker (the imports are the expensive part of a command)."""
    t = time.perf_counter()
    warnings.filterwarnings("ignore", module="coffea")
    import analysis.generate  # noqa: F401
    import analysis.histmaker  # noqa: F401
    import analysis.setup_fit  # noqa: F401
    import fit.fitter  # noqa: F401

    _WORKER["import_s"] = time.perf_counter() - t


def setup_fit_args(hists: Path, out: Path, setup_args: Sequence[str]) -> argparse.Namespace:
    """``wmass setup-fit HISTS SETUP_ARGS --out OUT`` parsed by the command's own parser (so any
    option of setup-fit can be passed; ours come last and win)."""
    from analysis import setup_fit

    parser = argparse.ArgumentParser(prog="wmass setup-fit")
    setup_fit.add_arguments(parser)
    return parser.parse_args([str(hists), *setup_args, "--out", str(out)])


def _build_fit_input(
    directory: Path,
    seed: int,
    mass_gev: float,
    events: int,
    setup_args: Sequence[str],
    timings: dict[str, float],
    corrections: str | None = None,
) -> Path:
    """generate -> histmaker -> setup-fit in ``directory``; returns the fit input; the seconds
    of each step go into ``timings`` (those done so far, when a step fails)."""
    hists = _build_hists(directory, seed, mass_gev, events, timings, corrections)
    return _setup(hists, directory / "fitinput.h5", setup_args, timings)


def _setup(
    hists: Path, fitinput: Path, setup_args: Sequence[str], timings: dict[str, float]
) -> Path:
    """setup-fit of ``hists`` into ``fitinput``; its seconds go into ``timings["setup_s"]``."""
    from analysis import setup_fit

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="coffea")
        t = time.perf_counter()
        code = setup_fit.main(setup_fit_args(hists, fitinput, setup_args))
        if code:
            raise RuntimeError(f"setup-fit returned {code}")
        timings["setup_s"] = time.perf_counter() - t
    return fitinput


def _build_hists(
    directory: Path,
    seed: int,
    mass_gev: float,
    events: int,
    timings: dict[str, float],
    corrections: str | None = None,
) -> Path:
    """generate -> histmaker in ``directory``; returns hists.h5 (timings as above)."""
    from analysis.generate import generate_samples
    from analysis.histmaker import histmaker

    sink = io.StringIO()  # the steps' own printing would interleave with the parent's
    with contextlib.redirect_stdout(sink), warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="coffea")
        t = time.perf_counter()
        datasets = generate_samples(
            directory / "samples",
            events=events,
            seed=seed,
            mw=mass_gev,
            progress=False,
            command=f"benchmarks/mw_bias.py (generate seed={seed} mw={mass_gev})",
        )
        timings["generate_s"] = time.perf_counter() - t
        t = time.perf_counter()
        hists = directory / "hists.h5"
        histmaker(
            "wmass",
            datasets,
            hists,
            executor="iterative",
            progress=False,
            corrections=corrections,
            meta={"command": "benchmarks/mw_bias.py (histmaker)", "args": {"seed": seed}},
        )
        timings["histmaker_s"] = time.perf_counter() - t
    return hists


def _fit_poi(fit_input: Any, mc_stat: bool) -> dict[str, Any]:
    """One fit of the observed data from the nominal point: value, error, status of mW."""
    from fit import FitDidNotConverge, fit

    poi = fit_input.poi(POI)
    t = time.perf_counter()
    out: dict[str, Any] = {"value_mev": math.nan, "error_mev": math.nan, "n_iter": 0}
    try:
        res = fit(fit_input, mc_stat=mc_stat, yields=False, meta={})
    except FitDidNotConverge as err:
        if err.x is not None:
            out["value_mev"] = poi.report(float(err.x[fit_input.index(POI)]), 0.0)[0]
        out.update(status="not converged", message=err.reason, n_iter=err.n_iter)
    except Exception as err:  # noqa: BLE001 - any failure is recorded, the run goes on
        out.update(status="error", message=describe(err))
    else:
        p = res.pois[POI]
        out.update(value_mev=p["value"], error_mev=p["error"], n_iter=res.n_iter)
        ok = res.status == "converged" and math.isfinite(p["error"]) and p["error"] > 0
        out.update(status="converged" if ok else "not converged", message="" if ok else res.status)
    out["fit_s"] = time.perf_counter() - t
    return out


def run_pe(task: dict[str, Any]) -> list[dict[str, Any]]:
    """One full-chain pseudo-experiment: one row per fit variant (failures are rows too)."""
    from fit import FitInput

    t0 = time.perf_counter()
    warm = _WORKER["tasks"] > 0
    _WORKER["tasks"] += 1
    directory = Path(task["workdir"]) / f"pe_m{task['mass_gev']:.3f}_s{task['seed']}"
    base = {
        "mass_true_gev": task["mass_gev"],
        "seed": task["seed"],
        "worker_pid": os.getpid(),
        "warm": warm,
        "corrections": "measured" if task.get("corrections") else "truth",
        **task.get("calib_info", {}),
    }
    variants = [v for v in VARIANTS if v[0] in task.get("variants", [n for n, _ in VARIANTS])]
    setups = [("", [])] + [(n, list(a)) for n, a in task.get("setup_variants", [])]
    rows: list[dict[str, Any]] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        timings: dict[str, float] = {}
        try:
            hists = _build_hists(
                directory,
                task["seed"],
                task["mass_gev"],
                task["events"],
                timings,
                task.get("corrections"),
            )
        finally:
            base.update(timings)
        # every setup variant from the same hists.h5: their differences are free of the
        # sample's fluctuations
        for setup_name, extra in setups:
            mine: dict[str, float] = {}
            out = directory / (f"fitinput_{setup_name}.h5" if setup_name else "fitinput.h5")
            fitinput = _setup(hists, out, [*task["setup_args"], *extra], mine)
            fi = FitInput.read(fitinput)
            for variant, mc_stat in variants:
                name = variant_name(variant, setup_name)
                rows.append({**base, **mine, "variant": name, **_fit_poi(fi, mc_stat)})
    except Exception as err:  # noqa: BLE001 - reported with the seed, the run goes on
        message = describe(err)
        done = {r["variant"] for r in rows}
        for name in row_variants(task):
            if name not in done:
                rows.append({**base, "variant": name, "status": "error", "message": message})
    finally:
        if not task["keep"]:
            shutil.rmtree(directory, ignore_errors=True)
    for row in rows:
        row["pe_s"] = time.perf_counter() - t0
        add_pull(row, 1000.0 * task["mass_gev"])
    return rows


def run_calibration(task: dict[str, Any]) -> dict[str, Any]:
    """The measured corrections of one seed: a Z -> mu mu calibration sample with the seed's
    detector truth and events of its own (``wmass generate --calibration-sample``), then
    ``wmass calibrate`` on it; returns the payload's path and the timings."""
    from analysis.calibrate import calibrate
    from analysis.generate import generate_samples

    _WORKER["tasks"] += 1
    directory = Path(task["workdir"]) / f"calib_s{task['seed']}"
    directory.mkdir(parents=True, exist_ok=True)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        t = time.perf_counter()
        datasets = generate_samples(
            directory / "samples",
            events=task["calib_events"],
            seed=task["seed"],
            processes=["zmumu"],
            progress=False,
            command=f"benchmarks/mw_bias.py (calibration sample seed={task['seed']})",
        )
        generate_s = time.perf_counter() - t
        t = time.perf_counter()
        cal = calibrate(datasets)
        paths = cal.write(directory / "calib.json")
        calibrate_s = time.perf_counter() - t
    if not task["keep"]:
        shutil.rmtree(directory / "samples", ignore_errors=True)
    return {
        "corrections": str(paths["payload"]),
        "calib_generate_s": generate_s,
        "calibrate_s": calibrate_s,
        "scale_err_mean": float(np.mean(cal.scale.error)),
        "timings": cal.timings,
    }


def prepare_fit_only(task: dict[str, Any]) -> dict[str, Any]:
    """The fit-only ensemble's one sample: generate, fill, set up; returns the fit input path."""
    _WORKER["tasks"] += 1
    t0 = time.perf_counter()
    directory = Path(task["workdir"]) / f"fitonly_s{task['seed']}"
    directory.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    fitinput = _build_fit_input(
        directory, task["seed"], MW_REF_GEV, task["events"], task["setup_args"], timings
    )
    from fit import FitInput

    offset = float(FitInput.read(fitinput).poi(POI).offset)  # the reported mW at theta = 0
    return {
        "fitinput": str(fitinput),
        "directory": str(directory),
        "poi_offset_mev": offset,
        **timings,
        "total_s": time.perf_counter() - t0,
    }


def _toy_model(path: str, shift_mev: float) -> dict[str, Any]:
    """The fit input, its BB-lite model and the expected yields at the shifted mass (cached per
    worker: built once, reused by every toy this worker fits)."""
    key = (path, shift_mev)
    if key not in _WORKER["models"]:
        from fit import FitInput, make_model

        fi = FitInput.read(path)
        model = make_model(fi, "sparse", mc_stat=True)
        poi = fi.poi(POI)
        if poi.kind != "nuisance":
            raise RuntimeError(f"POI {POI} is of kind {poi.kind!r}, expected 'nuisance'")
        i = fi.index(POI)
        x_gen = np.zeros(model.K)
        x_gen[i] = shift_mev / poi.scale
        expected = model.yields(x_gen).sum(axis=1)
        _WORKER["models"] = {
            key: {
                "fi": fi,
                "model": model,
                "x_gen": x_gen,
                "i": i,
                "poi": poi,
                "expected": expected,
            }
        }
    return _WORKER["models"][key]


def run_toy(task: dict[str, Any]) -> dict[str, Any]:
    """One fit-only toy: Poisson data from the model at the shifted mass, a BB-lite fit."""
    from fit import FitDidNotConverge, make_model, minimize_model
    from fit.toys import generate_toy
    from fit.uncertainties import covariance

    warm = _WORKER["tasks"] > 0
    _WORKER["tasks"] += 1
    row: dict[str, Any] = {
        "toy": task["toy"],
        "seed": task["seed"],
        "shift_mev": task["shift_mev"],
        "value_mev": math.nan,
        "error_mev": math.nan,
        "n_iter": 0,
        "warm": warm,
        "message": "",
    }
    t = time.perf_counter()
    try:
        m = _toy_model(task["fitinput"], task["shift_mev"])
        model, i, poi = m["model"], m["i"], m["poi"]
        rng = np.random.default_rng([task["seed"], task["toy"]])
        toy = generate_toy(
            m["expected"], model.mask, m["x_gen"], model.constrained, model.kstat, rng
        )
        inputs = {"data": toy["data"]}
        if task["globals"] in ("random", "theta0"):
            inputs["theta0"] = toy["theta0"]
        if task["globals"] in ("random", "beta0"):
            inputs["beta0"] = toy["beta0"]
        t = time.perf_counter()  # the fit alone: model build + minimise + covariance
        tm = make_model(m["fi"], "sparse", mc_stat=True, **inputs)
        res = minimize_model(tm)  # from x = 0: the nominal, never the generating point
        cov = covariance(res["hess"], res.get("factor"))
        value, error = poi.report(float(res["x"][i]), float(np.sqrt(cov[i, i])))
        ok = math.isfinite(error) and error > 0
        row.update(value_mev=value, error_mev=error, n_iter=res["n_iter"])
        row["status"] = "converged" if ok else "not converged"
        row["message"] = "" if ok else "non-finite error"
    except FitDidNotConverge as err:
        row.update(status="not converged", message=err.reason, n_iter=err.n_iter)
    except Exception as err:  # noqa: BLE001 - recorded, the ensemble goes on
        row.update(status="error", message=describe(err))
    row["fit_s"] = time.perf_counter() - t
    add_pull(row, task["poi_offset_mev"] + task["shift_mev"])
    return row
