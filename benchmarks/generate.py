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
from analysis.generate_processes import PROCESSES  # noqa: E402
from analysis.generate_truth import DetectorTruth  # noqa: E402
from analysis.generate_weights import TheoryCoefficients  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=500_000)
    parser.add_argument("--full", type=int, default=1_000_000, help="events of the end-to-end run")
    args = parser.parse_args()
    n = args.events
    tmp = Path(tempfile.mkdtemp(prefix="wmass-bench-gen-"))
    try:
        batches, t_gen = _generate(n)
        rows = []
        for comp in ("lz4", "zstd", "zstd5", "none"):
            path = tmp / f"{comp}.root"
            t_write = _write(path, batches, comp)
            size = os.path.getsize(path) / n
            t_read = _read(path)
            rows.append((comp, t_gen, t_write, size, t_read))
            path.unlink()
        print(f"W -> mu nu MC, full branch set, {n} events, one core (CPU seconds)\n")
        print(
            f"{'compression':<12}{'gen ev/s':>11}{'write ev/s':>12}{'gen+write ev/s':>16}"
            f"{'/plain write':>13}{'gen share':>11}{'bytes/ev':>10}{'read ev/s':>11}"
        )
        for comp, tg, tw, size, tr in rows:
            total = tg + tw
            print(
                f"{comp:<12}{n / tg:>11.3g}{n / tw:>12.3g}{n / total:>16.3g}"
                f"{tw / total:>13.2f}{tg / total:>11.0%}{size:>10.0f}{n / tr:>11.3g}"
            )
        print("\n'/plain write' = (gen+write rate) / (plain uproot write rate of the same arrays)")

        print(f"\nend to end: generate_samples(events={args.full}) incl. data, truth, corrections")
        print(
            f"{'compression':<12}{'MC+data events':>16}{'wall s':>9}{'CPU s':>8}{'ev/s (CPU)':>12}"
        )
        for comp in ("lz4", "zstd"):
            out = tmp / f"full-{comp}"
            w0, c0 = time.perf_counter(), time.process_time()
            generate_samples(out, events=args.full, seed=1, compression=comp)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            import json

            truth = json.loads((out / "truth.json").read_text())
            total = sum(truth["events_mc"].values()) + truth["events_data_written"]
            print(f"{comp:<12}{total:>16}{wall:>9.1f}{cpu:>8.1f}{total / cpu:>12.3g}")
            shutil.rmtree(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
