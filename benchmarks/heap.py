"""What reusing freed memory gains the event loop, in one process and on a Dask worker: the same
chunks with glibc's defaults and with :mod:`analysis.heap`'s switches, as the executors run them.

    .venv/bin/python benchmarks/heap.py [--samples DIR | --events 1000000] [--rounds 3]
        [--datasets wmunu zmumu data] [--chunksize 200000] [--configs defaults kept ...]

Each configuration runs in a new interpreter, in every round, one after another:

- ``defaults``: glibc as it comes: a chunk's large arrays are fresh ``mmap`` s;
- ``kept``: each chunk under :func:`analysis.heap.chunk_heap` (``analysis.runner.execute``'s
  iterative executor does this);
- ``worker-defaults``: the chunks on the one worker of a new local cluster (spawned, with the
  worker config and plugin of the clusters ``wmass`` starts), glibc as it comes;
- ``worker-kept``: the same with :data:`analysis.heap.WORKER_ENVIRONMENT` in the worker's
  environment.

A worker runs alone, so the other worker and the driver do not take its cores.

Every chunk of ``--datasets`` is processed as the histmaker does
(``analysis.runner.execute._process_into_worker``: read, process, add into the accumulator);
each dataset's first chunk is left out of the rates (numba's load, the accumulator's first
touch). Per configuration it prints the medians over the rounds of: microseconds per event
(wall and the thread's CPU), minor page faults per 1000 events, the peak RSS of the process
that ran the chunks, and the rate against the first configuration, round by round. Start it
from a directory outside the checkout (``cd /tmp``): the interpreters it starts put their own
directory first.
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

CONFIGS = ("defaults", "kept", "worker-defaults", "worker-kept")


def _timed(processor: object, item: object, index: int, kept: bool) -> tuple:
    """Process one chunk in this thread (optionally under ``chunk_heap``): its dataset,
    events, wall and CPU seconds and the thread's minor faults."""
    import contextlib
    import resource
    import time

    from analysis.heap import chunk_heap
    from analysis.runner.execute import _process_into_worker

    heap = chunk_heap if kept else contextlib.nullcontext
    faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    wall, cpu = time.perf_counter(), time.thread_time()
    with heap():
        _process_into_worker(processor, item, "heap", "benchmark", index, 0, 0)
    wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
    faults = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - faults
    return (item.dataset, len(item), wall, cpu, faults)  # type: ignore[attr-defined]


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _one(cfg: dict) -> dict:
    """Process the chunks in this (new) process, or on the one worker of a new local cluster:
    per chunk, its dataset, events, wall and CPU seconds and minor faults of the thread that ran
    it; and the peak RSS of the process that ran them."""
    import warnings

    warnings.filterwarnings("ignore")
    from analysis.datasets import load_datasets
    from analysis.histmaker import default_corrections, make_processor
    from analysis.runner.execute import _close_run
    from analysis.runner.run import plan
    from analysis.warmstart import freeze_heap

    datasets = {k: v for k, v in load_datasets(cfg["yaml"]).items() if k in cfg["datasets"]}
    processor = make_processor("wmass", datasets, corrections=default_corrections(cfg["yaml"]))
    chunks, _ = plan(datasets, cfg["chunksize"])
    if not cfg["heap"].startswith("worker"):
        freeze_heap()  # the command's heap and the workers' (analysis.warmstart)
        rows = [_timed(processor, item, i, cfg["heap"] == "kept") for i, item in enumerate(chunks)]
        _close_run("heap")
        return {"chunks": rows, "peak_mb": _peak_mb()}

    import os

    import dask
    from distributed import Client, LocalCluster

    from analysis.heap import WORKER_ENVIRONMENT
    from analysis.runner.cluster import WORKER_CONFIG, worker_environment, worker_heap_plugin

    # a worker as a local cluster of the command spawns it, with or without the heap's switches;
    # the nanny takes them from this (new) process's environment over its config
    env = {k: v for k, v in worker_environment().items() if k not in WORKER_ENVIRONMENT}
    for key in WORKER_ENVIRONMENT:
        os.environ.pop(key, None)
    if cfg["heap"] == "worker-kept":
        env.update(WORKER_ENVIRONMENT)
        os.environ.update(WORKER_ENVIRONMENT)
    config = {"distributed.nanny.pre-spawn-environ": env, **WORKER_CONFIG}
    with (
        dask.config.set(config),
        LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        client.register_plugin(worker_heap_plugin())
        (shared,) = client.scatter([processor], broadcast=True)
        futures = [
            client.submit(_timed, shared, item, i, False, pure=False, priority=-i)
            for i, item in enumerate(chunks)
        ]
        rows = client.gather(futures)
        (peak,) = client.run(_peak_mb).values()
        client.run(_close_run, "heap")
    return {"chunks": rows, "peak_mb": peak}


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
    parser.add_argument(
        "--configs",
        nargs="+",
        choices=CONFIGS,
        default=list(CONFIGS),
        help="these only (default: all)",
    )
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
        configs = [c for c in CONFIGS if c in args.configs]
        results: dict[str, list[dict]] = {c: [] for c in configs}
        for r in range(args.rounds):
            for heap in configs:
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
        f"{'faults/1000 ev':>20s} {'peak RSS [MB]':>15s} {'rate / first':>16s}"
    )
    print(header)
    print("-" * len(header))
    for heap in configs:
        rows, base_rows = results[heap], results[configs[0]]
        ratio = [b["wall"] / k["wall"] for b, k in zip(base_rows, rows, strict=True)]
        print(
            f"{heap:9s} {_median_range([x['wall'] for x in rows], '.3f'):>22s} "
            f"{_median_range([x['cpu'] for x in rows], '.3f'):>22s} "
            f"{_median_range([x['faults'] for x in rows], '.1f'):>20s} "
            f"{statistics.median(x['peak_mb'] for x in rows):>15.0f} "
            f"{_median_range(ratio, '.2f'):>16s}"
        )
    print(f"rate / first: {configs[0]}'s µs/event over this row's, round by round")


if __name__ == "__main__":
    main()
