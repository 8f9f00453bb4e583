"""W-mass bias benchmark: full-chain pseudo-experiments at several true masses, and a fit-only
toy ensemble, to measure the bias, the pull width and the linearity of the measured m_W.

    .venv/bin/python benchmarks/mw_bias.py                      # defaults: ~10 min on 2 cores
    .venv/bin/python benchmarks/mw_bias.py --events 200000 --n 200 --fit-only 1000 --jobs 2
    .venv/bin/python benchmarks/mw_bias.py --events 1000000 --n 50 --fit-only 0
    .venv/bin/python benchmarks/mw_bias.py --setup-args "--raw-mass-templates" --fit-only 0
    .venv/bin/python benchmarks/mw_bias.py --tables a.csv b.csv      # the tables of earlier runs
    .venv/bin/python benchmarks/mw_bias.py --calibrate --calib-events 2e6 --paired --n 16 \
        --fit-only 0 --variants bb-lite                      # with measured corrections
    .venv/bin/python benchmarks/mw_bias.py --events 5e6 --n 4 --fit-only 0 --variants bb-lite \
        --setup-variant "factorised=--signal-template factorised"   # two templates, same samples

**Setup variants** (``--setup-variant NAME=ARGS``, repeatable): each PE's ``hists.h5`` is also
set up with these extra ``setup-fit`` arguments and fitted; the rows' variant is
``bb-lite/NAME`` and the tables end with the PE-by-PE shift of m_W from the plain setup. The
samples' own scatter cancels in that difference, so it is 5-10x more precise than comparing
two ensembles' means (how the correlated W template was chosen, docs/validation.md).

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

**Measured corrections** (``--calibrate``, issue 12 item 5): for each seed a Z -> mu mu
calibration sample (``wmass generate --calibration-sample --events --calib-events --seed``:
the detector truth of the seed, events of its own, as many Z events in data as in MC) is
generated and calibrated (``wmass calibrate``: tag and probe, momentum scale); every PE of that
seed fills its histograms with that ``calib.json`` (``histmaker --corrections``), so the
measured eigen-variations and scale uncertainty, with the calibration's statistical
fluctuation in their nominal values, enter the fit. With ``--paired`` the three masses of a
seed share one calibration (its Z sample does not depend on m_W). Columns ``corrections``,
``calib_generate_s``, ``calibrate_s``, ``scale_err_mean`` in the CSV. ``--variants bb-lite``
skips the second fit of each PE.

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

import datetime as _dt
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# run as a script, benchmarks/ is first on sys.path and benchmarks/fit.py would shadow the
# fit package: put the project root there instead (spawned workers inherit this sys.path)
_HERE = Path(__file__).resolve().parent
_ROOT = _HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))


from benchmarks.mwbias.cli import parse_args  # noqa: E402
from benchmarks.mwbias.common import (  # noqa: E402 - after the sys.path fix above
    CHAIN_FIELDS,
    MW_REF_GEV,
    THREAD_VARS,
    TOY_FIELDS,
    error_rows,
)
from benchmarks.mwbias.output import (  # noqa: E402
    csv_text,
    json_safe,
    print_chain,
    print_fit_only,
    print_setup_shifts,
    print_timing,
    provenance,
    tables_of,
    write_atomic,
)
from benchmarks.mwbias.pool import Pool  # noqa: E402
from benchmarks.mwbias.stats import (  # noqa: E402
    chain_tables,
    fit_only_table,
    setup_variant_shifts,
    timing_summary,
)
from benchmarks.mwbias.worker import (  # noqa: E402
    prepare_fit_only,
    run_calibration,
    run_pe,
    run_toy,
)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv, __doc__)
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
        "setup_variants": args.setup_variants,
        "variants": args.variant_list,
    }

    def pe_done(task: dict[str, Any], rows: Any, error: BaseException | None) -> None:
        if error is not None:  # the worker function itself catches; this is the pool failing
            rows = error_rows(task, f"{type(error).__name__}: {error}")
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
        write_atomic(out_csv, csv_text(chain_rows, CHAIN_FIELDS))

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
        write_atomic(out_toys, csv_text(toy_rows, TOY_FIELDS))

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
    by_seed: dict[int, list[dict[str, Any]]] = {}
    for i in range(args.n):
        for j, m in enumerate(masses):
            seed = args.seed + i if args.paired else args.seed + i * len(masses) + j
            by_seed.setdefault(seed, []).append({**common, "mass_gev": m, "seed": seed})
    calib_info: dict[int, dict[str, Any]] = {}

    def calibrated(task: dict[str, Any], info: Any, error: BaseException | None) -> None:
        seed = task["seed"]
        if error is not None:
            message = f"calibration failed: {type(error).__name__}: {error}"
            print(f"  seed {seed}: {message}", file=sys.stderr, flush=True)
            for pe in by_seed[seed]:
                pe_done(pe, error_rows(pe, message), None)
            return
        calib_info[seed] = info
        print(
            f"  seed {seed}: calibrated ({info['calib_generate_s']:.0f} s generate, "
            f"{info['calibrate_s']:.0f} s calibrate; scale error <{1e4 * info['scale_err_mean']:.2f}"
            "> x 1e-4)",
            file=sys.stderr,
            flush=True,
        )
        keys = ("calib_generate_s", "calibrate_s", "scale_err_mean")
        for pe in by_seed[seed]:
            pe["corrections"] = info["corrections"]
            pe["calib_info"] = {k: info[k] for k in keys}
        for pe in reversed(by_seed[seed]):  # before the next seeds' calibrations
            pool.submit(run_pe, pe, pe_done, first=True)

    for seed, pes in by_seed.items():
        if args.calibrate:
            calib_task = {**common, "seed": seed, "calib_events": args.calib_events}
            pool.submit(run_calibration, calib_task, calibrated)
        else:
            for pe in pes:
                pool.submit(run_pe, pe, pe_done)
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
            "setup_variants": args.setup_variants,
            "calibrate": args.calibrate,
            "calib_events": args.calib_events if args.calibrate else None,
            "variants": args.variant_list,
            "fit_only": args.fit_only,
            "fit_only_shift_mev": args.fit_only_shift,
            "toy_globals": args.toy_globals,
            "interrupted": interrupted,
        },
        "wall_s": wall,
        "files": {"csv": str(out_csv), "fit_only_csv": str(out_toys) if toy_rows else None},
    }
    if chain_rows:
        write_atomic(out_csv, csv_text(chain_rows, CHAIN_FIELDS))
        tables = chain_tables(chain_rows, masses, MW_REF_GEV)
        result["chain"] = tables
        result["timing_per_pe_s"] = timing_summary(chain_rows)
        result["setup_variant_shifts"] = setup_variant_shifts(chain_rows)
        print_chain(tables, MW_REF_GEV, wall)
        print_setup_shifts(result["setup_variant_shifts"])
        print_timing(result["timing_per_pe_s"])
    if args.fit_only > 0:
        if toy_rows:
            write_atomic(out_toys, csv_text(toy_rows, TOY_FIELDS))
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
    write_atomic(out_json, json.dumps(json_safe(result), indent=1) + "\n")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
