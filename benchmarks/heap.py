"""What reusing freed memory gains the event loop in one process: the same chunks with glibc's
defaults and under :func:`analysis.heap.chunk_heap`, as the iterative executor runs them.

    .venv/bin/python benchmarks/heap.py [--samples DIR | --events 1000000] [--rounds 3]
        [--datasets wmunu zmumu data] [--chunksize 200000]

Each configuration runs in a new interpreter, in every round, one after another:

- ``defaults``: glibc as it comes: a chunk's large arrays are fresh ``mmap`` s;
- ``kept``: each chunk under :func:`analysis.heap.chunk_heap` (``analysis.runner.execute``'s
  iterative executor does this).

Every chunk of ``--datasets`` is processed as the histmaker does
(``analysis.runner.execute._process_into_worker``: read, process, add into the accumulator);
each dataset's first chunk is left out of the rates (numba's load, the accumulator's first
touch). Per configuration it prints the medians over the rounds of: microseconds per event
(wall and the thread's CPU), minor page faults per 1000 events, the process's peak RSS, and
the rate against the defaults, round by round. Start it from a directory outside the
checkout (``cd /tmp``): the interpreters it starts put their own directory first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

# run as a script, this directory would shadow the packages (benchmarks/fit.py vs fit)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.append(str(Path(__file__).resolve().parent.parent))

from benchmarks._common import measure, run_one_or_parse  # noqa: E402

CONFIGS = ("defaults", "kept")


def _one(cfg: dict) -> dict:
    """Process the chunks in this (new) process: per chunk, its dataset, events, wall and CPU
    seconds and minor faults of the thread that ran it; and the peak RSS."""
    import contextlib
    import resource
    import time
    import warnings

    warnings.filterwarnings("ignore")
    from analysis.datasets import load_datasets
    from analysis.heap import chunk_heap
    from analysis.histmaker import default_corrections, make_processor
    from analysis.runner.execute import _close_run, _process_into_worker
    from analysis.runner.run import plan
    from analysis.warmstart import freeze_heap

    heap = chunk_heap if cfg["heap"] == "kept" else contextlib.nullcontext

    datasets = {k: v for k, v in load_datasets(cfg["yaml"]).items() if k in cfg["datasets"]}
    processor = make_processor("wmass", datasets, corrections=default_corrections(cfg["yaml"]))
    chunks, _ = plan(datasets, cfg["chunksize"])
    freeze_heap()  # the command's heap and the workers' (analysis.warmstart)

    rows = []
    for i, item in enumerate(chunks):
        faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        wall, cpu = time.perf_counter(), time.thread_time()
        with heap():
            _process_into_worker(processor, item, "heap", "benchmark", i, 0, 0)
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - faults
        rows.append((item.dataset, len(item), wall, cpu, faults))
    _close_run("heap")
    return {"chunks": rows, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _steady(rows: list) -> dict[str, float]:
    """µs per event (wall, CPU) and faults per 1000 events over the chunks after each
    dataset's first."""
    seen: set[str] = set()
    events = wall = cpu = faults = 0.0
    for dataset, n, w, c, f in rows:
        if dataset not in seen:
            seen.add(dataset)
            continue
        events, wall, cpu, faults = events + n, wall + w, cpu + c, faults + f
    return {"wall": 1e6 * wall / events, "cpu": 1e6 * cpu / events, "faults": 1e3 * faults / events}


def _median_range(xs: list[float], spec: str) -> str:
    return f"{statistics.median(xs):{spec}} ({min(xs):{spec}}-{max(xs):{spec}})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=Path, help="a generated sample (its datasets.yaml)")
    parser.add_argument("--events", type=int, default=1_000_000, help="else generate this many")
    parser.add_argument("--datasets", nargs="+", default=["wmunu", "zmumu", "data"])
    parser.add_argument("--chunksize", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = run_one_or_parse(parser, _one)
    if args is None:
        return
    with tempfile.TemporaryDirectory(prefix="wmass-heap-") as tmp:
        samples = args.samples
        if samples is None:
            from analysis.generate import generate_samples

            samples = Path(tmp) / "samples"
            generate_samples(samples, events=args.events, seed=17)
        base = {
            "yaml": str(Path(samples) / "datasets.yaml"),
            "datasets": args.datasets,
            "chunksize": args.chunksize,
        }
        results: dict[str, list[dict]] = {c: [] for c in CONFIGS}
        for r in range(args.rounds):
            for heap in CONFIGS:
                out = measure(__file__, {**base, "heap": heap})
                if "error" in out:
                    sys.exit(f"{heap}: {out['error']}")
                row = {**_steady(out["chunks"]), "peak_mb": out["peak_mb"]}
                results[heap].append(row)
                print(
                    f"  round {r + 1}: {heap:8s} {row['wall']:.3f} µs/event, "
                    f"{row['faults']:.1f} faults/1000 events",
                    file=sys.stderr,
                    flush=True,
                )
    print(
        f"\nthe same chunks ({', '.join(args.datasets)}; chunks of {args.chunksize:,}; each "
        f"dataset's first left out), median (range) of {args.rounds} rounds"
    )
    header = (
        f"{'heap':9s} {'µs/event, wall':>22s} {'µs/event, CPU':>22s} "
        f"{'faults/1000 ev':>20s} {'peak RSS [MB]':>15s} {'rate / defaults':>16s}"
    )
    print(header)
    print("-" * len(header))
    for heap in CONFIGS:
        rows, base_rows = results[heap], results["defaults"]
        ratio = [b["wall"] / k["wall"] for b, k in zip(base_rows, rows, strict=True)]
        print(
            f"{heap:9s} {_median_range([x['wall'] for x in rows], '.3f'):>22s} "
            f"{_median_range([x['cpu'] for x in rows], '.3f'):>22s} "
            f"{_median_range([x['faults'] for x in rows], '.1f'):>20s} "
            f"{statistics.median(x['peak_mb'] for x in rows):>15.0f} "
            f"{_median_range(ratio, '.2f'):>16s}"
        )
    print("rate / defaults: the defaults' µs/event over this row's, round by round")


if __name__ == "__main__":
    main()
