"""pyhf workspaces: ``wmass fit ws.json`` (the structured engine) against pyhf on the same files.

Every fitter fits *pyhf's* likelihood of the same workspace (pyhf 0.7 defaults: normsys code4,
histosys code4p), each in its own process, timed from command start (interpreter, imports,
reading the JSON, fit, uncertainties) with a timeout, in wall time and in the CPU time of the
process (user + system: what the wall time is on an idle machine for one thread; the ratios of
both are to ``wmass fit``'s):

- ``wmass fit``: the command line, ``wmass fit ws.json --out r.h5`` (fit, covariance, pre- and
  post-fit yields with their bands, GOF, the result file); ``fit+cov`` is its minimisation plus
  covariance, from the result's timings;
- ``pyhf numpy+minuit``: ``pyhf.infer.mle.fit(..., return_uncertainties=True)`` (MIGRAD +
  HESSE), numpy backend;
- ``pyhf jax+scipy``: the same with the jax backend and scipy's SLSQP (no uncertainties).

The workspaces: ``small-20bin`` (one channel, 20 bins, 3 samples, every modifier type),
``export-K200`` (the benchmark model of ``benchmarks/fit.py`` with K = 200, exported with
:func:`fit.pyhf.write_workspace` split per charge x eta: 96 channels x 10 samples, normsys and
histosys) and ``large-public-style`` (built here: many channels, signal and control regions,
every modifier type, shared and per-channel systematics, hundreds of MC-stat gammas, like the
ATLAS workspaces on HEPData). The ratio column is each fitter's wall time over ``wmass fit``'s;
the agreement column compares each answer with ours (largest ``|x - x_ours| / sigma_ours``
over all parameters; POI error relative difference).

    python benchmarks/fit_pyhf.py                         # all three workspaces
    python benchmarks/fit_pyhf.py --workspaces small-20bin --timeout 120

``pyhf_rows`` gives ``benchmarks/fit.py`` its pyhf rows (exported workspaces at several K).
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
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks._common import histosys, modifier, normsys, pyhf_sample  # noqa: E402

FITTERS = ("wmass fit", "pyhf numpy+minuit", "pyhf jax+scipy")
WORKSPACES = ("small-20bin", "export-K200", "large-public-style")
WIDTH = 100.0  # the exported mW histosys is stretched by this (x = WIDTH * theta)
WMASS = str(Path(sys.executable).with_name("wmass"))
#: BLAS threads of every fitter (``--threads``): one by default, so that a shared machine's
#: load does not turn the threads' spinning into the measurement
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# --------------------------------------------------------------------------- workspaces


ENV = dict(os.environ)


def public_style_workspace(
    n_sr: int = 3, n_cr: int = 1, nbins: int = 20, n_bkg: int = 2, seed: int = 1
) -> dict[str, Any]:
    """A synthetic workspace shaped like the public ones: ``n_sr`` signal and ``n_cr`` control
    regions of ``nbins`` bins; a signal and ``n_bkg`` backgrounds; a free signal strength and
    free normalisations of the first backgrounds (normfactor), lumi, normsys (shared theory and
    per-region experimental), histosys (shared shapes and per-region ones), staterror per
    region, shapesys on one background in the signal regions and a shapefactor (a data-driven
    background) in the control regions. ``small-20bin`` is ``(1, 0, 20, 2)``."""
    rng = np.random.default_rng(seed)
    channels, observations = [], []
    x = (np.arange(nbins) + 0.5) / nbins
    regions = [(f"SR{i}", True) for i in range(n_sr)] + [(f"CR{i}", False) for i in range(n_cr)]
    for r, (name, is_sr) in enumerate(regions):
        tilt = 1.0 + 0.3 * np.sin(r)
        samples = []
        truth = np.zeros(nbins)
        if is_sr:
            sig = 25.0 * np.exp(-(((x - 0.3 - 0.4 * r / max(n_sr, 1)) / 0.12) ** 2)) + 0.3
            mods = [
                modifier("mu", "normfactor"),
                modifier("lumi", "lumi"),
                normsys("sig_xsec", 1.05, 0.96),
                normsys(f"sig_acc_{name}", 1.03, 0.98),
                histosys("sig_shape", sig * (1 + 0.05 * x), sig * (1 - 0.04 * x)),
                modifier(f"staterror_{name}", "staterror", 0.05 * sig),
            ]
            samples.append(pyhf_sample("signal", sig, mods))
            truth += 1.2 * sig
        for b in range(n_bkg):
            bkg = (300.0 / (b + 1)) * np.exp(-(1.0 + 0.5 * b) * x) * tilt
            mods = [
                modifier("lumi", "lumi"),
                normsys(f"bkg{b}_xsec", 1.08, 0.9),
                histosys(
                    f"bkg{b}_shape", bkg * (1 + 0.1 * (x - 0.5)), bkg * (1 - 0.08 * (x - 0.5))
                ),
                histosys(f"jes_{name}", bkg * (1.02 + 0.03 * x), bkg * (0.98 - 0.02 * x)),
                normsys(f"eff_{name}", 1.02, 0.98),
                modifier(f"staterror_{name}", "staterror", 0.03 * bkg),
            ]
            if b < 2:
                mods.append(modifier(f"bkg{b}_norm", "normfactor"))
            if is_sr and b == n_bkg - 1:
                mods.append(modifier(f"bkg{b}_mcstat_{name}", "shapesys", 0.1 * bkg))
            samples.append(pyhf_sample(f"bkg{b}", bkg, mods))
            truth += bkg * (1.0 + 0.05 * rng.normal())
        if not is_sr:
            fake = 40.0 * np.ones(nbins)
            mods = [modifier("fake_sf", "shapefactor")]
            samples.append(pyhf_sample("fakes", fake, mods))
            truth += fake * (1 + 0.1 * x)
        channels.append({"name": name, "samples": samples})
        observations.append({"name": name, "data": [float(v) for v in rng.poisson(truth)]})
    parameters = [
        {"name": "mu", "bounds": [[-5.0, 10.0]], "inits": [1.0]},
        {
            "name": "lumi",
            "auxdata": [1.0],
            "sigmas": [0.017],
            "bounds": [[0.5, 1.5]],
            "inits": [1.0],
        },
    ]
    return {
        "channels": channels,
        "observations": observations,
        "measurements": [{"name": "meas", "config": {"poi": "mu", "parameters": parameters}}],
        "version": "1.0.0",
    }


def make_workspace(name: str, tmp: Path) -> Path:
    """Write the named benchmark workspace to ``tmp`` and return its path."""
    path = tmp / f"{name}.json"
    if name == "small-20bin":
        path.write_text(json.dumps(public_style_workspace(1, 0, 20, 2)))
    elif name == "large-public-style":
        path.write_text(json.dumps(public_style_workspace(12, 4, 20, 4)))
    elif name.startswith("export-K"):
        from benchmarks.fit import synthetic_model
        from fit.pyhf import write_workspace

        fi = synthetic_model(int(name[len("export-K") :]))[0]
        write_workspace(fi, path, split=("charge", "eta"), unconstrained_width=WIDTH)
    else:
        raise SystemExit(f"unknown workspace {name!r} (choose from {WORKSPACES})")
    return path


# --------------------------------------------------------------------------- fitters


def _pyhf_worker(fitter: str, ws_path: str, out: str) -> dict[str, Any]:
    """Runs in a fresh interpreter: pyhf's fit, timed inside (import, build, fit)."""
    t0 = time.perf_counter()
    import pyhf

    if fitter == "pyhf numpy+minuit":
        pyhf.set_backend("numpy", pyhf.optimize.minuit_optimizer())
    else:
        import jax

        jax.config.update("jax_enable_x64", True)
        pyhf.set_backend("jax", pyhf.optimize.scipy_optimizer())
    spec = json.loads(Path(ws_path).read_text())
    ws = pyhf.Workspace(spec)
    model = ws.model()
    data = pyhf.tensorlib.astensor(ws.data(model))
    t = time.perf_counter()
    if fitter == "pyhf numpy+minuit":
        res = np.asarray(pyhf.infer.mle.fit(data, model, return_uncertainties=True))
        values, errors = res[:, 0], res[:, 1]
    else:
        values = np.asarray(pyhf.infer.mle.fit(data, model))
        errors = np.full(values.size, np.nan)
    fit_s = time.perf_counter() - t
    np.savez(out, values=values, errors=errors, names=np.array(model.config.par_names))
    return {"fit_s": fit_s, "inside_s": time.perf_counter() - t0, "poi": model.config.poi_name}


def run_fitter(fitter: str, ws: Path, timeout: float, tmp: Path) -> dict[str, Any]:
    """One fitter on one workspace in a fresh process: the row, values in ``row["_npz"]``."""
    tag = fitter.replace(" ", "_").replace("+", "_")
    out = tmp / f"{ws.stem}-{tag}"
    if fitter == "wmass fit":
        cmd = [WMASS, "fit", str(ws), "--out", str(out) + ".h5"]
    else:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", fitter]
        cmd += ["--ws", str(ws), "--out", str(out) + ".npz"]
    row: dict[str, Any] = {"fitter": fitter}
    t = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ENV)
    except subprocess.TimeoutExpired:
        row["note"] = f"timeout after {timeout:.0f} s"
        row["timeout"] = timeout
        return row
    row["wall_s"] = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    row["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        row["note"] = f"failed: {tail[:90]}"
        return row
    if fitter == "wmass fit":
        from fit import FitResult

        res = FitResult.read(str(out) + ".h5")
        row["fit_s"] = res.timings.get("minimize", 0.0) + res.timings.get("covariance", 0.0)
        row["poi"] = next(iter(res.pois))
        row["note"] = f"{res.n_iter} Newton steps, edm {res.edm:.0e}; +yields, GOF, file"
        np.savez(out, values=res.values, errors=res.errors, names=np.array(res.parameters))
    else:
        row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        row["note"] = "SLSQP: no errors" if "scipy" in fitter else "MIGRAD + HESSE"
    row["_npz"] = Path(str(out) + ".npz")
    return row


def compare(rows: list[dict[str, Any]]) -> None:
    """Fill ``poi``/``poi_err``, the agreement with ``wmass fit`` and the wall-time ratio."""
    ref = next((r for r in rows if r["fitter"] == "wmass fit" and "_npz" in r), None)
    rv = np.load(ref["_npz"]) if ref else None
    for row in rows:
        if "timeout" in row and ref is not None:
            row["ratio"] = f"> {row['timeout'] / ref['wall_s']:.3g}"
        if "_npz" not in row:
            continue
        mine = np.load(row["_npz"])
        names = list(mine["names"])
        i = names.index(row["poi"])
        row["poi_value"], row["poi_err"] = float(mine["values"][i]), float(mine["errors"][i])
        if rv is None or row is ref:
            continue
        row["ratio"] = row["wall_s"] / ref["wall_s"]
        row["cpu_ratio"] = row["cpu_s"] / ref["cpu_s"]
        if names != list(rv["names"]):
            row["agree"] = "parameter names differ"
            continue
        free = rv["errors"] > 0
        dx = np.max(np.abs(mine["values"] - rv["values"])[free] / rv["errors"][free])
        text = f"max|dx|/sigma {dx:.1e}"
        if np.isfinite(row["poi_err"]):
            text += f", POI err {row['poi_err'] / float(rv['errors'][i]) - 1:+.1e}"
        row["agree"] = text


def _size(ws: Path) -> str:
    spec = json.loads(ws.read_text())
    nbins = sum(len(c["samples"][0]["data"]) for c in spec["channels"])
    nsamp = len({s["name"] for c in spec["channels"] for s in c["samples"]})
    mods = {
        (m["name"], m["type"])
        for c in spec["channels"]
        for s in c["samples"]
        for m in s["modifiers"]
    }
    types = sorted({t for _, t in mods})
    return (
        f"{len(spec['channels'])} ch, {nbins} bins, {nsamp} samples, {len(mods)} modifiers "
        f"({', '.join(types)}), {ws.stat().st_size / 1e6:.1f} MB"
    )


COLUMNS = (
    "workspace",
    "fitter",
    "wall_s",
    "ratio",
    "cpu_s",
    "cpu_ratio",
    "fit_s",
    "poi_value",
    "poi_err",
    "agree",
    "note",
)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if np.isnan(v) else (f"{v:.3g}" if abs(v) < 1e3 else f"{v:.0f}")
    return str(v)


def pyhf_rows(
    make_fit_input: Callable[[int], Any],
    ks: Sequence[int],
    timeout: float,
    fitters: Sequence[str] = FITTERS,
) -> list[dict[str, Any]]:
    """Rows for ``benchmarks/fit.py`` (its ``COLUMNS``: ``fitter``, ``K``, ``total_s``,
    ``fit_s``, ``vs_dense``, ``note``): the benchmark model exported at each K and fitted by
    ``wmass fit`` and by pyhf, wall time from command start."""
    from fit.pyhf import write_workspace

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for K in ks:
            ws = write_workspace(
                make_fit_input(K),
                tmp / f"export-K{K}.json",
                split=("charge", "eta"),
                unconstrained_width=WIDTH,
            )
            block = [run_fitter(f, ws, timeout, tmp) for f in fitters]
            compare(block)
            for row in block:
                rows.append(
                    {
                        "fitter": row["fitter"] if row["fitter"] != "wmass fit" else "fit.pyhf",
                        "K": K,
                        "fit_s": row.get("fit_s"),
                        "total_s": row.get("wall_s"),
                        "vs_dense": row.get("agree", ""),
                        "note": f"pyhf likelihood of the exported workspace; {row.get('note', '')}",
                    }
                )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspaces", default=",".join(WORKSPACES), help=f"subset of {WORKSPACES}")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per fitter and workspace")
    ap.add_argument("--fitters", default=",".join(FITTERS), help=f"subset of {FITTERS}")
    ap.add_argument("--keep", type=Path, default=None, help="write the workspaces here")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--ws", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads of each fitter")
    args = ap.parse_args(argv)
    ENV.update({var: str(args.threads) for var in THREAD_VARS})
    if args.worker:
        print(json.dumps(_pyhf_worker(args.worker, args.ws, args.out)))
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        where = args.keep or tmp
        where.mkdir(parents=True, exist_ok=True)
        for name in args.workspaces.split(","):
            ws = make_workspace(name, where)
            print(f"{name}: {_size(ws)}", flush=True)
            block = []
            for fitter in args.fitters.split(","):
                row = run_fitter(fitter, ws, args.timeout, tmp)
                row["workspace"] = name
                block.append(row)
                print(
                    "  " + " ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k != "_npz"),
                    file=sys.stderr,
                    flush=True,
                )
            compare(block)
            rows.extend(block)
    print()
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for row in rows:
        print("| " + " | ".join(_fmt(row.get(c)) for c in COLUMNS) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
