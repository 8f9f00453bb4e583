"""Per-core rates of the W histmaker and what they mean for the seminar's full dataset.

Measures on one core, on a generated sample (``wmass generate``, LZ4 like the generator's
default), for the signal MC (all variations: 773 per bin) and for the data (nominal only):

- ``read``: uproot reading exactly the branches the processor reads (recorded from a pass);
- ``full``: ``open_events`` + ``WMassProcessor.process`` on one chunk (read + select + fill);
- bytes read per event (``/proc/self/io`` rchar with a read()-based uproot source);
- the size of one worker's accumulator (every dataset's histograms), how fast it is added
  (coffea ``iadd``) and serialised (pickle protocol 5, what Dask sends between processes).

Then projects the wall time of 300M data + 4B MC events on 100 and 1000 cores, the storage
bandwidth it needs, the memory per worker and the cost of merging the workers' accumulators.
``docs/scaling.md`` explains the numbers. Run::

    .venv/bin/python benchmarks/wall_time_estimate.py [--events 120000] [--workdir /tmp/wte]
"""

from __future__ import annotations

import argparse
import copy
import gc
import pickle
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA_EVENTS = 300e6
MC_EVENTS = 4e9


def rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    return 0


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def one_pass(proc, path: str, dataset: str, is_data: bool, meta: dict):
    """Open one file as NanoEvents with a read()-based source and run the processor."""
    import uproot

    from analysis.datasets import open_events

    m = {"dataset": dataset, "is_data": is_data, **meta}
    r0, t0 = rchar(), time.perf_counter()
    events = open_events(path, metadata=m, handler=uproot.source.file.MultithreadedFileSource)
    out = proc.process(events)
    return out, time.perf_counter() - t0, rchar() - r0, len(events)


def branches_read(proc, path: str, dataset: str, is_data: bool, meta: dict) -> list[str]:
    """The branches a pass reads (Columns caches every branch it loads, by NanoAOD name)."""
    import processors.columns as columns

    seen: list = []
    orig = columns.Columns.__init__

    def record(self, events):
        orig(self, events)
        seen.append(self)

    columns.Columns.__init__ = record
    try:
        one_pass(proc, path, dataset, is_data, meta)
    finally:
        columns.Columns.__init__ = orig
    names = set()
    for cols in seen:
        names.update(k for k in cols._cache if isinstance(k, str))
    return sorted(names)


def read_only(path: str, branches: list[str]) -> float:
    import uproot

    t0 = time.perf_counter()
    with uproot.open(path) as f:
        tree = f["Events"]
        present = [b for b in branches if b in tree]
        tree.arrays(present)  # awkward, as NanoEvents reads them
    return time.perf_counter() - t0


def median_time(fn, rounds: int) -> float:
    return float(np.median([fn() for _ in range(rounds)]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=120_000, help="MC events to generate")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/wmass-wall-time"))
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from analysis.datasets import load_datasets
    from analysis.generate import generate_samples
    from analysis.histmaker import make_processor
    from analysis.runner.run import chunk_metadata

    yaml_path = args.workdir / "samples" / "datasets.yaml"
    if not yaml_path.exists():
        print(f"generating {args.events} MC events into {yaml_path.parent} ...", flush=True)
        generate_samples(yaml_path.parent, events=args.events, seed=11)
    datasets = load_datasets(yaml_path)
    proc = make_processor("wmass", datasets, corrections=yaml_path.parent / "corrections.json")

    rows = []
    outputs = []
    for name in ("wmunu", "data"):
        ds = datasets[name]
        path = ds.files[0]
        meta = {k: v for k, v in chunk_metadata(ds).items() if k not in ("dataset",)}
        one_pass(proc, path, name, ds.is_data, meta)  # numba compile, page cache
        branches = branches_read(proc, path, name, ds.is_data, meta)
        t_read = median_time(lambda p=path, b=branches: read_only(p, b), args.rounds)
        fulls = [one_pass(proc, path, name, ds.is_data, meta) for _ in range(args.rounds)]
        out, _, nbytes, n = fulls[-1]
        t_full = float(np.median([f[1] for f in fulls]))
        outputs.append(out)
        rows.append(
            {
                "sample": f"{name} ({'nominal only' if ds.is_data else 'all variations'})",
                "events": n,
                "branches": len(branches),
                "read_rate": n / t_read,
                "full_rate": n / t_full,
                "bytes_per_event": nbytes / n,
                "selected": out[name]["events_selected"] / n,
            }
        )

    print("\nPer-core rates (median of", args.rounds, "rounds; one process, this machine)")
    print(
        f"{'sample':34s} {'events':>8s} {'branches':>8s} {'read ev/s':>11s} "
        f"{'full ev/s':>11s} {'full/read':>9s} {'B/event':>8s} {'selected':>8s}"
    )
    for r in rows:
        print(
            f"{r['sample']:34s} {r['events']:8d} {r['branches']:8d} {r['read_rate']:11,.0f} "
            f"{r['full_rate']:11,.0f} {r['full_rate'] / r['read_rate']:9.2f} "
            f"{r['bytes_per_event']:8.0f} {r['selected']:8.2f}"
        )

    # one worker's accumulator: every dataset's histograms (MC with variations)
    from coffea.processor.accumulator import iadd

    acc = {}
    for out in outputs:
        acc = iadd(acc, copy.deepcopy(out)) if acc else copy.deepcopy(out)
    mc = next(o for o in outputs if "wmunu" in o)["wmunu"]["histograms"]
    per_mc_dataset = sum(
        h.values(flow=True).nbytes
        + (h.variances(flow=True).nbytes if h.storage_type.__name__ == "Weight" else 0)
        for h in mc.values()
    )
    n_mc_datasets = sum(1 for d in datasets.values() if not d.is_data)
    worker_bytes = per_mc_dataset * n_mc_datasets
    other = copy.deepcopy(acc)
    gc.collect()
    t0 = time.perf_counter()
    iadd(other, acc)
    t_iadd = time.perf_counter() - t0
    t0 = time.perf_counter()
    blob = pickle.dumps(acc, protocol=5)
    t_dump = time.perf_counter() - t0
    t0 = time.perf_counter()
    pickle.loads(blob)
    t_load = time.perf_counter() - t0
    acc_bytes = len(blob)
    merge_rate = acc_bytes / t_iadd
    ser_rate = acc_bytes / (t_dump + t_load)
    print("\nAccumulator (histograms one worker holds)")
    print(f"  W histograms of one MC dataset, all variations: {per_mc_dataset / 1e6:8.1f} MB")
    print(
        f"  x {n_mc_datasets} MC datasets (one worker sees them all):   {worker_bytes / 1e6:8.1f} MB"
    )
    print(f"  measured here (wmunu + data):                  {acc_bytes / 1e6:8.1f} MB")
    print(
        f"  iadd (merge) {merge_rate / 1e9:.2f} GB/s, pickle dump+load {ser_rate / 1e9:.2f} GB/s"
        f" (ratio {merge_rate / ser_rate:.2f}); RSS now {rss_mb():.0f} MB"
    )

    mc_rate = rows[0]["full_rate"]
    data_rate = rows[1]["full_rate"]
    mc_bpe, data_bpe = rows[0]["bytes_per_event"], rows[1]["bytes_per_event"]
    core_seconds = MC_EVENTS / mc_rate + DATA_EVENTS / data_rate
    total_bytes = MC_EVENTS * mc_bpe + DATA_EVENTS * data_bpe
    print("\nProjection: 300M data + 4B MC events (rates as measured here, perfect scaling)")
    print(f"  CPU: {core_seconds / 3600:,.0f} core-hours; input read {total_bytes / 1e12:.2f} TB")
    print(
        f"{'cores':>6s} {'event loop':>11s} {'bandwidth':>10s} {'merge (serial)':>15s} "
        f"{'merge (tree)':>13s} {'loop/merge':>10s}"
    )
    link = 12.5e9  # a 100 Gbit/s interface (the seminar's machines)
    for cores in (100, 1000):
        loop = core_seconds / cores
        bw = total_bytes / loop
        per_fetch = worker_bytes / min(ser_rate, link) + worker_bytes / merge_rate
        serial = cores * per_fetch
        tree = np.ceil(np.log2(cores)) * per_fetch
        print(
            f"{cores:6d} {loop / 60:9.1f} m {bw / 1e9:7.2f} GB/s {serial / 60:12.1f} m "
            f"{tree / 60:10.1f} m {loop / serial:10.2f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
