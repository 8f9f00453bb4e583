"""Speed of ``wmass generate``: events/s generated and written, split into generation and
writing, against a plain ``uproot`` write of the same arrays, for LZ4 and ZSTD.

    .venv/bin/python benchmarks/generate.py [--events 500000] [--full 1000000]

For each compression: the W -> mu nu MC with the full branch set (103 PDF + 9 scale + 21 mass
weights, GenPart, muons) is generated in 100k-event batches and written with ``mktree`` +
``extend`` (one basket per batch); the baseline writes the already generated arrays with
uproot alone, so ``gen+write / plain write`` is what the generation costs on top. The read
column is a full read-back of the file (what the histmaker pays). Then the whole
``generate_samples`` (all processes, data, truth, corrections) end to end. One core, wall
and CPU time; the machine is shared, so compare ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import uproot

# run as a script, this directory would shadow the packages (benchmarks/fit.py vs fit)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


from analysis.generate import (  # noqa: E402
    BATCH_SIZE,
    COMPRESSIONS,
    generate_batch,
    generate_samples,
    to_branches,
)
from analysis.generate.processes import PROCESSES  # noqa: E402
from analysis.generate.truth import DetectorTruth  # noqa: E402
from analysis.generate.weights import TheoryCoefficients  # noqa: E402


def _generate(n_events: int) -> tuple[list[dict], float]:
    truth = DetectorTruth.from_seed(1)
    coeff = TheoryCoefficients(np.random.SeedSequence(1))
    spec = PROCESSES["wmunu"]
    batches = []
    t0 = time.process_time()
    for b, n in enumerate(_sizes(n_events)):
        batch = generate_batch(spec, n, np.random.default_rng(b), truth, coeff, is_data=False)
        batch.flat["run"] = np.ones(n, np.uint32)
        batch.flat["luminosityBlock"] = np.ones(n, np.uint32)
        batch.flat["event"] = np.arange(n, dtype=np.uint64)
        batches.append(to_branches(batch))
    return batches, time.process_time() - t0


def _sizes(n: int) -> list[int]:
    return [min(BATCH_SIZE, n - i) for i in range(0, n, BATCH_SIZE)]


def _write(path: Path, batches: list[dict], compression: str) -> float:
    import awkward as ak

    t0 = time.process_time()
    with uproot.recreate(path, compression=COMPRESSIONS[compression]()) as f:
        types = {
            k: (v.type.content if isinstance(v, ak.Array) else v.dtype)
            for k, v in batches[0].items()
        }
        tree = f.mktree("Events", types)
        for b in batches:
            tree.extend(b)
    return time.process_time() - t0


def _read(path: Path) -> float:
    t0 = time.process_time()
    with uproot.open(path) as f:
        f["Events"].arrays(library="ak")
    return time.process_time() - t0


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the --jobs workers)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--full", type=int, default=1_000_000, help="events of the end-to-end run")
    args = parser.parse_args()
    n = args.events
    tmp = Path(tempfile.mkdtemp(prefix="wmass-bench-gen-"))
    comps = ("lz4", "zstd", "zstd5", "none")
    t_gen, t_write, t_read, size = [], {c: [] for c in comps}, {c: [] for c in comps}, {}
    try:
        for _ in range(args.rounds):
            batches, tg = _generate(n)
            t_gen.append(tg)
            for comp in comps:
                path = tmp / f"{comp}.root"
                t_write[comp].append(_write(path, batches, comp))
                size[comp] = os.path.getsize(path) / n
                t_read[comp].append(_read(path))
                path.unlink()
            del batches
        tg = float(np.median(t_gen))
        print(
            f"W -> mu nu MC, full branch set, {n} events, one core, CPU seconds, median of "
            f"{args.rounds} interleaved rounds\n"
        )
        print(
            f"{'compression':<12}{'gen ev/s':>10}{'write ev/s':>12}{'gen+write':>11}"
            f"{'vs plain write':>16}{'gen share':>11}{'bytes/ev':>10}{'read ev/s':>11}"
        )
        for comp in comps:
            tw, tr = float(np.median(t_write[comp])), float(np.median(t_read[comp]))
            total = tg + tw
            print(
                f"{comp:<12}{n / tg:>10.3g}{n / tw:>12.3g}{n / total:>11.3g}"
                f"{tw / total:>16.2f}{tg / total:>11.0%}{size[comp]:>10.0f}{n / tr:>11.3g}"
            )
        print(
            "\n'vs plain write' = (gen+write rate) / (rate of a plain uproot write of the same "
            "arrays); 'read' = uproot reading every branch back into awkward arrays"
        )

        print(
            f"\nend to end: generate_samples(events={args.full}): all MC, data, truth, "
            "corrections (imports excluded)"
        )
        print(
            f"{'compression':<12}{'jobs':>5}{'MC+data events':>16}{'wall s':>8}{'CPU s':>8}"
            f"{'ev/s per CPU s':>16}{'ev/s wall':>11}"
        )
        import json

        generate_samples(tmp / "warm-up", events=5000, seed=1)  # imports, numba, correctionlib
        for comp, jobs in (("lz4", 1), ("zstd", 1), ("lz4", 2)):
            out = tmp / f"full-{comp}-{jobs}"
            w0, c0 = time.perf_counter(), _cpu()
            generate_samples(out, events=args.full, seed=1, compression=comp, jobs=jobs)
            wall, cpu = time.perf_counter() - w0, _cpu() - c0
            truth = json.loads((out / "truth.json").read_text())
            total = sum(truth["events_mc"].values()) + truth["events_data_written"]
            print(
                f"{comp:<12}{jobs:>5}{total:>16}{wall:>8.1f}{cpu:>8.1f}{total / cpu:>16.3g}"
                f"{total / wall:>11.3g}"
            )
            shutil.rmtree(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
