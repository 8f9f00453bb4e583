"""Scaling of the histmaker on Dask: events/s with 1 and 2 workers, and peak memory (RSS) of
the driver and the workers when the same data is cut into 10x more chunks.

    .venv/bin/python benchmarks/scaling.py [--events 60000] [--chunksize 5000] [--variations all]
        [--rounds 1]

One generated sample (``analysis.generate``: W -> mu nu and data, 2 files each); every
configuration runs in a fresh Python process with its own ``LocalCluster`` (single-threaded
worker processes), so each peak RSS (``ru_maxrss``) is that configuration's alone:

- ``ours``: :func:`analysis.runner.run.run` -- one accumulator per worker, added up pairwise
  on the workers at the end (memory should not grow with the number of chunks); workers
  spawned like every other row's;
- ``ours-warm``: the same with the workers forked from a warm server (:mod:`analysis.warmstart`),
  as ``wmass histmaker`` starts a local cluster: imports and numba kernels loaded once, before
  the timer starts, instead of at each worker's first chunk;
- ``coffea-dask``: coffea's ``Runner`` + ``DaskExecutor`` on the same processor and chunks --
  every chunk's output goes back through Dask and is tree-reduced (``treereduction=20``);
- ``coffea-futures``: coffea's ``Runner`` + ``FuturesExecutor`` (its own pool of worker
  processes, no Dask; worker RSS = the largest child process);
- ``coffea-dask-hist``: coffea's ``Runner`` + ``DaskExecutor`` on the processor a coffea user
  writes: our selection and weights, then one ``hist.fill`` per variation into ``hist.Hist``
  accumulators (``benchmarks/histmaker.py``'s ``hist_fill_processor``: the same variations
  and the same histograms as ours, a weight array per eigenvector and the observables again
  per momentum-scale block);
- ``coffea-dask-hist-aligned``: the same with coffea's ``align_clusters=True`` (off by
  default): chunks start at the files' cluster starts, as ours do when the clusters are at
  most twice the chunk size (``analysis.runner.run.plan``);
- ``coffea-dak``: the coffea dask-awkward + ``hist.dask`` idiom (``benchmarks/histmaker.py``'s
  graph) computed on the same kind of ``LocalCluster``: **W files only, theory variations
  only** (pdf, qcdScale, massWeight); compare it with ``--variations pdf,qcdScale,massWeight``.

For a ``LocalCluster`` the scheduler runs inside the driver process, so whatever passes
through the scheduler shows in the driver's peak RSS.

``--targets`` then runs ``benchmarks/profile_histmaker.py`` on the same sample and prints its
tables: issue 13's targets for the whole command (per-worker steady rate against one process on
the same chunks, 2 / 1 workers, the fixed cost from command start to first chunk done), which
need a single process and timings from inside the run that this benchmark does not take.

The table gives events/s (wall, after the cluster is up; with ``--rounds N`` the configurations
are measured N times, interleaved, and each row is its median run; an unmeasured run of
``ours`` with 1 worker comes first, ``--no-warmup`` skips it), the speed-up of 2 workers over 1,
and the RSS ratios "10x chunks / 1x chunks" (1.0 = flat). The 1x chunk size must leave
several W chunks per worker: otherwise one worker holds no W accumulator at 1x and the
driver's merge of two W accumulators at 10x looks like growth (it is the (workers + 2)
bound). The machine is shared: compare the ratios of one run, not absolute numbers across
runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
# run as a script, this directory would shadow the packages (benchmarks/fit.py vs fit)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
if str(HERE.parent) not in sys.path:
    sys.path.append(str(HERE.parent))

from benchmarks._common import measure, run_one_or_parse  # noqa: E402


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _children_peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def _bench_histmaker():
    """``benchmarks/histmaker.py`` as a module (its coffea idiom and ``hist`` processor)."""
    spec = importlib.util.spec_from_file_location("bench_histmaker", HERE / "histmaker.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def _coffea_fileset(datasets) -> dict:
    from analysis.runner.run import chunk_metadata

    return {
        name: {"files": {f: ds.treename for f in ds.files}, "metadata": chunk_metadata(ds)}
        for name, ds in datasets.items()
    }


def _coffea_runner(cfg: dict, executor):
    from coffea import processor
    from coffea.nanoevents import NanoAODSchema

    return processor.Runner(
        executor=executor,
        schema=NanoAODSchema,
        chunksize=cfg["chunksize"],
        align_clusters=cfg["how"].endswith("-aligned"),
    )


def run_on_dask(how: str, cfg: dict, proc, datasets, client) -> tuple[int, int]:
    """One way of filling on the Dask ``client`` (``ours``, ``coffea-dask`` or ``coffea-dak``),
    ``cfg["chunksize"]`` events a chunk: ``(events read, chunks)``. Also used by
    ``benchmarks/scheduler_traffic.py``."""
    if how == "ours":
        from analysis.runner.run import run

        size = cfg["chunksize"]
        result = run(proc, datasets, executor="dask", client=client, chunksize=size, progress=False)
        output = result.output
        return sum(int(v["events_read"]) for v in output.values()), len(result.chunks)
    if how in ("coffea-dask", "coffea-dask-hist", "coffea-dask-hist-aligned"):
        from coffea import processor

        executor = processor.DaskExecutor(client=client, status=False, treereduction=20)
        output = _coffea_runner(cfg, executor)(_coffea_fileset(datasets), proc, treename="Events")
        n_chunks = sum(len(v["chunks"]) for v in output.values())
        return sum(int(v["events_read"]) for v in output.values()), n_chunks
    # coffea-dak: the dask-awkward + hist.dask idiom, W files, theory variations
    import dask
    import uproot

    bench = _bench_histmaker()
    files = {f: "Events" for f in datasets["wmunu"].files}
    events = sum(uproot.open(f)["Events"].num_entries for f in files)
    steps = max(1, events // len(files) // cfg["chunksize"])
    dask.compute(*bench.coffea_dask_hists(files, steps_per_file=steps))
    return events, steps * len(files)


def _one(cfg: dict) -> dict:
    """Run one configuration in this process; returns its measurements."""
    warnings.filterwarnings("ignore")
    how = cfg["how"]
    warm = how == "ours-warm"
    if warm:  # as the ``wmass`` command does: the workers' server imports beside this process
        from analysis import warmstart

        warmstart.enable(start=True)
        how = "ours"
    from analysis.datasets import load_datasets
    from analysis.histmaker import make_processor
    from analysis.runner.cluster import dask_client

    datasets = load_datasets(cfg["datasets"])
    variations = True if cfg["variations"] == "all" else cfg["variations"].split(",")
    if how.startswith("coffea-dask-hist"):
        proc = _bench_histmaker().hist_fill_processor(datasets, cfg["corrections"], variations)
    else:
        proc = make_processor(
            "wmass", datasets, corrections=cfg["corrections"], variations=variations
        )
    if how == "coffea-futures":  # coffea's own process pool: no Dask cluster
        from coffea import processor

        t0 = time.perf_counter()
        executor = processor.FuturesExecutor(workers=cfg["workers"], status=False)
        output = _coffea_runner(cfg, executor)(_coffea_fileset(datasets), proc, treename="Events")
        seconds = time.perf_counter() - t0
        events = sum(int(v["events_read"]) for v in output.values())
        n_chunks = sum(len(v["chunks"]) for v in output.values())
        return {
            "events": events,
            "seconds": seconds,
            "chunks": n_chunks,
            "driver_mb": _peak_rss_mb(),
            "worker_mb": _children_peak_rss_mb(),
        }
    with dask_client(workers=cfg["workers"], quiet=True, warm_workers=warm) as client:
        client.wait_for_workers(cfg["workers"])
        t0 = time.perf_counter()
        events, n_chunks = run_on_dask(how, cfg, proc, datasets, client)
        seconds = time.perf_counter() - t0
        workers_rss = client.run(_peak_rss_mb)
    return {
        "events": events,
        "seconds": seconds,
        "chunks": n_chunks,
        "driver_mb": _peak_rss_mb(),
        "worker_mb": max(workers_rss.values()),
    }


def _measure(cfg: dict) -> dict:
    return measure(__file__, cfg)


def _median_row(runs: list[dict]) -> dict:
    """One configuration over its rounds: the median run by events/s, the largest peak RSS
    (``{"error": ...}`` if every round failed).

    >>> _median_row([{"events": 10, "seconds": s, "chunks": 1, "driver_mb": m, "worker_mb": m}
    ...              for s, m in ((1.0, 5), (2.0, 7), (4.0, 6))])["seconds"]
    2.0
    """
    ok = sorted((r for r in runs if "error" not in r), key=lambda r: r["events"] / r["seconds"])
    if not ok:
        return runs[0]
    row = dict(ok[len(ok) // 2])
    row["rate_range"] = (ok[0]["events"] / ok[0]["seconds"], ok[-1]["events"] / ok[-1]["seconds"])
    row["driver_mb"] = max(r["driver_mb"] for r in ok)
    row["worker_mb"] = max(r["worker_mb"] for r in ok)
    row["rounds"] = len(ok)
    return row


def _sample(events: int, where: Path) -> tuple[Path, Path]:
    import yaml

    from analysis.generate import generate_samples

    src = generate_samples(where / "gen", events=events, files_per_process=2, seed=11)
    doc = yaml.safe_load(src.read_text())
    keep = {k: doc["datasets"][k] for k in ("wmunu", "data")}
    for entry in keep.values():
        entry["files"] = [str(src.parent / f) for f in entry["files"]]
        for key in ("lumi_csv", "golden_json"):
            if entry.get(key):
                entry[key] = str(src.parent / entry[key])
    path = where / "datasets.yaml"
    path.write_text(yaml.safe_dump({"lumi_pb": doc.get("lumi_pb"), "datasets": keep}))
    return path, src.parent / "corrections.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events", type=int, default=60_000, help="MC events generated (all processes)"
    )
    parser.add_argument("--chunksize", type=int, default=5_000, help="the 1x chunk size")
    parser.add_argument("--variations", default="all", help="'all' or a comma-separated list")
    parser.add_argument("--skip-coffea", action="store_true", help="only our executor")
    parser.add_argument(
        "--rounds", type=int, default=1, help="interleaved rounds; each row is its median run"
    )
    parser.add_argument(
        "--targets",
        action="store_true",
        help="then, on the same sample, issue 13's throughput targets from "
        "benchmarks/profile_histmaker.py (--workers 1 2 --warm, the same chunk size and "
        "rounds): per-worker rate against one process, 2 / 1 workers, the fixed cost",
    )
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the unmeasured run of ours (1 worker) before the rounds, which fills a fresh "
        "checkout's numba cache and the page cache for every row (without it the first "
        "measured row of round 1 pays both)",
    )
    parser.add_argument(
        "--rows",
        nargs="*",
        default=None,
        help="only these rows (executor names, e.g. ours ours-warm coffea-dask-hist), at the 1x "
        "chunk size and 2 workers, plus 1 worker for ours and ours-warm: a long sample in "
        "reasonable time",
    )
    args = run_one_or_parse(parser, _one)
    if args is None:
        return

    with tempfile.TemporaryDirectory(prefix="wmass-scaling-") as tmp:
        datasets, corrections = _sample(args.events, Path(tmp))
        base = {
            "datasets": str(datasets),
            "corrections": str(corrections),
            "variations": args.variations,
        }
        small = max(1, args.chunksize // 10)
        configs = [
            ("ours", 1, args.chunksize),
            ("ours", 2, args.chunksize),
            ("ours", 2, small),
            ("ours-warm", 1, args.chunksize),
            ("ours-warm", 2, args.chunksize),
        ]
        if not args.skip_coffea:
            configs += [
                ("coffea-dask", 2, args.chunksize),
                ("coffea-dask-hist", 2, args.chunksize),
                ("coffea-dask-hist-aligned", 2, args.chunksize),
                ("coffea-dask", 2, small),
                ("coffea-futures", 2, args.chunksize),
                ("coffea-dak", 2, args.chunksize),
            ]
        if args.rows is not None:
            configs = [
                c
                for c in configs
                if c[0] in args.rows
                and c[2] == args.chunksize
                and (c[1] == 2 or c[0] in ("ours", "ours-warm"))
            ]
        runs: dict[tuple, list[dict]] = {c: [] for c in configs}
        if not args.no_warmup:
            _measure({**base, "how": "ours", "workers": 1, "chunksize": args.chunksize})
            print("  warm-up: ours workers=1 (not measured)", file=sys.stderr)
        for round_ in range(args.rounds):  # interleaved: a slow spell hits every row alike
            for how, workers, chunksize in configs:
                cfg = {**base, "how": how, "workers": workers, "chunksize": chunksize}
                runs[(how, workers, chunksize)].append(_measure(cfg))
                print(
                    f"  round {round_ + 1}: measured {how} workers={workers} chunksize={chunksize}",
                    file=sys.stderr,
                )
        rows = {c: _median_row(rs) for c, rs in runs.items()}
        targets = _targets(datasets.parent, args.chunksize, args.rounds) if args.targets else ""

    print(
        f"\nscaling: {os.cpu_count()} cores, variations={args.variations}, sample wmunu+data, "
        f"median of {args.rounds} interleaved round(s), load average {os.getloadavg()[0]:.1f}"
    )
    header = (
        f"{'executor':24} {'workers':>7} {'chunks':>7} {'events':>8} {'ev/s':>9} "
        f"{'range':>17} {'driver MB':>10} {'worker MB':>10}"
    )
    print(header)
    print("-" * len(header))
    for (how, workers, _chunksize), r in rows.items():
        if "error" in r:
            print(f"{how:24} {workers:>7} {'-':>7} error: {r['error']}")
            continue
        rate = r["events"] / r["seconds"]
        lo, hi = r.get("rate_range", (rate, rate))
        print(
            f"{how:24} {workers:>7} {r['chunks']:>7} {r['events']:>8} {rate:>9,.0f} "
            f"{f'{lo:,.0f}-{hi:,.0f}':>17} {r['driver_mb']:>10,.0f} {r['worker_mb']:>10,.0f}"
        )

    def ratio(a, b, key):
        ra, rb = rows.get(a, {}), rows.get(b, {})
        if "error" in ra or "error" in rb or not ra or not rb:
            return float("nan")
        if key == "rate":
            return (rb["events"] / rb["seconds"]) / (ra["events"] / ra["seconds"])
        return rb[key] / ra[key]

    one, two, many = ("ours", 1, args.chunksize), ("ours", 2, args.chunksize), ("ours", 2, small)
    warm1, warm2 = ("ours-warm", 1, args.chunksize), ("ours-warm", 2, args.chunksize)
    print("\nratios")
    print(f"  ours, 2 workers / 1 worker, events/s:          {ratio(one, two, 'rate'):.2f}x")
    print(f"  ours, warm, 2 workers / 1 worker, events/s:    {ratio(warm1, warm2, 'rate'):.2f}x")
    print(f"  ours, 10x chunks / 1x, driver peak RSS:        {ratio(two, many, 'driver_mb'):.2f}")
    print(f"  ours, 10x chunks / 1x, worker peak RSS:        {ratio(two, many, 'worker_mb'):.2f}")
    if not args.skip_coffea:
        c1, c10 = ("coffea-dask", 2, args.chunksize), ("coffea-dask", 2, small)
        fut, dak = ("coffea-futures", 2, args.chunksize), ("coffea-dak", 2, args.chunksize)
        chist = ("coffea-dask-hist", 2, args.chunksize)
        caligned = ("coffea-dask-hist-aligned", 2, args.chunksize)
        print(f"  coffea, 10x chunks / 1x, driver peak RSS:      {ratio(c1, c10, 'driver_mb'):.2f}")
        print(f"  coffea, 10x chunks / 1x, worker peak RSS:      {ratio(c1, c10, 'worker_mb'):.2f}")
        print(f"  events/s ours / coffea DaskExecutor (2 wk):    {1 / ratio(two, c1, 'rate'):.2f}x")
        print(
            f"  events/s ours / coffea DaskExecutor, hist.fill processor (2 wk): "
            f"{1 / ratio(two, chist, 'rate'):.2f}x"
        )
        print(
            f"  events/s ours, warm / coffea DaskExecutor, hist.fill processor (2 wk): "
            f"{1 / ratio(warm2, chist, 'rate'):.2f}x"
        )
        print(
            f"  events/s ours / coffea DaskExecutor, hist.fill processor, aligned (2 wk): "
            f"{1 / ratio(two, caligned, 'rate'):.2f}x"
        )
        print(
            f"  worker RSS coffea hist.fill processor / ours, warm: "
            f"{ratio(warm2, chist, 'worker_mb'):.2f}"
        )
        print(
            f"  driver RSS coffea hist.fill processor / ours:  {ratio(two, chist, 'driver_mb'):.2f}"
        )
        print(
            f"  worker RSS coffea hist.fill processor / ours:  {ratio(two, chist, 'worker_mb'):.2f}"
        )
        print(
            f"  events/s ours / coffea FuturesExecutor (2 wk): {1 / ratio(two, fut, 'rate'):.2f}x"
        )
        print(
            f"  events/s ours / coffea dak idiom (2 wk)*:      {1 / ratio(two, dak, 'rate'):.2f}x"
        )
        print(f"  driver RSS coffea DaskExecutor / ours:         {ratio(two, c1, 'driver_mb'):.2f}")
        print(f"  worker RSS coffea DaskExecutor / ours:         {ratio(two, c1, 'worker_mb'):.2f}")
        print(
            f"  10x chunks, driver RSS coffea / ours:          {ratio(many, c10, 'driver_mb'):.2f}"
        )
        print(
            f"  10x chunks, events/s ours / coffea:            {1 / ratio(many, c10, 'rate'):.2f}x"
        )
        print(
            "  * the dak idiom fills the W files' theory variations only: like for like with "
            "--variations pdf,qcdScale,massWeight"
        )
    if targets:
        print(f"\nissue 13's throughput targets (benchmarks/profile_histmaker.py){targets}")


def _targets(samples: Path, chunksize: int, rounds: int) -> str:
    """What ``benchmarks/profile_histmaker.py`` prints on the sample in ``samples`` (its
    progress goes to stderr as it runs). Without its warm-up: this benchmark's rows have just
    read the same files with the same checkout's numba cache."""
    import subprocess

    command = [sys.executable, str(HERE / "profile_histmaker.py"), "--samples", str(samples)]
    command += ["--workers", "1", "2", "--warm", "--chunksize", str(chunksize)]
    command += ["--rounds", str(rounds), "--no-warmup"]
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode:
        return f"\n  failed (exit {done.returncode}): {' '.join(command)}"
    return done.stdout


if __name__ == "__main__":
    main()
