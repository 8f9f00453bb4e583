"""How the harvest's merge time grows with the number of workers, and its projection to 1000.

    .venv/bin/python benchmarks/merge_scaling.py [--workers 2 4 8 16] [--mb 100] [--rounds 2]
        [--accumulator dense|blocks]

The harvest (:func:`analysis.runner.execute._harvest_dask`) seals each worker's accumulator,
adds them pairwise on the workers (a tree: ceil(log2 N) rounds, worker to worker) and fetches
the one sum. To time the merge and not the processing, each worker of a fresh ``LocalCluster``
(single-threaded worker processes) is given an accumulator of ``--mb`` MB (float64 arrays, as
the histograms are) directly, and the ledger is told it holds its chunks; then one harvest is
timed (median of ``--rounds``) and its sum checked (every bin equals N times the planted one).
``--accumulator blocks`` plants a ``TensorFill`` shaped like the histmaker's block variations
(~2 % of its floats not zero), which travels as its nonzero entries
(:class:`processors.fill.SparseArray`); ``dense`` (the default) plants ones, every byte of
which travels.

Model: T(N) = a + b * ceil(log2 N), fitted by least squares to the measured points; the table
projects it to 100 and 1000 workers and compares with the driver fetching the N accumulators
one after another (the old harvest: N x the measured cost of moving one accumulator to the
driver and adding it). On a 2-core machine N worker processes share two cores, so b (one
round) is pessimistic for large N: on a cluster each pair has its own cores and network link.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path

# run as a script, this directory would shadow the packages (benchmarks/fit.py vs fit)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def _accumulator(kind: str, n_floats: int) -> dict:
    """``dense``: ``n_floats`` ones (every byte travels); ``blocks``: a ``TensorFill`` of as many
    floats shaped like the histmaker's ``effStat`` (576 variations in 48 blocks of 12; each bin
    has entries in one block only, ~2 % of the floats), which travels as its nonzero entries."""
    import numpy as np

    if kind == "dense":
        return {"ds": {"bins": np.ones(n_floats)}}
    import hist

    from processors.fill import TensorFill

    n_var, n_local = 576, 12
    n_bins = max(n_floats // n_var, 1)
    tf = TensorFill(
        [hist.axis.Integer(0, n_bins, name="bin", flow=False)],
        hist.axis.Integer(0, n_var, name="v", flow=False),
    )
    rows = np.arange(n_bins)
    first = (rows % (n_var // n_local)) * n_local
    for k in range(n_local):
        tf.sumw[rows, first + k] = 1.0
    return {"ds": {"bins": tf}}


def _values(entry: object) -> object:
    return getattr(entry, "sumw", entry)


def _plant(run_id: str, owner: str, chunks: list[int], n_floats: int, kind: str = "dense") -> str:
    """On a worker: an accumulator of ``n_floats`` (:func:`_accumulator`) holding ``chunks``
    (attempt 1)."""
    ex = importlib.import_module("analysis.runner.execute")
    acc = _accumulator(kind, n_floats)
    with ex._LOCK:
        ex._OWNERS[run_id] = owner
        ex._RUNS.setdefault(run_id, {})[0] = [acc, {"ds": [(i, 1) for i in chunks]}]
    return ex._worker_address()


def _one(n_workers: int, mb: float, rounds: int, kind: str = "dense") -> dict:
    import uuid
    import warnings

    import numpy as np

    warnings.filterwarnings("ignore")
    from analysis.runner.cluster import dask_client
    from analysis.runner.ledger import ChunkLedger

    ex = importlib.import_module("analysis.runner.execute")
    n_floats = int(mb * 1e6 / 8)
    times, fetch = [], []
    with dask_client(workers=n_workers, quiet=True, memory_limit=None) as client:
        client.wait_for_workers(n_workers)
        workers = sorted(client.nthreads())
        expected = n_workers * _values(_accumulator(kind, n_floats)["ds"]["bins"])
        for _ in range(rounds):
            run_id = uuid.uuid4().hex
            ledger = ChunkLedger([("ds", f"f{i}.root", 0, 1) for i in range(n_workers)])
            futures = []
            for i, w in enumerate(workers):
                attempt, _ = ledger.start(i)
                ledger.reported(i, attempt, w)
                futures.append(
                    client.submit(
                        _plant, run_id, client.id, [i], n_floats, kind, workers=[w], pure=False
                    )
                )
            assert sorted(f.result() for f in futures) == workers
            del futures
            t0 = time.perf_counter()
            ex._harvest_dask(ledger, client, run_id, say=lambda *_: None)
            times.append(time.perf_counter() - t0)
            assert ledger.finished, ledger.state
            total = _values(ledger.total["ds"]["bins"])
            assert np.array_equal(total, expected)
            del ledger, total
            client.run(ex._close_run, run_id)
            # the old way's unit: one accumulator to the driver and added there
            run_id = uuid.uuid4().hex
            client.submit(
                _plant, run_id, client.id, [0], n_floats, kind, workers=[workers[0]]
            ).result()
            acc = _accumulator(kind, n_floats)
            t0 = time.perf_counter()
            parts = client.run(ex._pop_run, run_id, workers=[workers[0]])[workers[0]]
            acc["ds"]["bins"] += parts[0][1]["ds"]["bins"]
            fetch.append(time.perf_counter() - t0)
            del parts, acc
    return {
        "workers": n_workers,
        "seconds": float(np.median(times)),
        "fetch": float(np.median(fetch)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4, 8, 16])
    parser.add_argument("--mb", type=float, default=100.0, help="accumulator size per worker")
    parser.add_argument("--rounds", type=int, default=2, help="harvests timed per size")
    parser.add_argument(
        "--accumulator",
        choices=["dense", "blocks"],
        default="dense",
        help="dense: float64 ones, every byte travels; blocks: a TensorFill shaped like the "
        "histmaker's block variations (~2 %% of the floats not zero), sent as its entries",
    )
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(args.one, args.mb, args.rounds, args.accumulator)))
        return
    rows = []
    for n in args.workers:
        cmd = [sys.executable, __file__, "--one", str(n), "--mb", str(args.mb)]
        cmd += ["--accumulator", args.accumulator]
        out = subprocess.run(
            [*cmd, "--rounds", str(args.rounds)], capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            print(f"  {n} workers failed: {out.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            continue
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(f"  measured {n} workers", file=sys.stderr)
    if not rows:
        sys.exit("nothing measured")
    import numpy as np

    depth = np.array([math.ceil(math.log2(r["workers"])) for r in rows], dtype=float)
    t = np.array([r["seconds"] for r in rows])
    design = np.stack([np.ones_like(depth), depth], axis=1)
    (a, b), *_ = np.linalg.lstsq(design, t, rcond=None)
    fetch = float(np.median([r["fetch"] for r in rows]))

    print(
        f"\nharvest merge time, {args.mb:g} MB {args.accumulator} accumulator per worker "
        f"(median of {args.rounds})"
    )
    print(f"{'workers':>8} {'tree rounds':>11} {'tree [s]':>9} {'one-by-one [s]':>15} {'ratio':>6}")
    for r, d in zip(rows, depth, strict=True):
        serial = r["workers"] * fetch
        print(
            f"{r['workers']:>8} {int(d):>11} {r['seconds']:>9.2f} {serial:>15.2f} "
            f"{serial / r['seconds']:>6.1f}"
        )
    print(f"\nmodel T(N) = a + b*ceil(log2 N): a = {a:.2f} s, b = {b:.2f} s per round")
    print(f"one accumulator fetched by the driver and added: {fetch:.2f} s")
    print(f"{'projection':>10} {'tree [s]':>9} {'one-by-one [s]':>15} {'ratio':>6}")
    for n in (100, 1000):
        tree = a + b * math.ceil(math.log2(n))
        print(f"{n:>10} {tree:>9.1f} {n * fetch:>15.1f} {n * fetch / tree:>6.0f}")


if __name__ == "__main__":
    main()
