"""The files of a generated sample as independent tasks: each MC file and each data file is
written from its own random streams, seeded by ``(seed, process, file, batch)``, so that
``jobs`` forked workers (:func:`write_files`) give the same arrays as one process. A data
file mixes every process in each batch and sorts its events by (run, lumisection).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.generate.batch import Batch, generate_batch, to_branches
from analysis.generate.lumisections import LumiPlan
from analysis.generate.processes import MW_REF, PROCESSES
from analysis.generate.rootfile import RootWriter
from analysis.generate.truth import DetectorTruth
from analysis.generate.weights import TheoryCoefficients

__all__ = [
    "BATCH_SIZE",
    "KEY_COEFF",
    "KEY_DATA",
    "KEY_DATA_MIX",
    "KEY_LUMI",
    "KEY_MC",
    "KEY_PARTIAL",
    "FilePlan",
    "progress_bar",
    "split_by",
    "split_evenly",
    "stream",
    "write_files",
]

BATCH_SIZE = 100_000

# spawn keys of the seed sequences (the first entry says what the stream is for)
KEY_MC, KEY_DATA, KEY_DATA_MIX, KEY_COEFF, KEY_LUMI = 0, 1, 2, 3, 4
#: first spawn-key entry of the event streams of a sample of some processes only (e.g. the
#: calibration sample): independent of the full sample of the same seed, whose keys have none
KEY_PARTIAL = 100


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def stream(plan_or_prefix: Any, seed: int, *key: int) -> np.random.Generator:
    """``_rng`` of an event stream, in the streams of a partial sample when it is one."""
    prefix = getattr(plan_or_prefix, "prefix", plan_or_prefix)
    return _rng(seed, *prefix, *key)


def split_evenly(total: int, parts: int) -> list[int]:
    base, rest = divmod(total, parts)
    return [base + (1 if i < rest else 0) for i in range(parts)]


def split_by(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders; the sum is exact)."""
    w = np.asarray(weights, dtype=np.float64)
    if len(w) == 1:
        return [total]
    exact = total * w / w.sum()
    out = np.floor(exact).astype(np.int64)
    order = np.argsort(out - exact, kind="stable")  # largest remainders first
    out[order[: total - int(out.sum())]] += 1
    return [int(n) for n in out]


def _batches(total: int, size: int) -> list[int]:
    return split_evenly(total, max(1, math.ceil(total / size))) if total > 0 else []


@dataclass(frozen=True)
class FilePlan:
    """Everything a worker needs to write one file (picklable)."""

    out: Path
    seed: int
    mw: float
    truth: DetectorTruth
    lumi: LumiPlan
    compression: str
    batch_size: int
    n_mc: dict[str, list[int]]  # dataset -> events per file
    n_data: dict[str, list[int]]  # dataset -> data events per data file (before prefiring)
    # (both hold only the datasets written; the seeds use the index in PROCESSES)
    lumi_blocks: tuple[np.ndarray, ...]  # indices into ``lumi`` of each data file's lumisections
    prefix: tuple[int, ...] = ()  # spawn-key prefix of the event streams: () full, (KEY_PARTIAL,)


def _coefficients(seed: int) -> dict[str, TheoryCoefficients]:
    return {
        name: TheoryCoefficients(np.random.SeedSequence(seed, spawn_key=(KEY_COEFF, i)))
        for i, name in enumerate(PROCESSES)
    }


def _write_mc_file(plan: FilePlan, name: str, k: int, progress: Any = None) -> dict[str, Any]:
    """MC file ``k`` of dataset ``name``; returns its path, sum of weights and events."""
    i = list(PROCESSES).index(name)
    spec = PROCESSES[name]
    coefficients = _coefficients(plan.seed)[name]
    rel = f"{name}/nano_{k}.root"
    writer = RootWriter(plan.out / rel, plan.compression)
    first = sum(plan.n_mc[name][:k])  # event ids continue over the files of a dataset
    sumw, written = 0.0, 0
    for b, n in enumerate(_batches(plan.n_mc[name][k], plan.batch_size)):
        batch = generate_batch(
            spec,
            n,
            stream(plan, plan.seed, KEY_MC, i, k, b),
            plan.truth,
            coefficients,
            is_data=False,
        )
        ids = np.uint64(first + written) + np.arange(n, dtype=np.uint64)
        batch.flat["run"] = np.ones(n, np.uint32)
        batch.flat["luminosityBlock"] = (1 + ids // np.uint64(1000)).astype(np.uint32)
        batch.flat["event"] = ids + np.uint64(1)
        sumw += float(batch.flat["genWeight"].astype(np.float64).sum())
        written += n
        writer.write(to_branches(batch))
        if progress is not None:
            progress.update(n)
    # the lumisections of this file's events (a boundary one is shared with the next file)
    last = first + written - 1  # the file's last event id (ids start at 0 here)
    ls = np.arange(1 + first // 1000, 2 + last // 1000 if written else 0, dtype=np.uint32)
    writer.write_lumi_blocks(np.ones(len(ls), np.uint32), ls)
    writer.close()
    return {"name": name, "k": k, "file": rel, "sumw": sumw, "nevents": written}


def _write_data_file(plan: FilePlan, k: int, progress: Any = None) -> dict[str, Any]:
    """Data file ``k``: every process mixed in each batch, sorted by (run, lumisection);
    event numbers count the generated events (those lost to prefiring leave gaps). The events
    fall in the file's own lumisections (``plan.lumi_blocks[k]``), which its
    ``LuminosityBlocks`` tree lists, those without any event included."""
    block = plan.lumi_blocks[k]
    coefficients = _coefficients(plan.seed)
    total = sum(plan.n_data[name][k] for name in plan.n_data)
    n_rounds = max(1, math.ceil(total / plan.batch_size))
    shares = {name: split_evenly(plan.n_data[name][k], n_rounds) for name in plan.n_data}
    first = sum(plan.n_data[name][j] for name in plan.n_data for j in range(k))
    rel = f"data/nano_{k}.root"
    writer = RootWriter(plan.out / rel, plan.compression)
    written = 0
    for r in range(n_rounds):
        pieces = []
        for i, (name, spec) in enumerate(PROCESSES.items()):
            if name not in shares:  # a sample of some processes only (same seeds)
                continue
            n = shares[name][r]
            if n == 0:
                continue
            rng = stream(plan, plan.seed, KEY_DATA, i, k, r)
            mw = plan.mw if spec.w_mass else MW_REF
            pieces.append(
                generate_batch(spec, n, rng, plan.truth, coefficients[name], is_data=True, mw=mw)
            )
            if progress is not None:
                progress.update(n)
        generated = sum(shares[name][r] for name in shares)
        batch = Batch.concatenate(pieces) if pieces else None
        if batch is not None and len(batch):
            n = len(batch)
            run, ls = plan.lumi.assign(stream(plan, plan.seed, KEY_DATA_MIX, k, r), n, block)
            order = np.lexsort((ls, run))
            batch = batch.reorder(order)
            batch.flat["run"] = run[order]
            batch.flat["luminosityBlock"] = ls[order]
            batch.flat["event"] = np.uint64(first + 1) + np.arange(n, dtype=np.uint64)
            writer.write(to_branches(batch))
            written += n
        first += generated
    if written == 0:  # a tiny sample: still a valid file, with an empty Events tree
        spec = PROCESSES["wmunu"]
        rng = stream(plan, plan.seed, KEY_DATA, 0, k, n_rounds)
        empty = generate_batch(spec, 1, rng, plan.truth, coefficients["wmunu"], is_data=True)
        empty = empty.select(np.zeros(len(empty), dtype=bool))
        empty.flat["run"] = np.zeros(0, np.uint32)
        empty.flat["luminosityBlock"] = np.zeros(0, np.uint32)
        empty.flat["event"] = np.zeros(0, np.uint64)
        writer.write(to_branches(empty))
    writer.write_lumi_blocks(plan.lumi.run[block], plan.lumi.ls[block])
    writer.close()
    return {"name": "data", "k": k, "file": rel, "nevents": written}


def _run_task(plan: FilePlan, task: tuple[str, int], progress: Any = None) -> dict[str, Any]:
    name, k = task
    if name == "data":
        return _write_data_file(plan, k, progress)
    return _write_mc_file(plan, name, k, progress)


def write_files(
    plan: FilePlan, tasks: list[tuple[str, int]], jobs: int, bar: Any
) -> list[dict[str, Any]]:
    """Write the files of ``tasks``, in this process or in ``jobs`` forked workers."""
    if jobs == 1 or len(tasks) == 1:
        return [_run_task(plan, task, bar) for task in tasks]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # the largest files first, so that the workers finish together
    def size(task):
        name, k = task
        n = plan.n_data if name == "data" else plan.n_mc
        return sum(v[k] for v in n.values()) if name == "data" else n[name][k]

    ordered = sorted(tasks, key=size, reverse=True)
    results = []
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(_run_task, plan, t): t for t in ordered}
        for future in as_completed(futures):
            results.append(future.result())
            bar.update(size(futures[future]))
    return results


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="ev", unit_scale=True, file=sys.stderr, desc="generate")
