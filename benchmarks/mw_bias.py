"""W-mass bias benchmark: full-chain pseudo-experiments at several true masses, and a fit-only
toy ensemble, to measure the bias, the pull width and the linearity of the measured m_W.

    .venv/bin/python benchmarks/mw_bias.py                      # defaults: ~10 min on 2 cores
    .venv/bin/python benchmarks/mw_bias.py --events 200000 --n 200 --fit-only 1000 --jobs 2
    .venv/bin/python benchmarks/mw_bias.py --events 1000000 --n 50 --fit-only 0
    .venv/bin/python benchmarks/mw_bias.py --setup-args "--raw-mass-templates" --fit-only 0
    .venv/bin/python benchmarks/mw_bias.py --tables a.csv b.csv      # the tables of earlier runs

**Full chain.** Every pseudo-experiment (PE) runs ``generate`` (MC at the reference mass
80.379 GeV with its mass weights, data at the true mass), ``histmaker`` (iterative executor),
``setup-fit`` (with ``--setup-args``) and ``fit``, in-process in a long-lived worker process
(``--jobs`` of them, spawned once: imports and JIT compilation are paid once per worker, not
once per step as with four ``wmass`` commands). Each PE has its own generator seed, so its
data and its MC are independent of every other PE: seed = ``--seed`` + i * n_masses + j for
the i-th PE at the j-th mass (so a run with a larger ``--n`` repeats the PEs of a smaller one;
to add statistics to an earlier run, start at ``--seed`` + n * n_masses of that run). The fit
input of each PE is fitted twice, from the nominal point: with Barlow-Beeston-lite
(``bb-lite``, the default of ``wmass fit``) and without the MC statistical uncertainty
(``no-mc-stat``, ``wmass fit --no-mc-stat``).

**Paired** (``--paired``): PE i uses the seed ``--seed`` + i at every true mass, so its MC is
the same at every mass and its data are the same events with the W masses shifted (the
generator draws the Breit-Wigner mass by inverting its CDF with the same uniform numbers;
the event counts do not depend on the mass). The statistical fluctuations then largely cancel
in the response to the mass: the slope is fitted per seed over the masses and averaged
(``paired slope``, +- std / sqrt(N)), which measures the linearity far more precisely than
independent samples (at 200k events one PE has sigma ~140 MeV against a lever arm of +-100
MeV). The per-mass pull statistics stay valid; the mean pull over all masses is then not N
independent samples (its printed error is too small by up to sqrt(n_masses)).

Columns of the table printed per variant (one row per true mass; only converged fits enter):

- ``N``: converged fits; ``failed``: PEs that failed or did not converge (listed below it);
- ``mean pull``: mean of (m_fit - m_true) / sigma_fit, +- its error std / sqrt(N);
- ``pull width``: standard deviation of the pulls, +- std / sqrt(2 (N - 1));
- ``<m_fit - m_true>``: mean shift in MeV, +- std / sqrt(N);
- ``<sigma_fit>``: mean fitted uncertainty in MeV.

Below each table: the linearity fit m_fit - m_ref = offset + slope * (m_true - m_ref) (MeV;
weighted least squares over all converged PEs with weights 1 / sigma_fit^2; the errors are
scaled by sqrt(chi2/ndf) when that exceeds 1), the mean pull over all masses and the wall time.

**Fit only** (``--fit-only N``). One MC + data sample (seed ``--seed`` - 1, data at the
reference mass) is generated, filled and set up once. Each of the N toys draws Poisson data
from the fit model's own expected yields (``fit.make_model(...).yields(x)``) with the mW
parameter at ``--fit-only-shift`` (default +50 MeV, theta = 0.5 for the setup's 100 MeV
scale) and every other parameter at its nominal value, and fits it with BB-lite from the
nominal point. The toy data follow the model exactly, so any bias seen here is the fitter's
(or the likelihood's), not the templates'. ``--toy-globals``: ``fixed`` (default) keeps the
global observables at nominal (only the data fluctuate: the mean pull should be 0, the pull
width is at most 1, below it by the share of the constraints in the error); ``random``
randomises them as ``wmass fit -t N`` does (Gaussian constraints: theta0 ~ N(0, 1); BB-lite:
beta0 ~ Gamma(k, 1/k)), the pull width should then be 1; ``theta0`` / ``beta0`` randomise only
one kind. The toys' data are the same Poisson draws whatever ``--toy-globals`` (same seed), so
runs with different choices are paired.

Targets of the issue: 200k events with >= 200 PEs per mass and 1M events with >= 50 PEs per
mass for the full chain; 1000 fit-only toys with |mean pull| <= 0.05. The defaults are small
(~10 min on 2 otherwise idle cores); at 200k events a PE costs ~40-60 s of one core in a
warm worker (generate ~2 s, histmaker ~9 s, setup-fit ~9 s, each fit ~8 s but up to ~30 s
when the minimiser needs ~100 iterations) against ~70 s as five ``wmass`` commands, and one
toy fit ~5-9 s. Wall time ~ (N_PE x 50 s + N_toys x 7 s) / --jobs.

**Tables of earlier runs** (``--tables CSV [CSV ...]``): nothing is run; the chain CSVs given
(``NAME.csv``) are read, joined and tabulated as one ensemble (the seeds must not repeat), and
the fit-only CSVs (``NAME_fitonly.csv``) likewise.

Outputs in ``--out`` (default benchmarks/results/mw_bias/), each written atomically:
``NAME.csv`` (every PE and variant: mass, seed, value, error, pull, status, timings; rewritten
as PEs finish), ``NAME_fitonly.csv`` (every toy) and ``NAME.json`` (the tables, the linearity
fits, the timings and a provenance block: command line, time, git commit, package versions).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as _dt
import io
import json
import math
import multiprocessing
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

# run as a script, benchmarks/ is first on sys.path and benchmarks/fit.py would shadow the
# fit package: put the project root there instead (spawned workers inherit this sys.path)
_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

MW_REF_GEV = 80.379  # the reference mass of the MC (analysis.generate.MW_REF)
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

# ---------------------------------------------------------------------------------------------
# worker side: these run in the spawned worker processes
# ---------------------------------------------------------------------------------------------

_WORKER: dict[str, Any] = {"tasks": 0, "models": {}}


def _init_worker() -> None:
    """Import the chain once per worker (the imports are the expensive part of a command)."""
    t = time.perf_counter()
    warnings.filterwarnings("ignore", module="coffea")
    import analysis.generate  # noqa: F401
    import analysis.histmaker  # noqa: F401
    import analysis.setup_fit  # noqa: F401
    import fit.fitter  # noqa: F401

    _WORKER["import_s"] = time.perf_counter() - t


def _setup_fit_args(hists: Path, out: Path, setup_args: Sequence[str]) -> argparse.Namespace:
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
) -> Path:
    """generate -> histmaker -> setup-fit in ``directory``; returns the fit input; the seconds
    of each step go into ``timings`` (those done so far, when a step fails)."""
    from analysis import setup_fit
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
            meta={"command": "benchmarks/mw_bias.py (histmaker)", "args": {"seed": seed}},
        )
        timings["histmaker_s"] = time.perf_counter() - t
        t = time.perf_counter()
        fitinput = directory / "fitinput.h5"
        code = setup_fit.main(_setup_fit_args(hists, fitinput, setup_args))
        if code:
            raise RuntimeError(f"setup-fit returned {code}")
        timings["setup_s"] = time.perf_counter() - t
    return fitinput


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
        out.update(status="error", message=_describe(err))
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
    }
    rows: list[dict[str, Any]] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
        timings: dict[str, float] = {}
        try:
            fitinput = _build_fit_input(
                directory,
                task["seed"],
                task["mass_gev"],
                task["events"],
                task["setup_args"],
                timings,
            )
        finally:
            base.update(timings)
        fi = FitInput.read(fitinput)
        for variant, mc_stat in VARIANTS:
            rows.append({**base, "variant": variant, **_fit_poi(fi, mc_stat)})
    except Exception as err:  # noqa: BLE001 - reported with the seed, the run goes on
        message = _describe(err)
        done = {r["variant"] for r in rows}
        for variant, _ in VARIANTS:
            if variant not in done:
                rows.append({**base, "variant": variant, "status": "error", "message": message})
    finally:
        if not task["keep"]:
            shutil.rmtree(directory, ignore_errors=True)
    for row in rows:
        row["pe_s"] = time.perf_counter() - t0
        _add_pull(row, 1000.0 * task["mass_gev"])
    return rows


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
        row.update(status="error", message=_describe(err))
    row["fit_s"] = time.perf_counter() - t
    _add_pull(row, task["poi_offset_mev"] + task["shift_mev"])
    return row


def _describe(err: BaseException) -> str:
    """``Type: message (at file:line in function)`` of the innermost frame."""
    frames = traceback.extract_tb(err.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name})"
    return f"{type(err).__name__}: {err}" + (where if frames else "")


def _add_pull(row: dict[str, Any], truth_mev: float) -> None:
    v, e = row.get("value_mev", math.nan), row.get("error_mev", math.nan)
    ok = row.get("status") == "converged" and math.isfinite(v) and math.isfinite(e) and e > 0
    row["pull"] = (v - truth_mev) / e if ok else math.nan


# ---------------------------------------------------------------------------------------------
# parent side: scheduling, statistics, tables, outputs
# ---------------------------------------------------------------------------------------------


class Pool:
    """A spawned worker pool with a bounded number of tasks in flight; a worker that dies (e.g.
    out of memory) breaks the pool: it is rebuilt and the interrupted tasks run once more."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.context = multiprocessing.get_context("spawn")
        self.executor = self._new()
        self.queue: deque[tuple[Callable[[dict[str, Any]], Any], dict[str, Any], Callable]] = (
            deque()
        )
        self.pending: dict[Future, tuple[Callable, dict[str, Any], Callable]] = {}
        self.retried: set[int] = set()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.jobs, mp_context=self.context, initializer=_init_worker
        )

    def submit(
        self,
        fn: Callable[[dict[str, Any]], Any],
        task: dict[str, Any],
        done: Callable[[dict[str, Any], Any, BaseException | None], None],
    ) -> None:
        """Queue ``fn(task)``; ``done(task, result, error)`` is called in the parent."""
        self.queue.append((fn, task, done))

    def run(self) -> None:
        """Run until every queued task (and every task queued by a callback) is done."""
        while self.queue or self.pending:
            while self.queue and len(self.pending) < self.jobs + 1:
                fn, task, done = self.queue.popleft()
                self.pending[self.executor.submit(fn, task)] = (fn, task, done)
            finished, _ = wait(self.pending, return_when=FIRST_COMPLETED)
            broken = False
            for future in finished:
                fn, task, done = self.pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    broken = True
                    self._retry_or_fail(fn, task, done)
                except Exception as err:  # noqa: BLE001 - handed to the callback
                    done(task, None, err)
                else:
                    done(task, result, None)
            if broken:
                for future, (fn, task, done) in list(self.pending.items()):
                    future.cancel()
                    self._retry_or_fail(fn, task, done)
                self.pending.clear()
                self.executor.shutdown(wait=False, cancel_futures=True)
                print("  a worker died: pool restarted", file=sys.stderr, flush=True)
                self.executor = self._new()

    def _retry_or_fail(self, fn: Callable, task: dict[str, Any], done: Callable) -> None:
        key = id(task)
        if key in self.retried:
            done(task, None, RuntimeError("worker process died (twice)"))
        else:
            self.retried.add(key)
            self.queue.appendleft((fn, task, done))

    def shutdown(self, wait: bool = True) -> None:
        """Wait for the workers, or (``wait=False``, on an interrupt) stop them now."""
        if not wait:  # ProcessPoolExecutor has no public terminate before Python 3.14
            for proc in list((getattr(self.executor, "_processes", None) or {}).values()):
                proc.terminate()
        self.executor.shutdown(wait=wait, cancel_futures=True)


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


def _converged(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("status") == "converged" and math.isfinite(r["pull"])]


def chain_tables(
    rows: list[dict[str, Any]], masses: Sequence[float], ref_gev: float
) -> dict[str, Any]:
    """Per variant: per-mass statistics, failures, the linearity fit, the overall pull and,
    where seeds were run at several masses (``--paired``), the per-seed slope."""
    out: dict[str, Any] = {}
    for variant, _ in VARIANTS:
        mine = [r for r in rows if r["variant"] == variant]
        per_mass = []
        for m in masses:
            at = [r for r in mine if abs(r["mass_true_gev"] - m) < 1e-9]
            ok = _converged(at)
            pulls = np.array([r["pull"] for r in ok])
            shift = np.array([r["value_mev"] - 1000.0 * m for r in ok])
            err = np.array([r["error_mev"] for r in ok])
            ps, ds = mean_and_width(pulls), mean_and_width(shift)
            per_mass.append(
                {
                    "mass_true_gev": m,
                    "n": len(ok),
                    "failed": len(at) - len(ok),
                    "mean_pull": ps["mean"],
                    "mean_pull_err": ps["mean_err"],
                    "pull_width": ps["std"],
                    "pull_width_err": ps["std_err"],
                    "mean_shift_mev": ds["mean"],
                    "mean_shift_err_mev": ds["mean_err"],
                    "mean_error_mev": float(err.mean()) if len(err) else math.nan,
                }
            )
        ok = _converged(mine)
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


def fit_only_table(rows: list[dict[str, Any]], shift_mev: float) -> dict[str, Any]:
    ok = _converged(rows)
    ps = mean_and_width(np.array([r["pull"] for r in ok]))
    ds = mean_and_width(np.array([r["value_mev"] - r["_truth"] for r in ok]))
    warm = [r["fit_s"] for r in rows if r.get("warm")] or [r["fit_s"] for r in rows]
    return {
        "n": len(ok),
        "failed": len(rows) - len(ok),
        "shift_mev": shift_mev,
        "mean_pull": ps["mean"],
        "mean_pull_err": ps["mean_err"],
        "pull_width": ps["std"],
        "pull_width_err": ps["std_err"],
        "mean_shift_mev": ds["mean"],
        "mean_shift_err_mev": ds["mean_err"],
        "mean_error_mev": float(np.mean([r["error_mev"] for r in ok])) if ok else math.nan,
        "mean_iterations": float(np.mean([r["n_iter"] for r in ok])) if ok else math.nan,
        "fit_s_mean": float(np.mean(warm)) if warm else math.nan,
        "failures": [
            {k: r.get(k) for k in ("toy", "seed", "status", "message")} for r in rows if r not in ok
        ],
    }


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


def timing_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean seconds per stage of a PE (once per PE, not per variant); warm PEs only when any."""
    pes: dict[int, dict[str, Any]] = {}
    for r in rows:
        pe = pes.setdefault(r["seed"], {"warm": r.get("warm", False), "pe_s": r.get("pe_s")})
        for k in ("generate_s", "histmaker_s", "setup_s"):
            if r.get(k) is not None:
                pe[k] = r[k]
        if r.get("fit_s") is not None:
            pe[f"fit_{r['variant']}_s"] = r["fit_s"]
    chosen = [p for p in pes.values() if p["warm"]] or list(pes.values())
    keys = ("generate_s", "histmaker_s", "setup_s", "fit_bb-lite_s", "fit_no-mc-stat_s", "pe_s")
    out: dict[str, Any] = {"n_pe": len(chosen), "warm_only": any(p["warm"] for p in pes.values())}
    for k in keys:
        vals = [p[k] for p in chosen if p.get(k) is not None]
        out[k] = float(np.mean(vals)) if vals else math.nan
    return out


def _write_atomic(path: Path, text: str) -> None:
    from fit.provenance import atomic_write_text

    atomic_write_text(path, text)


def _csv_text(rows: list[dict[str, Any]], fields: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
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


def _join_setup_args(argv: Sequence[str]) -> list[str]:
    """``--setup-args --raw-mass-templates`` -> ``--setup-args=--raw-mass-templates`` (argparse
    would otherwise read the value as an option of ours)."""
    out, it = [], iter(argv)
    for a in it:
        nxt = next(it, None) if a == "--setup-args" else None
        out.append(a if nxt is None else f"--setup-args={nxt}")
    return out


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
        keys = [(r["seed"], r["mass_true_gev"], r["variant"]) for r in chain]
        if len(set(keys)) != len(keys):
            print(
                "mw_bias: --tables: a seed repeats at one mass (the same PE twice)", file=sys.stderr
            )
            return 2
        masses = sorted({r["mass_true_gev"] for r in chain})
        print(f"{len(chain) // len(VARIANTS)} pseudo-experiments from {len(paths)} file(s)")
        print_chain(chain_tables(chain, masses, MW_REF_GEV), MW_REF_GEV, math.nan)
    if toys:
        shift = float(np.nanmean([r["shift_mev"] for r in toys]))
        for r in toys:
            r["_truth"] = r["value_mev"] - r["pull"] * r["error_mev"]
        print_fit_only(fit_only_table(toys, shift), "as in the run")
    return 0


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "--masses",
        default=f"{MW_REF_GEV - 0.1:.3f},{MW_REF_GEV:.3f},{MW_REF_GEV + 0.1:.3f}",
        help="comma-separated true W masses of the data in GeV, within +-100 MeV of the "
        f"reference {MW_REF_GEV} (the MC mass weights span +-100 MeV) (default: %(default)s)",
    )
    ap.add_argument(
        "--events",
        type=lambda s: int(float(s)),
        default=200_000,
        help="MC events per pseudo-experiment (wmass generate --events; the data has 1/4 of "
        "the signal MC's W events) (default: %(default)s)",
    )
    ap.add_argument(
        "--n",
        type=int,
        default=6,
        help="full-chain pseudo-experiments per true mass; the issue's targets are >= 200 "
        "at 200k events and >= 50 at 1M events (default: %(default)s)",
    )
    ap.add_argument(
        "--fit-only",
        type=int,
        default=40,
        metavar="N",
        help="fit-only toys (0: skip); the issue's target is 1000 toys with |mean pull| <= "
        "0.05 (default: %(default)s)",
    )
    ap.add_argument(
        "--fit-only-shift",
        type=float,
        default=50.0,
        metavar="MEV",
        help="mass shift of the fit-only toys from the reference, MeV (default: %(default)s)",
    )
    ap.add_argument(
        "--toy-globals",
        choices=("fixed", "random", "theta0", "beta0"),
        default="fixed",
        help="fit-only toys: keep the global observables nominal (only the data fluctuate), "
        "randomise them all (as wmass fit -t N), or only the Gaussian constraints' (theta0) "
        "or only BB-lite's (beta0) (default: %(default)s)",
    )
    ap.add_argument(
        "--seed",
        type=int,
        default=1000,
        help="base seed: PE i at mass j uses seed + i * n_masses + j (--paired: seed + i), the "
        "fit-only sample "
        "seed - 1 (default: %(default)s)",
    )
    ap.add_argument(
        "--tables",
        nargs="+",
        type=Path,
        metavar="CSV",
        help="run nothing: print the tables of earlier runs' CSV files, joined",
    )
    ap.add_argument(
        "--paired",
        action="store_true",
        help="PE i uses the seed --seed + i at every mass: the same MC and the same data events "
        "at shifted W masses; adds a per-seed slope that measures the linearity precisely",
    )
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default: %(default)s)")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/OpenMP threads per worker (the workers already fill the cores) "
        "(default: %(default)s)",
    )
    ap.add_argument(
        "--setup-args",
        default="",
        help='extra arguments of wmass setup-fit, e.g. --setup-args="--raw-mass-templates" '
        "(applied to the PEs and the fit-only sample)",
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the pseudo-experiments' files go (default: a temporary directory)",
    )
    ap.add_argument(
        "--keep", action="store_true", help="keep each PE's files (default: deleted after it)"
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=_HERE / "results" / "mw_bias",
        help="directory of the CSV and JSON outputs (default: benchmarks/results/mw_bias/)",
    )
    ap.add_argument(
        "--name",
        default=None,
        help="base name of the outputs (default: mw_bias_<events>ev_<UTC time>)",
    )
    args = ap.parse_args(_join_setup_args(argv))
    try:
        args.mass_list = [float(m) for m in args.masses.split(",") if m.strip()]
    except ValueError:
        ap.error(f"--masses {args.masses!r}: give comma-separated numbers in GeV")
    if not args.mass_list:
        ap.error("--masses: give at least one mass")
    far = [m for m in args.mass_list if abs(m - MW_REF_GEV) > 0.1 + 1e-9]
    if far:
        ap.error(f"--masses {far}: outside {MW_REF_GEV} +- 0.100 GeV (the mass weights' range)")
    if args.n < 0 or args.fit_only < 0 or args.jobs < 1 or args.events < 1:
        ap.error("--n, --fit-only must be >= 0, --jobs and --events >= 1")
    args.setup_list = shlex.split(args.setup_args)
    try:  # validate with setup-fit's own parser now, not in every worker
        with contextlib.redirect_stderr(io.StringIO()) as err:
            _setup_fit_args(Path("hists.h5"), Path("fitinput.h5"), args.setup_list)
    except SystemExit:
        msg = err.getvalue().strip().splitlines()
        ap.error(f"--setup-args {args.setup_args!r}: {msg[-1] if msg else 'invalid'}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.tables:
        return tables_of(args.tables)
    start = time.perf_counter()
    prov = provenance([sys.argv[0], *argv])
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = args.name or f"mw_bias_{args.events}ev_{stamp}"
    out_csv = args.out / f"{name}.csv"
    out_toys = args.out / f"{name}_fitonly.csv"
    out_json = args.out / f"{name}.json"
    for var in THREAD_VARS:  # inherited by the spawned workers
        os.environ[var] = str(args.threads)
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="mw_bias_")) if temporary else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    masses = args.mass_list
    n_pe = args.n * len(masses)
    print(
        f"mw_bias: {args.n} PEs x {len(masses)} masses at {args.events:,} events, "
        f"{args.fit_only} fit-only toys, {args.jobs} workers; workdir {workdir}; "
        f"outputs {args.out}/{name}.*",
        file=sys.stderr,
        flush=True,
    )

    chain_rows: list[dict[str, Any]] = []
    toy_rows: list[dict[str, Any]] = []
    fit_only_info: dict[str, Any] = {}
    pool = Pool(args.jobs)
    common = {
        "workdir": str(workdir),
        "events": args.events,
        "keep": args.keep,
        "setup_args": args.setup_list,
    }

    def pe_done(task: dict[str, Any], rows: Any, error: BaseException | None) -> None:
        if error is not None:  # the worker function itself catches; this is the pool failing
            rows = [
                {
                    "variant": v,
                    "mass_true_gev": task["mass_gev"],
                    "seed": task["seed"],
                    "status": "error",
                    "message": f"{type(error).__name__}: {error}",
                    "pull": math.nan,
                }
                for v, _ in VARIANTS
            ]
        chain_rows.extend(rows)
        done = len({(r["seed"], r["mass_true_gev"]) for r in chain_rows})
        parts = []
        if len(rows) > 1 and len({(r.get("status"), r.get("message")) for r in rows}) == 1:
            rows_shown = rows[:1] if rows[0].get("status") != "converged" else rows
        else:
            rows_shown = rows
        for r in rows_shown:
            if r.get("status") == "converged":
                parts.append(
                    f"{r['variant']} {r['value_mev']:.0f} ± {r['error_mev']:.0f} "
                    f"(pull {r['pull']:+.2f}, {r['fit_s']:.0f} s)"
                )
            else:
                who = r["variant"] if rows_shown is rows else "all variants"
                parts.append(f"{who} {r.get('status')}: {r.get('message', '')}")
        pe_s = rows[0].get("pe_s", math.nan) if rows else math.nan
        print(
            f"  [{done}/{n_pe}] m_true {task['mass_gev']:.3f} seed {task['seed']}: "
            + "; ".join(parts)
            + f" [{pe_s:.0f} s]",
            file=sys.stderr,
            flush=True,
        )
        _write_atomic(out_csv, _csv_text(chain_rows, CHAIN_FIELDS))

    def toy_done(task: dict[str, Any], row: Any, error: BaseException | None) -> None:
        if error is not None:
            row = {
                "toy": task["toy"],
                "seed": task["seed"],
                "shift_mev": task["shift_mev"],
                "status": "error",
                "message": f"{type(error).__name__}: {error}",
                "pull": math.nan,
                "fit_s": math.nan,
            }
        row["_truth"] = task["poi_offset_mev"] + task["shift_mev"]
        toy_rows.append(row)
        if row.get("status") == "converged":
            what = f"{row['value_mev']:.1f} ± {row['error_mev']:.1f} (pull {row['pull']:+.2f})"
        else:
            what = f"{row.get('status')}: {row.get('message', '')}"
        print(
            f"  toy {len(toy_rows)}/{args.fit_only}: {what} [{row['fit_s']:.0f} s]",
            file=sys.stderr,
            flush=True,
        )
        _write_atomic(out_toys, _csv_text(toy_rows, TOY_FIELDS))

    def prepared(task: dict[str, Any], info: Any, error: BaseException | None) -> None:
        if error is not None:
            fit_only_info["error"] = f"{type(error).__name__}: {error}"
            print(f"  fit-only sample failed: {fit_only_info['error']}", file=sys.stderr)
            return
        fit_only_info.update(info)
        print(
            f"  fit-only sample ready ({fit_only_info['total_s']:.0f} s): {args.fit_only} toys",
            file=sys.stderr,
            flush=True,
        )
        for j in range(args.fit_only):
            toy = {
                "fitinput": info["fitinput"],
                "toy": j,
                "seed": args.seed - 1,
                "globals": args.toy_globals,
                "shift_mev": args.fit_only_shift,
                "poi_offset_mev": info["poi_offset_mev"],
            }
            pool.submit(run_toy, toy, toy_done)

    # the fit-only sample first (so its toys can start while PEs run), then the PEs interleaved
    # over the masses (a partial run covers every mass)
    if args.fit_only > 0:
        pool.submit(prepare_fit_only, {**common, "seed": args.seed - 1}, prepared)
    for i in range(args.n):
        for j, m in enumerate(masses):
            seed = args.seed + i if args.paired else args.seed + i * len(masses) + j
            task = {**common, "mass_gev": m, "seed": seed}
            pool.submit(run_pe, task, pe_done)
    interrupted = False
    try:
        pool.run()
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: tables of what finished", file=sys.stderr)
    finally:
        pool.shutdown(wait=not interrupted)
        if fit_only_info.get("directory") and not args.keep:
            shutil.rmtree(fit_only_info["directory"], ignore_errors=True)
        if temporary and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    wall = time.perf_counter() - start

    chain_rows.sort(key=lambda r: (r["mass_true_gev"], r["seed"], r["variant"]))
    toy_rows.sort(key=lambda r: r["toy"])
    result: dict[str, Any] = {
        "provenance": prov,
        "config": {
            "masses_gev": masses,
            "reference_gev": MW_REF_GEV,
            "events": args.events,
            "n_per_mass": args.n,
            "seed": args.seed,
            "paired": args.paired,
            "jobs": args.jobs,
            "threads": args.threads,
            "setup_args": args.setup_list,
            "fit_only": args.fit_only,
            "fit_only_shift_mev": args.fit_only_shift,
            "toy_globals": args.toy_globals,
            "interrupted": interrupted,
        },
        "wall_s": wall,
        "files": {"csv": str(out_csv), "fit_only_csv": str(out_toys) if toy_rows else None},
    }
    if chain_rows:
        _write_atomic(out_csv, _csv_text(chain_rows, CHAIN_FIELDS))
        tables = chain_tables(chain_rows, masses, MW_REF_GEV)
        result["chain"] = tables
        result["timing_per_pe_s"] = timing_summary(chain_rows)
        print_chain(tables, MW_REF_GEV, wall)
        t = result["timing_per_pe_s"]
        steps = ", ".join(
            f"{label} {t[key]:.1f} s" if math.isfinite(t[key]) else f"{label} -"
            for label, key in (
                ("generate", "generate_s"),
                ("histmaker", "histmaker_s"),
                ("setup-fit", "setup_s"),
                ("fit bb-lite", "fit_bb-lite_s"),
                ("fit no-mc-stat", "fit_no-mc-stat_s"),
                ("total", "pe_s"),
            )
        )
        which = "warm workers" if t["warm_only"] else "incl. worker start-up"
        print(f"\ntime per PE ({which}, mean of {t['n_pe']}): {steps}")
    if args.fit_only > 0:
        if toy_rows:
            _write_atomic(out_toys, _csv_text(toy_rows, TOY_FIELDS))
            result["fit_only"] = fit_only_table(toy_rows, args.fit_only_shift)
            result["fit_only"]["sample"] = {
                k: fit_only_info.get(k)
                for k in ("generate_s", "histmaker_s", "setup_s", "total_s", "poi_offset_mev")
            }
            print_fit_only(result["fit_only"], args.toy_globals)
        else:
            result["fit_only"] = {"error": fit_only_info.get("error", "no toy finished")}
            print(f"\nfit only: {result['fit_only']['error']}")
    print(f"\nwall time {wall:.0f} s; wrote {out_json}")
    _write_atomic(out_json, json.dumps(_json_safe(result), indent=1) + "\n")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
