"""pyhf rows of the fit benchmark: pyhf and our import of the same workspace, on pyhf's likelihood.

The benchmark's synthetic model (a :class:`fit.FitInput`) is exported with
:func:`fit.pyhf.write_workspace` (split per charge x eta slice, so per-slice nuisances stay in
their 30-bin channel; log-normal normalisations become ``normsys``, shapes ``histosys``, the
unconstrained mW shape a ``histosys`` stretched by 100). All rows then fit *pyhf's* likelihood of
that workspace (pyhf 0.7 defaults: normsys code4, histosys code4p), which is not our log-normal
one (see :func:`fit.pyhf.to_workspace`), so their mW is compared with each other, not with the
other rows of the table:

- ``pyhf jax+scipy``: ``pyhf.infer.mle.fit`` with the jax backend and scipy (SLSQP, no errors);
- ``pyhf jax+minuit``: the same with MINUIT (MIGRAD + HESSE, errors);
- ``fit.pyhf``: :func:`fit.pyhf.fit_workspace` (JAX float64, trust-region Newton with the exact
  Hessian, covariance, impacts and global impacts).

Each runs in its own subprocess (peak RSS per fitter) with a timeout.

    python benchmarks/fit_pyhf.py --k 200 --timeout 600
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

FITTERS = ("fit.pyhf", "pyhf jax+scipy", "pyhf jax+minuit")
MW_MEV, MW_SCALE, WIDTH = 80379.0, 100.0, 100.0  # mW = 80379 + 100 * x, x = WIDTH * theta


def _rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _worker(fitter: str, ws_path: str, out: str) -> dict[str, Any]:
    spec = json.loads(Path(ws_path).read_text())
    row: dict[str, Any] = {"fitter": fitter, "note": ""}
    t0 = time.perf_counter()
    if fitter.startswith("pyhf"):
        import jax
        import pyhf

        jax.config.update("jax_enable_x64", True)
        if fitter == "pyhf jax+minuit":
            pyhf.set_backend("jax", pyhf.optimize.minuit_optimizer(tolerance=1e-3))
        else:
            pyhf.set_backend("jax", pyhf.optimize.scipy_optimizer())
        ws = pyhf.Workspace(spec)
        model = ws.model()
        data = pyhf.tensorlib.astensor(ws.data(model))
        row["build_s"] = time.perf_counter() - t0
        t = time.perf_counter()
        names = model.config.par_names
        i = names.index("mW")
        if fitter == "pyhf jax+minuit":
            res = pyhf.infer.mle.fit(data, model, return_uncertainties=True)
            values, errors = np.asarray(res[:, 0]), np.asarray(res[:, 1])
        else:
            values = np.asarray(pyhf.infer.mle.fit(data, model))
            errors = np.full(values.size, np.nan)
            row["note"] = "SLSQP: no errors"
        row["fit_s"] = time.perf_counter() - t
        row["total_s"] = time.perf_counter() - t0
    else:
        from fit.pyhf import fit_workspace, read_workspace

        model = read_workspace(spec)
        row["build_s"] = time.perf_counter() - t0
        res = fit_workspace(model, impacts=True, global_impacts=True)
        tm = res.timings
        names = list(res.parameters)
        i = names.index("mW")
        values, errors = res.values, res.errors
        row.update(
            fit_s=tm["minimize"],
            cov_s=float("nan"),
            impacts_s=tm.get("impacts", 0.0) + tm.get("global_impacts", 0.0),
            total_s=time.perf_counter() - t0,
            iters=res.n_iter,
        )
        gi = res.global_impacts["mW"]
        row["note"] = (
            f"edm {res.edm:.1e}; covariance inside fit; global impacts add to "
            f"{MW_SCALE * WIDTH * gi['total']:.3f} MeV"
        )
    row["mW"] = MW_MEV + MW_SCALE * WIDTH * float(values[i])
    row["mW_err"] = MW_SCALE * WIDTH * float(errors[i])
    row["rss_gb"] = _rss_gb()
    np.savez(out, values=values, errors=errors, names=np.array(names))
    return row


def _run(fitter: str, ws: Path, timeout: float, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", fitter]
    cmd += ["--ws", str(ws), "--out", str(out)]
    t = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"fitter": fitter, "note": f"timeout after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"fitter": fitter, "note": f"failed ({time.perf_counter() - t:.0f} s): {tail[:80]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pyhf_rows(
    make_fit_input: Callable[[int], Any],
    ks: Sequence[int],
    timeout: float,
    fitters: Sequence[str] = FITTERS,
) -> list[dict[str, Any]]:
    """Rows (the keys of ``benchmarks/fit.py``'s ``COLUMNS``) for pyhf and :mod:`fit.pyhf`.

    ``make_fit_input(K)`` gives the benchmark model; it is exported to a workspace once per K.
    The answers are compared with ``fit.pyhf``'s: max |x - x_ours| / sigma_ours over all
    parameters, in the ``vs_dense`` column (there: ``vs fit.pyhf``).
    """
    from fit.pyhf import write_workspace

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for K in ks:
            t = time.perf_counter()
            fi = make_fit_input(K)
            ws = write_workspace(
                fi, tmp / f"ws-{K}.json", split=("charge", "eta"), unconstrained_width=WIDTH
            )
            export = time.perf_counter() - t
            size = ws.stat().st_size / 1e6
            outs = {}
            for fitter in fitters:
                out = tmp / f"{fitter.replace(' ', '_').replace('+', '_')}-{K}.npz"
                row = _run(fitter, ws, timeout, out)
                row["K"] = K
                if fitter == "fit.pyhf":
                    row["note"] = f"{row.get('note', '')}; export {export:.1f} s, {size:.0f} MB"
                rows.append(row)
                outs[fitter] = out if out.exists() else None
                print(
                    "  " + " ".join(f"{k}={v}" for k, v in row.items()), file=sys.stderr, flush=True
                )
            ref = outs.get("fit.pyhf")
            if ref is None:
                continue
            rv = np.load(ref)
            for row in rows:
                out = outs.get(row["fitter"]) if row["K"] == K else None
                if out is None or row["fitter"] == "fit.pyhf":
                    continue
                mine = np.load(out)
                if list(mine["names"]) != list(rv["names"]):
                    continue
                dx = np.max(np.abs(mine["values"] - rv["values"]) / rv["errors"])
                text = f"vs fit.pyhf: max|dx|/sigma {dx:.1e}"
                if np.all(np.isfinite(mine["errors"])):
                    derr = np.max(np.abs(mine["errors"] / rv["errors"] - 1))
                    text += f", errors rel {derr:.1e}"
                row["vs_dense"] = text
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", default="200", help="comma-separated numbers of nuisances")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per fitter and K")
    ap.add_argument("--fitters", default=",".join(FITTERS), help=f"subset of {FITTERS}")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--ws", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.ws, args.out)))
        return 0
    from benchmarks.fit import COLUMNS, _fmt, synthetic_model

    ks = [int(k) for k in args.k.split(",")]
    rows = pyhf_rows(lambda K: synthetic_model(K)[0], ks, args.timeout, args.fitters.split(","))
    header = list(COLUMNS) + ["vs_dense"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(_fmt(row.get(c)) for c in header) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
