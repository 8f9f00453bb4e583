"""Write synthetic NanoAOD samples with a known truth (``wmass generate``).

MC of W -> mu nu (signal), W -> tau nu, Z -> mu mu, Z -> tau tau, ttbar, dibosons and QCD
multijet at the reference W mass (80.379 GeV) with ``MEParamWeight`` mass variations, and a
``data`` sample: unweighted events of every process Poisson-drawn at the luminosity of the
sample, with the W at ``--mw``, the data detector (efficiencies, momentum-scale bias,
prefiring, pileup) and run/lumisection bookkeeping. Beside the ROOT files: ``datasets.yaml``,
``truth.json``, ``lumi.csv``, ``golden.json``, ``corrections.json`` (built from truth.json) and
``provenance.json``. Every file also has a ``LuminosityBlocks`` tree (``run``,
``luminosityBlock``) listing the lumisections it covers, as NanoAOD does; each data file owns a
block of lumisections (those without events included), so the histmaker's luminosity is that of
the files it processed. The layout and branches are the contract of docs/samples.md.
``datasets.yaml`` gives each MC dataset with mass weights its ``mass_reference_gev``
(:data:`MASS_REFERENCE_GEV`), the boson mass the weights' shifts are relative to.

>>> from analysis.generate import generate_samples
>>> yaml_path = generate_samples("samples", events=200_000, seed=1)  # doctest: +SKIP

Files are independent tasks seeded by ``(seed, process, file, batch)``: ``jobs=2`` writes them
from two forked worker processes and gives the same arrays. LZ4 is the default compression
(``benchmarks/generate.py``: the fastest compressed write and 3x faster to read than ZSTD).

The physics lives in :mod:`analysis.generate.physics` (kinematics),
:mod:`analysis.generate.processes` (the processes), :mod:`analysis.generate.detector`,
:mod:`analysis.generate.weights` (theory weights), :mod:`analysis.generate.truth` and
:mod:`analysis.generate.lumisections`. Same seed, same arrays.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot
import yaml

from analysis.generate.detector import Jagged, RecoEvents, simulate
from analysis.generate.lumisections import LumiPlan, plan_lumisections
from analysis.generate.processes import (
    GAMMA_W,
    MASS_SHIFTS_MEV,
    MW_REF,
    MZ_REF,
    PROCESSES,
    ProcessSpec,
)
from analysis.generate.truth import DetectorTruth
from analysis.generate.weights import TheoryCoefficients, theory_weights
from fit.provenance import atomic_path, atomic_write_text
from processors.errors import ConfigError

__all__ = [
    "CALIBRATION_PROCESSES",
    "COMPRESSIONS",
    "GENERATOR_VERSION",
    "MASS_REFERENCE_GEV",
    "add_arguments",
    "generate_batch",
    "generate_samples",
    "main",
    "to_branches",
]

GENERATOR_VERSION = "1.0"
#: the datasets of ``wmass generate --calibration-sample`` (docs/samples.md)
CALIBRATION_PROCESSES = ("zmumu",)
BATCH_SIZE = 100_000
#: name -> uproot compression; the default (lz4) is chosen by benchmarks/generate.py
COMPRESSIONS = {
    "lz4": lambda: uproot.LZ4(1),
    "zstd": lambda: uproot.ZSTD(1),
    "zstd5": lambda: uproot.ZSTD(5),
    "none": lambda: None,
}
DEFAULT_COMPRESSION = "lz4"
N_MASS = len(MASS_SHIFTS_MEV)
#: datasets with ``MEParamWeight`` mass variations -> the boson mass (GeV) the shifts are
#: relative to (written as ``mass_reference_gev`` in datasets.yaml, ``mass_weights_processes``
#: in truth.json); the other datasets' mass weights are all 1
MASS_REFERENCE_GEV: dict[str, float] = {
    "wmunu": MW_REF,
    "wtaunu": MW_REF,
    "zmumu": MZ_REF,
    "ztautau": MZ_REF,
}

# spawn keys of the seed sequences (the first entry says what the stream is for)
_MC, _DATA, _DATA_MIX, _COEFF, _LUMI = 0, 1, 2, 3, 4
#: first spawn-key entry of the event streams of a sample of some processes only (e.g. the
#: calibration sample): independent of the full sample of the same seed, whose keys have none
_PARTIAL = 100


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _stream(plan_or_prefix: Any, seed: int, *key: int) -> np.random.Generator:
    """``_rng`` of an event stream, in the streams of a partial sample when it is one."""
    prefix = getattr(plan_or_prefix, "prefix", plan_or_prefix)
    return _rng(seed, *prefix, *key)


def _jagged(counts: np.ndarray, content: dict[str, np.ndarray] | np.ndarray) -> ak.Array:
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    if isinstance(content, dict):
        inner = ak.contents.RecordArray(
            [ak.contents.NumpyArray(v) for v in content.values()], list(content)
        )
    else:
        inner = ak.contents.NumpyArray(content)
    return ak.Array(ak.contents.ListOffsetArray(ak.index.Index64(offsets), inner))


def _fixed(values: np.ndarray) -> ak.Array:
    """``[n, m]`` as a NanoAOD vector branch (``var * float32`` with an ``n...`` counter)."""
    n, m = values.shape
    return _jagged(np.full(n, m), np.ascontiguousarray(values).reshape(-1))


@dataclass
class Batch:
    """One batch of generated events: event-level arrays and collections, ready to write."""

    flat: dict[str, np.ndarray]
    collections: dict[str, Jagged]

    def __len__(self) -> int:
        return len(next(iter(self.flat.values())))

    def select(self, keep: np.ndarray) -> Batch:
        flat = {k: v[keep] for k, v in self.flat.items()}
        cols = {}
        for name, jag in self.collections.items():
            event = np.repeat(keep, jag.counts)
            cols[name] = Jagged(jag.counts[keep], {k: v[event] for k, v in jag.fields.items()})
        return Batch(flat, cols)

    @staticmethod
    def concatenate(batches: Sequence[Batch]) -> Batch:
        flat = {k: np.concatenate([b.flat[k] for b in batches]) for k in batches[0].flat}
        cols = {
            name: Jagged(
                np.concatenate([b.collections[name].counts for b in batches]),
                {
                    f: np.concatenate([b.collections[name].fields[f] for b in batches])
                    for f in jag.fields
                },
            )
            for name, jag in batches[0].collections.items()
        }
        return Batch(flat, cols)

    def reorder(self, order: np.ndarray) -> Batch:
        flat = {k: v[order] for k, v in self.flat.items()}
        cols = {}
        for name, jag in self.collections.items():
            offsets = np.zeros(len(jag.counts) + 1, dtype=np.int64)
            np.cumsum(jag.counts, out=offsets[1:])
            counts = jag.counts[order]
            starts = np.repeat(offsets[:-1][order], counts)
            within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            idx = starts + within
            cols[name] = Jagged(counts, {k: v[idx] for k, v in jag.fields.items()})
        return Batch(flat, cols)


def to_branches(batch: Batch) -> dict[str, Any]:
    """The ``{branch: array}`` dict that ``uproot`` writes (collections as records)."""
    out: dict[str, Any] = {}
    for k in ("run", "luminosityBlock", "event"):
        out[k] = batch.flat[k]
    for name, jag in batch.collections.items():
        out[name] = _jagged(jag.counts, jag.fields)
    for k, v in batch.flat.items():
        if k in out:
            continue
        out[k] = _fixed(v) if v.ndim == 2 else v
    return out


def generate_batch(
    spec: ProcessSpec,
    n: int,
    rng: np.random.Generator,
    truth: DetectorTruth,
    coefficients: TheoryCoefficients,
    *,
    is_data: bool,
    mw: float = MW_REF,
) -> Batch:
    """``n`` events of ``spec`` through the MC or data detector (data: before prefiring, with
    ``keep`` applied; no run/event ids yet)."""
    gen = spec.generate(rng, n, mw=mw)
    reco: RecoEvents = simulate(gen, truth, rng, is_data=is_data)
    flat = dict(reco.flat)
    if not is_data:
        sign = np.where(rng.random(n) < spec.negative_fraction, -1.0, 1.0)
        flat["genWeight"] = (sign * spec.weight).astype(np.float32)
        pdf, scale = theory_weights(gen, coefficients)
        flat["LHEPdfWeight"] = pdf
        flat["LHEScaleWeight"] = scale
        mass = gen.mass_weights if gen.mass_weights is not None else np.ones((n, N_MASS))
        flat["MEParamWeight"] = mass.astype(np.float32)
    batch = Batch(flat, reco.collections)
    return batch.select(reco.keep) if is_data else batch


def _split(total: int, parts: int) -> list[int]:
    base, rest = divmod(total, parts)
    return [base + (1 if i < rest else 0) for i in range(parts)]


def _split_by(total: int, weights: Sequence[float]) -> list[int]:
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
    return _split(total, max(1, math.ceil(total / size))) if total > 0 else []


class _Writer:
    """A ROOT file with a TTree ``Events`` written batch by batch (one basket per batch) and,
    at the end, a TTree ``LuminosityBlocks`` listing the lumisections the file covers."""

    def __init__(self, path: Path, compression: str) -> None:
        self._atomic = atomic_path(path)  # entered here, left by close()
        self.tmp = self._atomic.__enter__()
        self.path = path
        self.file = uproot.recreate(self.tmp, compression=COMPRESSIONS[compression]())
        self.tree = None

    def write(self, branches: dict[str, Any]) -> None:
        if self.tree is None:
            types = {
                k: (v.type.content if isinstance(v, ak.Array) else v.dtype)
                for k, v in branches.items()
            }
            self.tree = self.file.mktree("Events", types)
        self.tree.extend(branches)

    def write_lumi_blocks(self, run: np.ndarray, ls: np.ndarray) -> None:
        """The ``LuminosityBlocks`` tree: one entry ``(run, luminosityBlock)`` per lumisection."""
        types = {"run": np.uint32, "luminosityBlock": np.uint32}
        tree = self.file.mktree("LuminosityBlocks", types)
        if len(run):
            tree.extend(
                {
                    "run": np.asarray(run, dtype=np.uint32),
                    "luminosityBlock": np.asarray(ls, dtype=np.uint32),
                }
            )

    def close(self) -> None:
        self.file.close()
        self._atomic.__exit__(None, None, None)


def _counts(events: int, files_per_process: int, names: Sequence[str]) -> dict[str, int]:
    total_share = sum(PROCESSES[n].share for n in names)
    return {
        name: max(files_per_process, round(events * PROCESSES[name].share / total_share))
        for name in names
    }


def _resolve_processes(processes: Sequence[str] | None) -> tuple[str, ...]:
    """The datasets to write, in the order of :data:`PROCESSES` (None: all of them)."""
    if processes is None:
        return tuple(PROCESSES)
    unknown = [p for p in processes if p not in PROCESSES]
    if unknown or not processes:
        what = f"unknown dataset {unknown[0]!r}" if unknown else "no dataset given"
        raise ConfigError("processes", f"{what}; choose from {', '.join(PROCESSES)}")
    return tuple(n for n in PROCESSES if n in processes)


@dataclass(frozen=True)
class _Plan:
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
    prefix: tuple[int, ...] = ()  # spawn-key prefix of the event streams: () full, (_PARTIAL,)


def _coefficients(seed: int) -> dict[str, TheoryCoefficients]:
    return {
        name: TheoryCoefficients(np.random.SeedSequence(seed, spawn_key=(_COEFF, i)))
        for i, name in enumerate(PROCESSES)
    }


def _write_mc_file(plan: _Plan, name: str, k: int, progress: Any = None) -> dict[str, Any]:
    """MC file ``k`` of dataset ``name``; returns its path, sum of weights and events."""
    i = list(PROCESSES).index(name)
    spec = PROCESSES[name]
    coefficients = _coefficients(plan.seed)[name]
    rel = f"{name}/nano_{k}.root"
    writer = _Writer(plan.out / rel, plan.compression)
    first = sum(plan.n_mc[name][:k])  # event ids continue over the files of a dataset
    sumw, written = 0.0, 0
    for b, n in enumerate(_batches(plan.n_mc[name][k], plan.batch_size)):
        batch = generate_batch(
            spec, n, _stream(plan, plan.seed, _MC, i, k, b), plan.truth, coefficients, is_data=False
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


def _write_data_file(plan: _Plan, k: int, progress: Any = None) -> dict[str, Any]:
    """Data file ``k``: every process mixed in each batch, sorted by (run, lumisection);
    event numbers count the generated events (those lost to prefiring leave gaps). The events
    fall in the file's own lumisections (``plan.lumi_blocks[k]``), which its
    ``LuminosityBlocks`` tree lists, those without any event included."""
    block = plan.lumi_blocks[k]
    coefficients = _coefficients(plan.seed)
    total = sum(plan.n_data[name][k] for name in plan.n_data)
    n_rounds = max(1, math.ceil(total / plan.batch_size))
    shares = {name: _split(plan.n_data[name][k], n_rounds) for name in plan.n_data}
    first = sum(plan.n_data[name][j] for name in plan.n_data for j in range(k))
    rel = f"data/nano_{k}.root"
    writer = _Writer(plan.out / rel, plan.compression)
    written = 0
    for r in range(n_rounds):
        pieces = []
        for i, (name, spec) in enumerate(PROCESSES.items()):
            if name not in shares:  # a sample of some processes only (same seeds)
                continue
            n = shares[name][r]
            if n == 0:
                continue
            rng = _stream(plan, plan.seed, _DATA, i, k, r)
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
            run, ls = plan.lumi.assign(_stream(plan, plan.seed, _DATA_MIX, k, r), n, block)
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
        rng = _stream(plan, plan.seed, _DATA, 0, k, n_rounds)
        empty = generate_batch(spec, 1, rng, plan.truth, coefficients["wmunu"], is_data=True)
        empty = empty.select(np.zeros(len(empty), dtype=bool))
        empty.flat["run"] = np.zeros(0, np.uint32)
        empty.flat["luminosityBlock"] = np.zeros(0, np.uint32)
        empty.flat["event"] = np.zeros(0, np.uint64)
        writer.write(to_branches(empty))
    writer.write_lumi_blocks(plan.lumi.run[block], plan.lumi.ls[block])
    writer.close()
    return {"name": "data", "k": k, "file": rel, "nevents": written}


def _run_task(plan: _Plan, task: tuple[str, int]) -> dict[str, Any]:
    name, k = task
    return _write_data_file(plan, k) if name == "data" else _write_mc_file(plan, name, k)


def generate_samples(
    out_dir: str | os.PathLike,
    *,
    events: int = 200_000,
    seed: int = 1,
    mw: float = MW_REF,
    files_per_process: int = 1,
    lumi_pb: float | None = None,
    compression: str = DEFAULT_COMPRESSION,
    batch_size: int = BATCH_SIZE,
    jobs: int = 1,
    corrections: bool = True,
    progress: bool = False,
    command: str | None = None,
    processes: Sequence[str] | None = None,
) -> Path:
    """Write a full sample into ``out_dir`` and return the path of its ``datasets.yaml``.

    ``events`` MC events in total (shared among the processes, the signal most); ``mw`` the W
    mass of the data (GeV); ``lumi_pb`` the golden luminosity of the data (default: the signal
    MC has 4x the data's W events); ``compression`` one of :data:`COMPRESSIONS`; ``jobs``
    processes writing files in parallel (the arrays do not depend on it).

    ``processes``: write only these datasets (e.g. ``["zmumu"]``, the calibration sample of
    :data:`CALIBRATION_PROCESSES`), in MC and in data; ``events`` is then shared among them,
    and the default ``lumi_pb`` gives the data as many events of the first of them as its MC
    (when ``wmunu`` is not among them). Such a sample draws its events from streams of its
    own (independent of the full sample with the same seed) with the same detector truth
    (efficiencies, momentum-scale bias, pileup: functions of the seed alone), so that it can
    calibrate the full sample. ``None`` (default): all datasets, unchanged.
    """
    if files_per_process < 1:
        raise ConfigError("files_per_process", f"must be >= 1, got {files_per_process}")
    names = _resolve_processes(processes)
    if events < len(names) * files_per_process:
        raise ConfigError("events", f"{events} is fewer than one event per file")
    if compression not in COMPRESSIONS:
        raise ConfigError("compression", f"{compression!r} not in {sorted(COMPRESSIONS)}")
    if not 50.0 < mw < 200.0:
        raise ConfigError("mw", f"{mw} GeV is outside the Breit-Wigner window 50-200 GeV")
    if jobs < 1:
        raise ConfigError("jobs", f"must be >= 1, got {jobs}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    truth = DetectorTruth.from_seed(seed)
    n_mc = _counts(events, files_per_process, names)
    if lumi_pb is None and "wmunu" in n_mc:
        lumi_pb = n_mc["wmunu"] / (4.0 * PROCESSES["wmunu"].xsec_pb)
    elif lumi_pb is None:  # e.g. the calibration sample: as many data events as MC
        lumi_pb = n_mc[names[0]] / PROCESSES[names[0]].xsec_pb
    if not lumi_pb > 0:
        raise ConfigError("lumi_pb", f"must be > 0, got {lumi_pb}")
    prefix = () if processes is None else (_PARTIAL,)
    lumi = plan_lumisections(lumi_pb, _stream(prefix, seed, _LUMI))
    data_rng = _stream(prefix, seed, _DATA)
    n_data = {
        name: int(data_rng.poisson(s.xsec_pb * lumi.lumi_all_pb))
        for name, s in PROCESSES.items()
        if name in names
    }
    # each data file owns a block of lumisections and the events of its share of the luminosity
    blocks = lumi.split(files_per_process)
    fractions = [float(lumi.recorded[b].sum()) for b in blocks]
    plan = _Plan(
        out=out,
        seed=seed,
        mw=float(mw),
        truth=truth,
        lumi=lumi,
        compression=compression,
        batch_size=batch_size,
        n_mc={name: _split(n, files_per_process) for name, n in n_mc.items()},
        n_data={name: _split_by(n, fractions) for name, n in n_data.items()},
        lumi_blocks=tuple(blocks),
        prefix=prefix,
    )
    tasks = [(name, k) for name in [*names, "data"] for k in range(files_per_process)]
    bar = _progress(sum(n_mc.values()) + sum(n_data.values()), progress)
    results = _run(plan, tasks, jobs, bar)
    bar.close()

    datasets: dict[str, dict[str, Any]] = {}
    for name in names:
        spec = PROCESSES[name]
        mine = sorted((r for r in results if r["name"] == name), key=lambda r: r["k"])
        datasets[name] = {
            "process": spec.process,
            "is_data": False,
            "xsec_pb": float(spec.xsec_pb),
            "sumw": sum(r["sumw"] for r in mine),
            "nevents": sum(r["nevents"] for r in mine),
            "files": [r["file"] for r in mine],
        }
        if name in MASS_REFERENCE_GEV:
            datasets[name]["mass_reference_gev"] = float(MASS_REFERENCE_GEV[name])
    data = sorted((r for r in results if r["name"] == "data"), key=lambda r: r["k"])
    datasets["data"] = {
        "process": "Data",
        "is_data": True,
        "xsec_pb": None,
        "files": [r["file"] for r in data],
        "lumi_csv": "lumi.csv",
        "golden_json": "golden.json",
    }
    lumi.write_csv(out / "lumi.csv")
    lumi.write_golden(out / "golden.json")
    extra: dict[str, Any] = {} if processes is None else {"processes": list(names)}
    truth_json = truth.to_json(
        generator_version=GENERATOR_VERSION,
        mw_ref_gev=MW_REF,
        mw_data_gev=float(mw),
        gamma_w_gev=GAMMA_W,
        mz_ref_gev=MZ_REF,
        mass_weights_mev=MASS_SHIFTS_MEV.tolist(),
        mass_weights_processes={
            boson: [n for n, m in MASS_REFERENCE_GEV.items() if m == ref and n in names]
            for boson, ref in (("W", MW_REF), ("Z", MZ_REF))
        },
        lumi_pb=lumi.lumi_golden_pb,
        lumi_all_ls_pb=lumi.lumi_all_pb,
        events_mc=n_mc,
        events_data_generated=n_data,
        events_data_written=sum(r["nevents"] for r in data),
        xsec_pb={name: PROCESSES[name].xsec_pb for name in names},
        **extra,
    )
    atomic_write_text(out / "truth.json", json.dumps(truth_json, indent=1))
    if corrections:
        from corrections import build_corrections

        build_corrections(out / "truth.json", out / "corrections.json")
    spec_yaml = {"lumi_pb": lumi.lumi_golden_pb, "datasets": datasets}
    atomic_write_text(out / "datasets.yaml", yaml.safe_dump(spec_yaml, sort_keys=False))
    from fit.provenance import provenance

    args = {
        "out": str(out),
        "events": events,
        "seed": seed,
        "mw": mw,
        "files_per_process": files_per_process,
        "lumi_pb": lumi_pb,
        "compression": compression,
        "batch_size": batch_size,
        "generator_version": GENERATOR_VERSION,
        **extra,
    }
    atomic_write_text(
        out / "provenance.json", json.dumps(provenance(args, command=command), indent=1)
    )
    return out / "datasets.yaml"


def _run(plan: _Plan, tasks: list[tuple[str, int]], jobs: int, bar: Any) -> list[dict[str, Any]]:
    """Write the files of ``tasks``, in this process or in ``jobs`` forked workers."""
    if jobs == 1 or len(tasks) == 1:
        out = []
        for name, k in tasks:
            if name == "data":
                out.append(_write_data_file(plan, k, bar))
            else:
                out.append(_write_mc_file(plan, name, k, bar))
        return out
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


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="ev", unit_scale=True, file=sys.stderr, desc="generate")


# -- CLI --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``wmass generate``."""
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument(
        "--events", type=lambda s: int(float(s)), default=200_000, help="total MC events"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument("--mw", type=float, default=MW_REF, help="W mass of the data (GeV)")
    parser.add_argument("--files-per-process", type=int, default=1, help="files per dataset")
    parser.add_argument(
        "--lumi-pb",
        type=float,
        default=None,
        help="golden luminosity of the data (default: data W events = signal MC / 4)",
    )
    parser.add_argument(
        "--compression",
        choices=sorted(COMPRESSIONS),
        default=DEFAULT_COMPRESSION,
        help="ROOT basket compression (lz4: fast to read, as NanoAOD; zstd: smaller files)",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="processes writing files in parallel (same arrays)"
    )
    parser.add_argument(
        "--processes",
        nargs="+",
        default=None,
        metavar="DATASET",
        help="write only these datasets, in MC and in data (default: all); such a sample has "
        "the detector truth of the seed and events independent of the full sample's",
    )
    parser.add_argument(
        "--calibration-sample",
        action="store_true",
        help="Z -> mu mu only (= --processes zmumu), data and MC: --events Z MC events and, "
        "by default, as many Z events in data; input of `wmass calibrate`",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    """Run ``wmass generate``."""
    processes = getattr(args, "processes", None)
    if getattr(args, "calibration_sample", False):
        if processes is not None and tuple(processes) != CALIBRATION_PROCESSES:
            raise ConfigError("--calibration-sample", "is --processes zmumu; give one of them")
        processes = list(CALIBRATION_PROCESSES)
    yaml_path = generate_samples(
        args.out,
        events=args.events,
        seed=args.seed,
        mw=args.mw,
        files_per_process=args.files_per_process,
        lumi_pb=args.lumi_pb,
        compression=args.compression,
        jobs=args.jobs,
        progress=not args.no_progress and args.events >= 500_000,
        processes=processes,
    )
    spec = yaml.safe_load(yaml_path.read_text())
    n = sum(d.get("nevents") or 0 for d in spec["datasets"].values())
    print(
        f"wrote {n} MC events and {len(spec['datasets']['data']['files'])} data file(s) "
        f"({spec['lumi_pb']:.4g} /pb) to {yaml_path.parent}; fileset {yaml_path}"
    )
    return 0
