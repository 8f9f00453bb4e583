"""Where the histmaker's time goes: one process against 1 and 2 Dask workers, phase by phase.

    .venv/bin/python benchmarks/profile_histmaker.py [--events 5000000] [--workers [1 2]]
        [--samples DIR] [--baseline CHECKOUT] [--rounds N]

Generates a sample (all processes, ``--events`` MC events and the data; or reuses
``--samples DIR``), then runs ``analysis.histmaker.histmaker`` -- what ``wmass histmaker``
runs -- in a fresh process per configuration: ``--executor iterative`` and ``--executor dask``
with each number of ``--workers`` (an embedded ``LocalCluster``). From the run's
:class:`analysis.runner.Timeline` it prints, in seconds since the process started:

- ``imports``: the chain's modules imported; ``cluster``: the client ready (the local cluster
  started); ``plan``: every file's entries read and the chunks made;
- ``1st chunk``: the first chunk processed (the fixed cost: command start to first chunk done);
- ``processed``: every chunk processed; ``harvest``: seconds spent in harvests (sealing, the
  tree of additions, the fetch); ``convert``: postprocess, sums of weights, luminosity;
  ``write``: the HDF5 output;

and the rates: the whole command's events/s, and the *steady-state* rate of each worker (its
chunks after its first, events over the seconds the worker spent reading and processing them),
as a fraction of the single process's steady-state rate. ``--baseline`` runs the same
configurations with the code of another checkout (e.g. ``git worktree add /tmp/old REV``) for a
before/after table in the same run; ``--rounds N`` measures every configuration N times,
interleaving the codes, and keeps the fastest of each for the tables; the target ratios are
also given per round, against that round's single process (median and range). Before the
rounds, one unmeasured single-process run of each code fills its numba cache and the page cache
(``--no-warmup`` skips it). The machine is shared: compare the ratios
of one run (the load average is printed with the table). ``--workers`` without numbers measures
the single process only (what ``wmass demo`` runs at its size).

Beside each worker's wall-clock speed on the same chunks, two views of it: on the CPU seconds
of the threads that ran the chunks (what other processes took from them left out), and on the
chunks, on both sides, that took fewer than ``FAULT_FREE`` page faults (the memory a process
touches for the first time left out: on this virtual machine 0.6-4.5 s per GB, and each
worker touches about as much as the single process does; ``docs/scaling.md``, twelfth pass).
The page faults per worker are printed against the single process's. A third view takes
from each chunk's wall the seconds its thread was ready but waited for a core that other
threads held (the driver, the event loops, the other worker: the run-queue delay, recorded
per chunk in the run's ``Timeline``), which a worker with a core of its own would not wait;
and the chunks' seconds are split into CPU, those waits and the rest, against the single
process's on the same chunks. Each run also records how busy the machine's cores were and
what share of them the hypervisor took (steal), listed beside each round's ratio.

``--concurrent`` adds the control for the steady rate per worker: two single processes
(``--executor iterative``) started at the same moment, each over half of the sample's files
(as two workers share them out), with no driver and no Dask. Their steady rates against the
single process alone are what two busy cores give (shared caches, memory bandwidth, clock),
the ceiling for two workers on this machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# run as a script, this directory would shadow the packages (benchmarks/fit.py vs fit)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
# appended, so that a baseline checkout on PYTHONPATH (--baseline) still comes first
sys.path.append(str(Path(__file__).resolve().parent.parent))

from benchmarks._common import measure, run_one_or_parse  # noqa: E402

HERE = Path(__file__).resolve().parent


def _one(cfg: dict) -> dict:
    """One configuration, in this (fresh) process."""
    # just before this interpreter started (benchmarks._common.launched, read here: a
    # --baseline checkout's benchmarks._common may predate it)
    start = float(os.environ.get("WMASS_BENCHMARK_LAUNCHED", time.time()))
    import warnings

    warnings.filterwarnings("ignore")
    executor = cfg["executor"]
    if executor == "dask-warm":  # as the wmass command starts: the server before the imports
        from analysis.warmstart import start_early

        start_early(["--executor", "dask", "--workers", str(cfg["workers"])])
        executor = "dask"
    from analysis.histmaker import histmaker

    imported = time.time()
    # the halves of the control (_halves) name the sample's corrections: they are not beside them
    extra = {"corrections": cfg["corrections"]} if cfg.get("corrections") else {}
    _, content, result = histmaker(
        "wmass",
        cfg["datasets"],
        cfg["out"],
        executor=executor,
        workers=cfg["workers"],
        chunksize=cfg["chunksize"],
        progress=False,
        **extra,
    )
    done = time.time()
    tl = getattr(result, "timeline", None)
    row = {"events": result.events, "total": done - start, "imports": imported - start}
    if tl is None:  # an older checkout (--baseline): only the whole command
        return row

    def since(t: float | None) -> float | None:
        return None if t is None else t - start

    row.update(
        cluster=since(tl.client_ready),
        plan=since(tl.planned),
        first=since(tl.first_chunk),
        processed=since(tl.processed),
        harvest=sum(s for _, s in tl.harvests),
        harvests=len(tl.harvests),
        convert=None if tl.converted is None else tl.converted - tl.finished,
        write=None if tl.written is None else tl.written - tl.converted,
    )
    # per chunk (events, seconds, dataset, thread CPU seconds, page faults, seconds waited for
    # a core); older checkouts give no dataset, no costs or no waits
    per_worker: dict[str, list[tuple[int, float, str, float | None, int | None, float | None]]]
    per_worker = {}
    costs = getattr(tl, "chunk_costs", None) or [(None, None)] * len(tl.chunks)
    for (worker, events, seconds, *dataset), (cpu, faults, *waited) in zip(
        tl.chunks, costs, strict=True
    ):
        chunk = (events, seconds, "".join(dataset), cpu, faults, (waited or [None])[0])
        per_worker.setdefault(worker, []).append(chunk)
    rates = {}
    for worker, chunks in per_worker.items():
        steady = chunks[1:] or chunks  # without the worker's first chunk (imports, caches)
        rates[worker] = sum(c[0] for c in steady) / max(sum(c[1] for c in steady), 1e-9)
    row["worker_rates"] = sorted(rates.values())
    row["first_chunk_seconds"] = [c[0][1] for c in per_worker.values()]
    row["worker_faults"] = sorted(
        sum(c[4] for c in chunks)
        for chunks in per_worker.values()
        if all(c[4] is not None for c in chunks)
    )
    # each worker's chunks after its first, for the same-chunks comparison (_same_chunks)
    row["steady_chunks"] = {w: c[1:] or c for w, c in per_worker.items()}
    return row


#: a chunk with fewer page faults than this touched no new memory (its arrays reused the last
#: chunk's): :func:`_same_chunks` with ``fault_free``
FAULT_FREE = 500


def _chunk_seconds(chunk: tuple, view: str) -> float | None:
    """A chunk's seconds in one view: ``wall``; ``cpu`` (its thread's CPU seconds); ``ready``
    (wall less the seconds its thread waited for a core other threads held); ``waited``
    (those seconds alone); None where its run did not record them."""
    if view == "wall":
        return chunk[1]
    if view == "cpu":
        return chunk[3] if len(chunk) > 3 else None
    waited = chunk[5] if len(chunk) > 5 else None
    if waited is None:
        return None
    return chunk[1] - waited if view == "ready" else waited


def _per_event(chunks: list, view: str) -> dict[str, float] | None:
    """Seconds per event of each dataset over ``chunks`` in one view of
    :func:`_chunk_seconds`; None where a chunk did not record that view."""
    sums: dict[str, list[float]] = {}
    for c in chunks:
        seconds = _chunk_seconds(c, view)
        if seconds is None:
            return None
        total = sums.setdefault(c[2], [0.0, 0.0])
        total[0] += c[0]
        total[1] += seconds
    return {d: t / max(e, 1.0) for d, (e, t) in sums.items()}


def _same_chunks(
    single: dict,
    row: dict,
    *,
    cpu: bool = False,
    fault_free: bool = False,
    ready: bool = False,
) -> tuple[list[float], float] | None:
    """Each worker's speed against the single process *on the same chunks*: the seconds the
    single process took per event of each dataset, times the worker's events of that dataset,
    over the worker's seconds; and the same pooled over the workers. A worker's plain rate
    depends on the mix of chunks it drew (a data chunk fills the nominal only, a W chunk ~770
    variations: several times slower), this ratio does not. None without datasets.

    ``cpu``: the CPU seconds of the threads that ran the chunks instead of their wall seconds
    (what other processes on the same cores took from them is left out). ``fault_free``: only
    the chunks, on both sides, with fewer than :data:`FAULT_FREE` page faults (the memory a
    process touches for the first time is left out). ``ready``: the wall seconds less those
    the chunk's thread waited for a core that other threads held (what the chunk would take
    with a core of its own, the hypervisor's share still in). None where a run did not record
    these.
    """
    view = "cpu" if cpu else "ready" if ready else "wall"

    def kept(chunks: list) -> list:
        if fault_free:
            return [c for c in chunks if len(c) > 4 and c[4] is not None and c[4] < FAULT_FREE]
        return list(chunks)

    per_event = _per_event(
        kept([c for cs in single.get("steady_chunks", {}).values() for c in cs]), view
    )
    if not per_event or "" in per_event:
        return None
    ratios, expected_all, actual_all = [], 0.0, 0.0
    for chunks in row.get("steady_chunks", {}).values():
        chunks = kept(chunks)
        if fault_free:  # a dataset whose every chunk faulted on one side is left out
            chunks = [c for c in chunks if c[2] in per_event]
        seconds = [_chunk_seconds(c, view) for c in chunks]
        if not chunks or any(c[2] not in per_event for c in chunks) or None in seconds:
            return None
        expected = sum(c[0] * per_event[c[2]] for c in chunks)
        actual = sum(s for s in seconds if s is not None)
        ratios.append(expected / max(actual, 1e-9))
        expected_all += expected
        actual_all += actual
    return sorted(ratios), expected_all / max(actual_all, 1e-9)


def _decompose(single: dict, row: dict) -> dict[str, tuple[float, float]] | None:
    """Where a run's chunk seconds went, against the single process on the same chunks: for
    ``cpu`` (the threads' CPU), ``waited`` (ready, waiting for a core other threads held) and
    ``rest`` (the wall less both: reading from disk, waiting for the GIL or a lock, and the
    hypervisor's share), the single process's seconds and the run's, both as fractions of the
    single process's wall seconds on those chunks (its wall is 1). None where a run did not
    record the waits.

    >>> one = {"steady_chunks": {"a": [(10, 1.0, "w", 0.8, 0, 0.1)]}}
    >>> two = {"steady_chunks": {"b": [(10, 1.5, "w", 0.9, 0, 0.5)]}}
    >>> {k: tuple(round(x, 2) for x in v) for k, v in _decompose(one, two).items()}
    {'cpu': (0.8, 0.9), 'waited': (0.1, 0.5), 'rest': (0.1, 0.1)}
    """
    chunks = [c for cs in row.get("steady_chunks", {}).values() for c in cs]
    mine = [c for cs in single.get("steady_chunks", {}).values() for c in cs]
    per_event: dict[str, dict[str, float]] = {}
    for view in ("wall", "cpu", "waited"):
        seconds = _per_event(mine, view)
        if seconds is None:
            return None
        per_event[view] = seconds
    if not chunks or any(c[2] not in per_event["wall"] for c in chunks):
        return None
    seconds = {v: [_chunk_seconds(c, v) for c in chunks] for v in per_event}
    if any(None in xs for xs in seconds.values()):
        return None
    expected = {v: sum(c[0] * per_event[v][c[2]] for c in chunks) for v in per_event}
    actual = {v: sum(x for x in xs if x is not None) for v, xs in seconds.items()}
    norm = max(expected["wall"], 1e-9)
    out = {v: (expected[v] / norm, actual[v] / norm) for v in ("cpu", "waited")}
    out["rest"] = tuple(
        (side["wall"] - side["cpu"] - side["waited"]) / norm for side in (expected, actual)
    )
    return out


def _measure(cfg: dict, pythonpath: str | None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return measure(__file__, cfg, env)


def _halves(datasets: Path, tmp: Path) -> list[Path]:
    """Two ``datasets.yaml`` in ``tmp`` that share out every dataset's files between them
    (alternately; a dataset of one file goes to one of them, in turn), with absolute paths and
    without the sums of weights and event counts of the whole (they come from the files).

    >>> import tempfile, yaml
    >>> d = Path(tempfile.mkdtemp())
    >>> _ = (d / "datasets.yaml").write_text(yaml.safe_dump({"datasets": {
    ...     "w": {"files": ["w/0.root", "w/1.root", "w/2.root"], "sumw": 3.0},
    ...     "z": {"files": ["z/0.root"]}}}))
    >>> [sorted(Path(f).name for ds in yaml.safe_load(p.read_text())["datasets"].values()
    ...         for f in ds["files"]) for p in _halves(d / "datasets.yaml", d)]
    [['0.root', '0.root', '2.root'], ['1.root']]
    """
    import yaml

    doc = yaml.safe_load(datasets.read_text())
    base = datasets.parent
    halves: list[dict] = [{**doc, "datasets": {}} for _ in range(2)]
    turn = 0
    for name, entry in doc["datasets"].items():
        entry = {k: v for k, v in entry.items() if k not in ("sumw", "nevents")}
        for key in ("lumi_csv", "golden_json"):
            if isinstance(entry.get(key), str):
                entry[key] = str(base / entry[key])
        files = [str(base / f) if isinstance(f, str) else f for f in entry["files"]]
        shares = [files[0::2], files[1::2]] if len(files) > 1 else [[], []]
        if len(files) == 1:
            shares[turn] = files
            turn = 1 - turn
        for half, share in zip(halves, shares, strict=True):
            if share:
                half["datasets"][name] = {**entry, "files": share}
    paths = [tmp / f"half-{i}.yaml" for i in range(2)]
    for path, half in zip(paths, halves, strict=True):
        path.write_text(yaml.safe_dump(half, sort_keys=False))
    return paths


def _concurrent_pair(datasets: Path, tmp: Path, chunksize: int) -> dict:
    """Two single processes started together, each over half of the sample's files (as two
    workers share them out: different data in each process's caches): one row whose
    ``worker_rates`` are the two processes' steady rates and whose phases are the slower's.
    (Before the fifteenth pass both processes read the whole sample, the same files at about
    the same moment: they shared the input in the machine's caches, which workers do not.)
    Both fill with the sample's ``corrections.json``, as the single process does."""
    corrections = datasets.parent / "corrections.json"
    cfgs = [
        {
            "datasets": str(half),
            "corrections": str(corrections) if corrections.is_file() else None,
            "out": str(tmp / f"concurrent-{i}.h5"),
            "executor": "iterative",
            "workers": 1,
            "chunksize": chunksize,
        }
        for i, half in enumerate(_halves(datasets, tmp))
    ]
    with ThreadPoolExecutor(2) as pool:
        pair = list(pool.map(lambda cfg: _measure(cfg, None), cfgs))
    bad = [r for r in pair if "error" in r]
    if bad:
        return bad[0]
    row = dict(max(pair, key=lambda r: r["total"]))
    row["worker_rates"] = sorted(x for r in pair for x in r.get("worker_rates") or [])
    row["steady_chunks"] = {
        f"{i}-{w}": c for i, r in enumerate(pair) for w, c in r.get("steady_chunks", {}).items()
    }
    return row


def _speedup(one: dict, two: dict) -> float:
    """2 workers against 1 in the processing phase: from the first chunk done to the last."""
    return (one["processed"] - one["first"]) / (two["processed"] - two["first"])


def _has_warmstart(checkout: str) -> bool:
    return (Path(checkout) / "analysis" / "warmstart.py").is_file()


def _median_range(xs: list[float]) -> str:
    if not xs:
        return "-"
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}-{max(xs):.2f}, {len(xs)} rounds)"


#: the other views of :func:`_same_chunks` printed beside the wall-clock one
_VIEWS = (
    ("same chunks / single, thread CPU seconds", {"cpu": True}),
    (f"same chunks / single, chunks with < {FAULT_FREE} page faults", {"fault_free": True}),
    ("same chunks / single, wall less the waits for a core", {"ready": True}),
)


def _median_shares(pairs: list[tuple[dict, dict]]) -> str:
    """:func:`_decompose` of each (single process, run) pair, as the medians over the rounds
    of each share, single -> run; empty where no run recorded its waits."""
    parts = [d for d in (_decompose(s, r) for s, r in pairs) if d is not None]
    return "; ".join(
        f"{name} {statistics.median(p[name][0] for p in parts):.2f} -> "
        f"{statistics.median(p[name][1] for p in parts):.2f}"
        for name in ("cpu", "waited", "rest")
        if parts
    )


def _per_round(every: dict, workers: list[int], codes: list[str]) -> None:
    """The target ratios of each round against *that round's* single process, then their
    median and range: a slow spell of the machine hits the runs of one round together, so the
    per-round ratios scatter less than ratios of the fastest runs of different rounds."""
    print("\nper round (each round's runs against its own single process): median (range, rounds)")
    for code in codes:
        singles = every.get((code, "iterative", 1), [])
        for kind in ("dask", "dask-warm"):
            for n in workers:
                runs = every.get((code, kind, n), [])
                pairs = [
                    (s, r)
                    for s, r in zip(singles, runs, strict=False)
                    if "error" not in s and "error" not in r
                ]
                for label, opts in (("same chunks / single", {}), *_VIEWS):
                    ratios = [_same_chunks(s, r, **opts) for s, r in pairs]
                    pooled = [x[1] for x in ratios if x is not None]
                    if pooled:
                        target = "" if opts else "  (target >= 0.85)"
                        print(
                            f"  {code:8} {kind:9} {n} worker(s), {label}: "
                            f"{_median_range(pooled)}{target}"
                        )
                shares = _median_shares(pairs)
                if shares:
                    print(
                        f"  {code:8} {kind:9} {n} worker(s), the same chunks' seconds, single "
                        f"-> workers, as shares of the single's wall (median): {shares}"
                    )
                faults = [
                    statistics.fmean(r["worker_faults"]) / s["worker_faults"][0]
                    for s, r in pairs
                    if r.get("worker_faults") and s.get("worker_faults")
                ]
                if faults:
                    print(
                        f"  {code:8} {kind:9} {n} worker(s), page faults per worker / the single "
                        f"process's: {_median_range(faults)}"
                    )
            ones, twos = every.get((code, kind, 1), []), every.get((code, kind, 2), [])
            scale = [
                _speedup(a, b)
                for a, b in zip(ones, twos, strict=False)
                if "error" not in a and "error" not in b and a.get("first") and b.get("first")
            ]
            if scale:
                print(
                    f"  {code:8} {kind:9} 2 / 1 worker, processing phase: "
                    f"{_median_range(scale)}  (target >= 1.8)"
                )
    pairs = [
        (s, r)
        for s, r in zip(
            every.get(("this", "iterative", 1), []),
            every.get(("this", "iterative-x2", 2), []),
            strict=False,
        )
        if "error" not in s and "error" not in r
    ]
    control = [x[1] for x in (_same_chunks(s, r) for s, r in pairs) if x is not None]
    if control:  # --concurrent: what two busy cores allow, round by round
        print(
            "  two single processes at once, each, same chunks / single (the ceiling of two "
            f"workers here): {_median_range(control)}"
        )
        shares = _median_shares(pairs)
        if shares:
            print(f"  two single processes at once, the same shares: {shares}")
    print(
        "\nseconds per round, median (range): the whole command; the harvest; the fixed cost "
        "(command start -> first chunk done, target <= 5)"
    )
    for (code, kind, n), runs in every.items():
        ok = [r for r in runs if "error" not in r]
        totals = [r["total"] for r in ok]
        harvests = [r["harvest"] for r in ok if r.get("harvest") is not None]
        firsts = [r["first"] for r in ok if r.get("first") is not None]
        print(
            f"  {code:8} {kind:12} {n}: {_median_range(totals)}; "
            f"{'-' if kind.startswith('iterative') else _median_range(harvests)}; {_median_range(firsts)}"
        )
    _host_per_round(every, workers, codes)


def _percent_range(xs: list[float]) -> str:
    if not xs:
        return "-"
    return f"{100 * statistics.median(xs):.1f} % ({100 * min(xs):.1f}-{100 * max(xs):.1f})"


def _host_per_round(every: dict, workers: list[int], codes: list[str]) -> None:
    """What the machine did during each run (``benchmarks._common.host_share``): how busy its
    cores were, and how much of them the hypervisor took (steal). A round whose runs lost
    more to steal than the others is slow for a reason outside the code; the per-round
    ratios of two workers are listed beside the steal of both their runs."""
    print(
        "\nthe machine during each run, median (range) over the rounds: busy share of all "
        "cores; share taken by the hypervisor (steal)"
    )
    for (code, kind, n), runs in every.items():
        hosts = [r["host"] for r in runs if r.get("host")]
        print(
            f"  {code:8} {kind:12} {n}: {_percent_range([h['busy'] for h in hosts])}; "
            f"{_percent_range([h['steal'] for h in hosts])}"
        )
    n = max(workers, default=0)
    for code in codes:
        singles = every.get((code, "iterative", 1), [])
        for kind in ("dask", "dask-warm"):
            runs = every.get((code, kind, n), [])
            lines = []
            for i, (s, r) in enumerate(zip(singles, runs, strict=False)):
                same = None if "error" in s or "error" in r else _same_chunks(s, r)
                if same is None or not s.get("host") or not r.get("host"):
                    continue
                lines.append(
                    f"    round {i + 1}: {same[1]:.2f}; steal {100 * s['host']['steal']:.1f} % "
                    f"(single), {100 * r['host']['steal']:.1f} % ({n} workers)"
                )
            if lines:
                print(f"  {code} {kind} {n} workers, same chunks / single, per worker, by round:")
                print("\n".join(lines))


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000, help="MC events to generate")
    parser.add_argument("--samples", help="reuse this directory's datasets.yaml")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="*",
        default=[1, 2],
        help="Dask workers of each local-cluster configuration (none given: one process only, "
        "the demo's configuration)",
    )
    parser.add_argument("--chunksize", type=int, default=200_000)
    parser.add_argument("--baseline", help="a checkout of older code to run the same configs")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure each configuration N times, interleaved, and keep its fastest",
    )
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the unmeasured single-process run of each code before the rounds (it fills a "
        "fresh checkout's numba cache and the page cache, which would make round 1 an outlier "
        "in the per-round medians and ranges: 36 s against 15-16 s, seen)",
    )
    parser.add_argument(
        "--warm",
        action="store_true",
        help="also run each local cluster with warm workers (analysis.warmstart: forked from a "
        "server that imported the stack, as the wmass command does), as executor dask-warm",
    )
    parser.add_argument(
        "--concurrent",
        action="store_true",
        help="also run two single processes at once (executor iterative-x2): the steady rate "
        "two busy cores allow, without Dask or a driver",
    )
    args = run_one_or_parse(parser, _one)
    if args is None:
        return

    with tempfile.TemporaryDirectory(prefix="wmass-profile-") as tmp:
        if args.samples:
            datasets = Path(args.samples) / "datasets.yaml"
        else:
            from analysis.generate import generate_samples

            print(f"generating {args.events:,} events ...", file=sys.stderr)
            datasets = generate_samples(
                Path(tmp) / "samples", events=args.events, files_per_process=2, seed=13, jobs=2
            )
        configs = [("iterative", 1)] + [("dask", n) for n in args.workers]
        configs += [("dask-warm", n) for n in args.workers] if args.warm else []
        codes = [("this", None)] + ([("baseline", args.baseline)] if args.baseline else [])
        best: dict[tuple[str, str, int], dict] = {}
        every: dict[tuple[str, str, int], list[dict]] = {}  # each round's run, in order

        def config(code: str, executor: str, workers: int) -> dict:
            return {
                "datasets": str(datasets),
                "out": str(Path(tmp) / f"{code}-{executor}-{workers}.h5"),
                "executor": executor,
                "workers": workers,
                "chunksize": args.chunksize,
            }

        for code, path in codes if not args.no_warmup else []:
            r = _measure(config(code, "iterative", 1), path)
            total = r.get("total", float("nan"))
            print(f"  warm-up {code} (not measured): {total:.1f} s", file=sys.stderr)
        for round_ in range(args.rounds):  # interleaved: a change of load hits both codes
            for code, path in codes:
                for executor, workers in configs:
                    if path and executor == "dask-warm" and not _has_warmstart(path):
                        continue  # a checkout before analysis.warmstart
                    r = _measure(config(code, executor, workers), path)
                    key = (code, executor, workers)
                    every.setdefault(key, []).append(r)
                    if (
                        key not in best
                        or "error" in best[key]
                        or r.get("total", 1e9) < best[key]["total"]
                    ):
                        best[key] = r
                    print(
                        f"  measured {code} {executor} {workers} (round {round_ + 1}): "
                        f"{r.get('total', float('nan')):.1f} s, load {os.getloadavg()[0]:.1f}",
                        file=sys.stderr,
                    )
            if args.concurrent:
                r = _concurrent_pair(datasets, Path(tmp), args.chunksize)
                key = ("this", "iterative-x2", 2)
                every.setdefault(key, []).append(r)
                if key not in best or r.get("total", 1e9) < best[key].get("total", 1e9):
                    best[key] = r
                print(
                    f"  measured two concurrent single processes (round {round_ + 1}): "
                    f"{r.get('total', float('nan')):.1f} s",
                    file=sys.stderr,
                )
        rows = [(code, executor, workers, r) for (code, executor, workers), r in best.items()]

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"\nhistmaker profile: {os.cpu_count()} cores, chunks of {args.chunksize:,} entries, "
        f"fastest of {args.rounds} round(s), load average {load} (1, 5, 15 min) at the end"
    )
    print("seconds since the process started (phases), and events/s")
    head = (
        f"{'code':8} {'executor':9} {'wk':>2} {'imports':>7} {'cluster':>7} {'plan':>6} "
        f"{'1st chunk':>9} {'processed':>9} {'harvest':>7} {'convert':>7} {'write':>6} "
        f"{'total':>6} {'ev/s':>9}"
    )
    print(head)
    print("-" * len(head))
    for code, executor, workers, r in rows:
        if "error" in r:
            print(f"{code:8} {executor:9} {workers:>2} error: {r['error']}")
            continue
        print(
            f"{code:8} {executor:9} {workers:>2} {_fmt(r['imports']):>7} "
            f"{_fmt(r.get('cluster')):>7} {_fmt(r.get('plan')):>6} {_fmt(r.get('first')):>9} "
            f"{_fmt(r.get('processed')):>9} {_fmt(r.get('harvest')):>7} "
            f"{_fmt(r.get('convert')):>7} {_fmt(r.get('write')):>6} {r['total']:>6.1f} "
            f"{r['events'] / r['total']:>9,.0f}"
        )
    ours = {(e, w): r for c, e, w, r in rows if c == "this" and "error" not in r}
    single = ours.get(("iterative", 1), {})
    base_rate = (single.get("worker_rates") or [None])[0]
    print("\nsteady-state rate per worker (chunks after its first), events/s")
    for (executor, workers), r in ours.items():
        rates = r.get("worker_rates") or []
        frac = ", ".join(f"{x / base_rate:.2f}" for x in rates) if base_rate else "-"
        print(
            f"  {executor:9} {workers} worker(s): "
            f"{', '.join(f'{x:,.0f}' for x in rates)}  (of the single process: {frac})"
        )
    print(
        "\nsteady speed per worker against the single process on the same chunks (each "
        "dataset's seconds per event in the single process; target >= 0.85)"
    )
    for (executor, workers), r in ours.items():
        if (executor, workers) == ("iterative", 1):
            continue
        for label, opts in (("wall", {}), *_VIEWS):
            same = _same_chunks(single, r, **opts)
            if same is not None:
                each, pooled = same
                print(
                    f"  {executor:12} {workers} worker(s): "
                    f"{', '.join(f'{x:.2f}' for x in each)}  (pooled {pooled:.2f}; {label})"
                )
        if r.get("worker_faults") and single.get("worker_faults"):
            print(
                f"  {executor:12} {workers} worker(s): page faults per worker "
                f"{', '.join(f'{x:,}' for x in r['worker_faults'])} (single process: "
                f"{single['worker_faults'][0]:,})"
            )
    print("\nratios (targets of issue 13)")
    for n in args.workers:
        r = ours.get(("dask", n))
        if r and single:
            print(
                f"  dask {n} worker(s) / one process, whole command:   "
                f"{single['total'] / r['total']:.2f}x"
            )
    for kind in ("dask", "dask-warm"):
        one, two = ours.get((kind, 1)), ours.get((kind, 2))
        if not (one and two):
            continue
        print(f"  {kind} 2 workers / 1 worker, whole command: {one['total'] / two['total']:.2f}x")
        print(
            f"  {kind} 2 workers / 1 worker, processing phase: {_speedup(one, two):.2f}x  "
            "(target >= 1.8)"
        )
    for (executor, workers), r in ours.items():
        print(
            f"  fixed cost {executor} {workers}: command start -> first chunk done "
            f"{r['first']:.1f} s (target <= 5)"
        )
    if args.rounds > 1:
        _per_round(every, args.workers, [code for code, _ in codes])
    if args.baseline:
        old = {(e, w): r for c, e, w, r in rows if c == "baseline" and "error" not in r}
        for key, r in ours.items():
            if key in old:
                print(
                    f"  this / baseline, {key[0]} {key[1]}, whole command: "
                    f"{old[key]['total'] / r['total']:.2f}x faster"
                )
        for executor, workers in ours:
            ratios = []  # round by round: mean steady rate per worker, this over baseline
            for new, base in zip(
                every.get(("this", executor, workers), []),
                every.get(("baseline", executor, workers), []),
                strict=False,
            ):
                a, b = new.get("worker_rates"), base.get("worker_rates")
                if a and b:
                    ratios.append(statistics.fmean(a) / statistics.fmean(b))
            if ratios:
                print(
                    f"  this / baseline, {executor} {workers}, steady rate per worker: "
                    f"{_median_range(ratios)}"
                )


if __name__ == "__main__":
    main()
