"""Fit benchmark: the synthetic W-mass-like model of the anchors note, fitted by each fitter.

Model (``synthetic_model(K)``): 2880 bins (2 charge x 48 eta x 30 pT), 10 processes (0 = W->mu nu
signal, 1-8 MC backgrounds, 9 = nonprompt), K log-normal nuisances:

- 10 normalisations (lnN 1.02-1.10), one per process, on all bins;
- 1 mass shape: the unconstrained POI ``mW`` (+-100 MeV templates of a smeared Jacobian peak);
- 20% of K "theory": smooth random pT x eta shapes on all bins of the signal (half of them also on
  Z->mu mu);
- 10% of K per eta slice (both charges, all pT) on all MC; 5% of K per charge x eta slice on the
  nonprompt process; the rest per charge x eta slice on all MC.

At K=4859 that is 3.8% non-zero of the [2880, 10, K] log-kappa (the note's 3.7%). Poisson
pseudo-data (6.9e7 events) from known shifts: mW +20 MeV and nuisances drawn from N(0, 0.5).

Each fitter runs in its own subprocess (so peak RSS is per fitter) with a timeout. ``cpu_s`` is
the CPU time of the fitter (all BLAS threads) and ``load`` the 1-minute load average at its end:
on a shared machine wall times are inflated by the load, CPU time much less so.

- ``ours``: the structured sparse likelihood, trust-region Newton with the exact Hessian
  (``fit.fit``, minimizer ``trust``): fit, covariance (H^-1), traditional + group + global impacts;
- ``ours-cg``: the same likelihood with Steihaug CG on Hessian-vector products, then the Hessian;
- ``dense``: the dense JAX float64 reference (``fit.DenseModel``): scipy trust-krylov with
  autodiff HVPs; covariance by ``jax.hessian`` up to K=1000; above that only the mW error, from a
  conjugate-gradient solve ``H s = e_mW`` with HVPs (a full dense Hessian needs > 7 GB);
- ``minuit``: iminuit MIGRAD (strategy 1, exact gradient) + HESSE;
- pyhf rows: ``benchmarks/fit_pyhf.py::pyhf_rows(make_fit_input, ks, timeout)`` (H2b) if present;
  it returns rows with the same keys as :data:`COLUMNS`.

The answer of every fitter is compared with ``dense`` (max |x - x_dense| / sigma over all
parameters, and the relative difference of the mW error).

    python benchmarks/fit.py                      # K = 200, 1000, 4859
    python benchmarks/fit.py --k 200,1000 --fitters ours,dense --timeout 300
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from analysis.constants import MW_REF as MW  # noqa: E402
from fit import POI, Channel, FitInput  # noqa: E402

COLUMNS = (
    "fitter",
    "K",
    "build_s",
    "fit_s",
    "cov_s",
    "impacts_s",
    "total_s",
    "rss_gb",
    "iters",
    "mW",
    "mW_err",
    "note",
)
FITTERS = ("ours", "ours-cg", "dense", "minuit")

N_PT, N_ETA, N_CH, N_PROC = 30, 48, 2, 10


def _signal_pt(mw: float, edges: np.ndarray) -> np.ndarray:
    from scipy import special

    c = 0.5 * (1 + special.erf((edges - mw / 2) / (2.5 * np.sqrt(2)))) * 0.6 + edges / 60.0
    return np.diff(c)


def synthetic_model(K: int, seed: int = 1) -> tuple[FitInput, np.ndarray]:
    """The benchmark model with Poisson pseudo-data; returns ``(fit_input, x_true)``."""
    rng = np.random.default_rng(seed)
    B, P = N_PT * N_ETA * N_CH, N_PROC
    pt_edges = np.linspace(26.0, 56.0, N_PT + 1)
    ptc = 0.5 * (pt_edges[1:] + pt_edges[:-1])
    ipt = np.tile(np.arange(N_PT), N_ETA * N_CH)  # b = (charge * 48 + eta) * 30 + pt
    ieta = np.tile(np.repeat(np.arange(N_ETA), N_PT), N_CH)
    ich = np.repeat(np.arange(N_CH), N_ETA * N_PT)
    slice_ce = ich * N_ETA + ieta
    u = (ptc[ipt] - 41.0) / 15.0  # pT in [-1, 1]
    v = (ieta - 23.5) / 23.5  # eta in [-1, 1]
    frac = np.array([0.75, 0.03, 0.06, 0.01, 0.02, 0.005, 0.01, 0.004, 0.001, 0.11])
    shape_sig = _signal_pt(MW, pt_edges)[ipt] * (1 - 0.15 * v**2) * np.where(ich == 0, 0.45, 0.55)
    shape_bkg = np.exp(-u) * (1 - 0.1 * v**2)
    shape_np = np.exp(-2.0 * (u + 1)) * (1 - 0.05 * v**2)
    shapes = np.stack([shape_sig] + [shape_bkg] * 8 + [shape_np], axis=1)
    nominal = 6.9e7 * frac * shapes / shapes.sum(axis=0)
    mc = np.arange(9)

    rows, cols, vals = [], [], []

    def add(k, bins, procs, logk):
        bins = np.asarray(bins)
        for j, p in enumerate(np.atleast_1d(procs)):
            lk = logk if np.ndim(logk) <= 1 else logk[j]
            rows.append(bins * P + p)
            cols.append(np.full(bins.size, k))
            vals.append(np.broadcast_to(lk, bins.shape).astype(np.float64))

    names, constraint, group = [], [], []

    def param(name, grp, cons="gaussian"):
        names.append(name)
        constraint.append(cons)
        group.append(grp)
        return len(names) - 1

    allb = np.arange(B)
    k = param("mW", "POI", "none")
    up = _signal_pt(MW + 0.1, pt_edges) / _signal_pt(MW, pt_edges)
    add(k, allb, 0, np.log(up)[ipt])
    for p in range(P):
        k = param(f"norm_p{p}", "normalisation")
        add(k, allb, p, np.log(1.02 + 0.08 * p / 9))
    n_th, n_eta, n_np = round(0.2 * K), round(0.1 * K), round(0.05 * K)
    n_rest = K - 11 - n_th - n_eta - n_np
    if n_rest < 0:
        raise ValueError(f"K={K} is too small for this model")
    for j in range(n_th):
        k = param(f"theory{j}", "theory")
        a = rng.normal(0, 0.01, 4)
        lk = a[0] * u + a[1] * (2 * u * u - 1) + a[2] * v * v + a[3] * u * v
        add(k, allb, 0 if j % 2 else [0, 2], lk if j % 2 else np.stack([lk, 0.5 * lk]))
    for j in range(n_eta):
        k = param(f"effsyst_eta{j % N_ETA}_{j // N_ETA}", "muon efficiency")
        bins = np.flatnonzero(ieta == j % N_ETA)
        a = rng.normal(0, 0.005, 2)
        add(k, bins, mc, np.broadcast_to(a[0] + a[1] * u[bins], (mc.size, bins.size)))
    for j in range(n_np):
        k = param(f"nonprompt_ce{j % 96}_{j // 96}", "nonprompt")
        bins = np.flatnonzero(slice_ce == j % 96)
        a = rng.normal(0, 0.05, 2)
        add(k, bins, 9, a[0] + a[1] * u[bins])
    for j in range(n_rest):
        k = param(f"effstat_ce{j % 96}_{j // 96}", "muon efficiency stat")
        bins = np.flatnonzero(slice_ce == j % 96)
        a = rng.normal(0, 0.003, 2)
        add(k, bins, mc, np.broadcast_to(a[0] + a[1] * u[bins], (mc.size, bins.size)))
    logk = sp.csr_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(B * P, K)
    )
    x_true = np.zeros(K)
    x_true[0] = 0.2
    x_true[1:] = rng.normal(0, 0.5, K - 1)
    eta = logk @ x_true
    expected = (nominal.ravel() * np.exp(eta)).reshape(B, P).sum(axis=1)
    data = rng.poisson(expected).astype(np.float64)
    axes = (
        {"name": "charge", "edges": [-2.0, 0.0, 2.0]},
        {"name": "eta", "edges": list(np.linspace(-2.4, 2.4, N_ETA + 1))},
        {"name": "pt", "edges": list(pt_edges)},
    )
    fi = FitInput(
        channels=[Channel("sr", 0, B, False, axes)],
        processes=["Wmunu"] + [f"bkg{i}" for i in range(1, 9)] + ["nonprompt"],
        signal=np.array([True] + [False] * 9),
        data=data,
        nominal=nominal,
        parameters=names,
        constraints=np.array(constraint),
        groups=np.array(group),
        logk_up=logk,
        pois=[POI("mW", "nuisance", MW * 1000, 100.0, "MeV")],
    )
    return fi, x_true


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _worker(fitter: str, K: int, out: str) -> dict:
    t0 = time.perf_counter()
    fi, x_true = synthetic_model(K)
    row = {"fitter": fitter, "K": K, "note": ""}
    cpu0 = _cpu_s()
    if fitter in ("ours", "ours-cg", "minuit"):
        from fit import fit

        minimizer = {"ours": "trust", "ours-cg": "cg", "minuit": "minuit"}[fitter]
        t = time.perf_counter()
        res = fit(
            fi, impacts=True, global_impacts=True, yields=False, minimizer=minimizer, tol=1e-13
        )
        total = time.perf_counter() - t
        tm = res.timings
        row.update(
            build_s=tm["build"],
            fit_s=tm["minimize"],
            cov_s=tm["covariance"],
            impacts_s=tm.get("impacts", 0) + tm.get("global_impacts", 0),
            total_s=total,
            iters=res.n_iter,
            mW=res.pois["mW"]["value"],
            mW_err=res.pois["mW"]["error"],
        )
        gi = res.global_impacts["mW"]
        row["note"] = f"edm {res.edm:.1e}; global impacts add to {gi['total']:.3f} MeV"
        values, errors = res.values, res.errors
    elif fitter == "dense":
        from scipy.optimize import minimize as sp_minimize
        from scipy.sparse.linalg import LinearOperator, cg

        from fit import DenseModel

        t = time.perf_counter()
        m = DenseModel(fi)
        m.value_and_grad(np.zeros(K))
        m.hessp(np.zeros(K), np.ones(K))
        build = time.perf_counter() - t
        t = time.perf_counter()
        r = sp_minimize(
            m.value_and_grad,
            np.zeros(K),
            jac=True,
            hessp=m.hessp,
            method="trust-krylov",
            options={"gtol": 1e-10, "maxiter": 500},
        )
        fit_s = time.perf_counter() - t
        t = time.perf_counter()
        x = r.x
        if K <= 1000:
            H = m.hessian(x)
            cov = np.linalg.inv(H)
            errors = np.sqrt(np.diag(cov))
            g = m.value_and_grad(x)[1]
            edm = 0.5 * g @ np.linalg.solve(H, g)
        else:  # one column of H^-1 by CG on HVPs
            op = LinearOperator((K, K), matvec=lambda s: m.hessp(x, s), dtype=np.float64)
            e = np.zeros(K)
            e[0] = 1.0
            col, _ = cg(op, e, rtol=1e-12, maxiter=5000)
            errors = np.full(K, np.nan)
            errors[0] = np.sqrt(col[0])
            g = m.value_and_grad(x)[1]
            s, _ = cg(op, g, rtol=1e-10, maxiter=5000)
            edm = 0.5 * g @ s
        cov_s = time.perf_counter() - t
        row.update(
            build_s=build,
            fit_s=fit_s,
            cov_s=cov_s,
            impacts_s=float("nan"),
            total_s=build + fit_s + cov_s,
            iters=int(r.nit),
            mW=MW * 1000 + 100 * x[0],
            mW_err=100 * errors[0],
            note=f"edm {edm:.1e}" + ("" if K <= 1000 else "; mW error only (CG on HVPs)"),
        )
        values = x
    else:
        raise SystemExit(f"unknown fitter {fitter}")
    row["rss_gb"] = _rss_gb()
    row["cpu_s"] = (
        _cpu_s() - cpu0
    )  # CPU seconds of the fitter (all threads); wall ~ cpu / 2 when quiet
    row["load"] = os.getloadavg()[0]
    row["wall_s"] = time.perf_counter() - t0
    row["pull_mW"] = (row["mW"] - (MW * 1000 + 100 * x_true[0])) / row["mW_err"]
    np.savez(out, values=values, errors=errors)
    return row


def _run(fitter: str, K: int, timeout: float, tmp: Path) -> tuple[dict, Path | None]:
    out = tmp / f"{fitter}-{K}.npz"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        fitter,
        "--k",
        str(K),
        "--out",
        str(out),
    ]
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"fitter": fitter, "K": K, "note": f"timeout after {timeout:.0f} s"}, None
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {
            "fitter": fitter,
            "K": K,
            "note": f"failed ({time.perf_counter() - t:.0f} s): {tail[:80]}",
        }, None
    return json.loads(proc.stdout.strip().splitlines()[-1]), out


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if np.isnan(v):
            return "-"
        return f"{v:.2f}" if abs(v) < 1e4 else f"{v:.3f}"
    return str(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", default="200,1000,4859", help="comma-separated numbers of nuisances")
    ap.add_argument(
        "--fitters", default="ours,dense,minuit,pyhf", help=f"subset of {FITTERS} and pyhf"
    )
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per fitter and K")
    ap.add_argument("--minuit-max-k", type=int, default=1000, help="skip minuit above this K")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        row = _worker(args.worker, int(args.k), args.out)
        print(json.dumps(row))
        return 0
    ks = [int(k) for k in args.k.split(",")]
    fitters = args.fitters.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for K in ks:
            results = {}
            for f in fitters:
                if f == "pyhf":
                    continue
                if f == "minuit" and args.minuit_max_k < K:
                    rows.append({"fitter": f, "K": K, "note": f"skipped (K > {args.minuit_max_k})"})
                    continue
                row, out = _run(f, K, args.timeout, tmp)
                results[f] = out
                rows.append(row)
                print(
                    "  " + " ".join(f"{c}={_fmt(row.get(c))}" for c in COLUMNS),
                    file=sys.stderr,
                    flush=True,
                )
            ref = results.get("dense")
            if ref is not None:
                rv = np.load(ref)
                for row in rows:
                    out = results.get(row["fitter"]) if row["K"] == K else None
                    if out is None or row["fitter"] == "dense":
                        continue
                    mine = np.load(out)
                    dx = np.max(np.abs(mine["values"] - rv["values"]) / mine["errors"])
                    derr = abs(mine["errors"][0] / rv["errors"][0] - 1)
                    row["vs_dense"] = f"max|dx|/sigma {dx:.1e}, mW err rel {derr:.1e}"
        if "pyhf" in fitters:
            try:
                from benchmarks.fit_pyhf import pyhf_rows
            except ImportError as err:
                rows.append({"fitter": "pyhf", "K": "-", "note": f"not available ({err})"})
            else:
                rows.extend(pyhf_rows(lambda K: synthetic_model(K)[0], ks, args.timeout))
    header = list(COLUMNS) + ["vs_dense"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(_fmt(row.get(c)) for c in header) + " |")
    by = {(r["fitter"], r["K"]): r for r in rows}
    print()
    for K in ks:
        ours = by.get(("ours", K), {})
        if "total_s" not in ours:
            continue
        parts = []
        for f in ("dense", "ours-cg", "minuit"):
            other = by.get((f, K), {})
            if "total_s" in other:
                parts.append(f"{f} / ours = {other['total_s'] / ours['total_s']:.1f}x")
        print(
            f"K={K}: ours {ours['total_s']:.1f} s (fit + covariance + impacts), {ours['rss_gb']:.2f} GB; "
            + ", ".join(parts)
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
