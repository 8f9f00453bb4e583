"""Bytes through the Dask scheduler: ours against coffea's DaskExecutor and the dask-awkward idiom.

    .venv/bin/python benchmarks/scheduler_traffic.py [--events 300000] [--chunksize 50000]

A scheduler on a network should carry task messages, not histograms: with ~770 variations one
accumulator is ~100 MB, and whatever a run sends through the scheduler process is copied there
(memory, CPU, the event loop every other client waits on). In a ``LocalCluster`` the scheduler
lives in the driver process and its traffic cannot be told apart, so this benchmark starts
``dask scheduler`` and two ``dask worker`` processes (one thread each, no nanny) as processes of
their own, then runs each configuration from a fresh driver process connected to that address:

- ``ours``: :func:`analysis.runner.run.run` (accumulators added pairwise on the workers, the
  driver fetches the one sum straight from the worker that holds it);
- ``coffea-dask``: coffea's ``Runner`` + ``DaskExecutor`` (tree reduction of the chunk outputs);
- ``coffea-dak``: the dask-awkward + ``hist.dask`` idiom of ``benchmarks/histmaker.py``
  (W files, theory variations only).

The traffic is counted where every TCP message of distributed passes (``TCP.write`` and the
frame reads; ``benchmarks/_traffic_counter.py``, preloaded into the scheduler and imported by
the driver) while the configuration runs. Events/s are printed too, but the point is the bytes:
they do not depend on the load of the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
# run as a script, this directory would shadow the packages (benchmarks/fit.py vs fit)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
if str(HERE.parent) not in sys.path:
    sys.path.append(str(HERE.parent))

from benchmarks._common import measure, run_one_or_parse  # noqa: E402

BIN = Path(sys.executable).parent


def _one(cfg: dict) -> dict:
    """One configuration in this (fresh) driver process, connected to ``cfg["address"]``."""
    warnings.filterwarnings("ignore")
    from distributed import Client

    from analysis.datasets import load_datasets
    from analysis.histmaker import make_processor
    from benchmarks._traffic_counter import counts
    from benchmarks.scaling import run_on_dask

    datasets = load_datasets(cfg["datasets"])
    proc = make_processor("wmass", datasets, corrections=cfg["corrections"], variations=True)
    with Client(cfg["address"], timeout="60s") as client:
        client.wait_for_workers(cfg["workers"])
        before, scheduler0 = counts(), client.run_on_scheduler(_scheduler_counts)
        t0 = time.perf_counter()
        events, _ = run_on_dask(cfg["how"], cfg, proc, datasets, client)
        seconds = time.perf_counter() - t0
        after, scheduler1 = counts(), client.run_on_scheduler(_scheduler_counts)
    return {
        "events": events,
        "seconds": seconds,
        "driver_read": after["read"] - before["read"],
        "driver_written": after["written"] - before["written"],
        "scheduler_read": scheduler1["read"] - scheduler0["read"],
        "scheduler_written": scheduler1["written"] - scheduler0["written"],
    }


def _scheduler_counts(dask_scheduler) -> dict[str, int]:
    """Run on the scheduler (pickled by value: the scheduler cannot import ``benchmarks``)."""
    return dict(dask_scheduler.wmass_traffic)


class Cluster:
    """``dask scheduler`` and ``workers`` ``dask worker`` processes on 127.0.0.1."""

    def __init__(self, tmp: Path, workers: int) -> None:
        self.file = tmp / "scheduler.json"
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
        out = open(tmp / "cluster.log", "w")  # noqa: SIM115 - closed with the processes
        common = dict(stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp)
        scheduler = [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0"]
        self.scheduler = subprocess.Popen(
            [
                *scheduler,
                "--no-dashboard",
                "--scheduler-file",
                str(self.file),
                "--preload",
                str(HERE / "_traffic_counter.py"),
            ],
            **common,
        )
        deadline = time.monotonic() + 120
        while not self.file.exists():
            if time.monotonic() > deadline or self.scheduler.poll() is not None:
                self.close()
                raise RuntimeError(f"dask scheduler did not start: see {tmp / 'cluster.log'}")
            time.sleep(0.2)
        time.sleep(0.5)  # the file is written before it is complete on some versions
        self.address = json.loads(self.file.read_text())["address"]
        worker = [str(BIN / "dask"), "worker", "--scheduler-file", str(self.file)]
        options = ["--nthreads", "1", "--no-nanny", "--host", "127.0.0.1", "--no-dashboard"]
        self.workers = [
            subprocess.Popen([*worker, *options, "--memory-limit", "0"], **common)
            for _ in range(workers)
        ]

    def close(self) -> None:
        for p in [*getattr(self, "workers", []), self.scheduler]:
            p.terminate()
        for p in [*getattr(self, "workers", []), self.scheduler]:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000, help="MC events generated")
    parser.add_argument("--chunksize", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    args = run_one_or_parse(parser, _one)
    if args is None:
        return
    from benchmarks.scaling import _sample

    rows = {}
    with tempfile.TemporaryDirectory(prefix="wmass-traffic-") as tmp:
        datasets, corrections = _sample(args.events, Path(tmp))
        for how in ("ours", "coffea-dask", "coffea-dak"):
            # a cluster per configuration: no worker state or scheduler history carried over
            cluster = Cluster(Path(tmp), args.workers)
            try:
                cfg = {
                    "how": how,
                    "address": cluster.address,
                    "workers": args.workers,
                    "datasets": str(datasets),
                    "corrections": str(corrections),
                    "chunksize": args.chunksize,
                }
                row = measure(__file__, cfg)
            finally:
                cluster.close()
                Path(tmp, "scheduler.json").unlink(missing_ok=True)
            rows[how] = row
            print(f"  measured {how}", file=sys.stderr)

    mb = 1e6
    print(
        f"\nbytes through the scheduler: {args.workers} workers, chunks of {args.chunksize:,}, "
        "all variations (dak idiom: W files, theory variations)"
    )
    header = (
        f"{'executor':12} {'events':>9} {'ev/s':>9} {'scheduler in MB':>16} "
        f"{'scheduler out MB':>17} {'driver in MB':>13}"
    )
    print(header)
    print("-" * len(header))
    for how, r in rows.items():
        if "error" in r:
            print(f"{how:12} error: {r['error']}")
            continue
        print(
            f"{how:12} {r['events']:>9,} {r['events'] / r['seconds']:>9,.0f} "
            f"{r['scheduler_read'] / mb:>16,.1f} {r['scheduler_written'] / mb:>17,.1f} "
            f"{r['driver_read'] / mb:>13,.1f}"
        )
    ours, coffea = rows.get("ours", {}), rows.get("coffea-dask", {})
    if "scheduler_read" in ours and "scheduler_read" in coffea:
        ratio = coffea["scheduler_read"] / max(ours["scheduler_read"], 1)
        print(f"\nscheduler traffic coffea DaskExecutor / ours: {ratio:.1f}x")


if __name__ == "__main__":
    main()
