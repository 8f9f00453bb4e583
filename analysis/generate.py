"""Write synthetic NanoAOD samples with a known truth (``wmass generate``).

MC of W -> mu nu (signal), W -> tau nu, Z -> mu mu, Z -> tau tau, ttbar, dibosons and QCD
multijet at the reference W mass (80.379 GeV) with ``MEParamWeight`` mass variations, and a
``data`` sample: unweighted events of every process Poisson-drawn at the luminosity of the
sample, with the W at ``--mw``, the data detector (efficiencies, momentum-scale bias,
prefiring, pileup) and run/lumisection bookkeeping. Beside the ROOT files: ``datasets.yaml``,
``truth.json``, ``lumi.csv``, ``golden.json``, ``corrections.json`` (built from truth.json) and
``provenance.json``. The layout and branches are the contract of docs/samples.md.

>>> from analysis.generate import generate_samples
>>> yaml_path = generate_samples("samples", events=200_000, seed=1)  # doctest: +SKIP

The physics lives in :mod:`analysis.generate_physics` (kinematics),
:mod:`analysis.generate_processes` (the processes), :mod:`analysis.generate_detector`,
:mod:`analysis.generate_weights` (theory weights), :mod:`analysis.generate_truth` and
:mod:`analysis.generate_lumi`. Same seed, same arrays.
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

from analysis.generate_detector import Jagged, RecoEvents, simulate
from analysis.generate_lumi import LumiPlan, plan_lumisections
from analysis.generate_processes import (
    GAMMA_W,
    MASS_SHIFTS_MEV,
    MW_REF,
    MZ_REF,
    PROCESSES,
    ProcessSpec,
)
from analysis.generate_truth import DetectorTruth
from analysis.generate_weights import TheoryCoefficients, theory_weights
from processors.errors import ConfigError

__all__ = [
    "COMPRESSIONS",
    "GENERATOR_VERSION",
    "add_arguments",
    "generate_batch",
    "generate_samples",
    "main",
    "to_branches",
]

GENERATOR_VERSION = "1.0"
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

# spawn keys of the seed sequences (the first entry says what the stream is for)
_MC, _DATA, _DATA_MIX, _COEFF, _LUMI = 0, 1, 2, 3, 4


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


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


def _batches(total: int, size: int) -> list[int]:
    return _split(total, max(1, math.ceil(total / size))) if total > 0 else []


class _Writer:
    """A ROOT file with a TTree ``Events`` written batch by batch (one basket per batch)."""

    def __init__(self, path: Path, compression: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = path.with_name(path.name + ".tmp")
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

    def close(self) -> None:
        self.file.close()
        os.replace(self.tmp, self.path)


def _counts(events: int, files_per_process: int) -> dict[str, int]:
    total_share = sum(s.share for s in PROCESSES.values())
    return {
        name: max(files_per_process, round(events * s.share / total_share))
        for name, s in PROCESSES.items()
    }


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
    corrections: bool = True,
    progress: bool = False,
    command: str | None = None,
) -> Path:
    """Write a full sample into ``out_dir`` and return the path of its ``datasets.yaml``.

    ``events`` MC events in total (shared among the processes, the signal most); ``mw`` the W
    mass of the data (GeV); ``lumi_pb`` the golden luminosity of the data (default: the signal
    MC has 4x the data's W events); ``compression`` one of :data:`COMPRESSIONS`.
    """
    if events < len(PROCESSES) * files_per_process:
        raise ConfigError("events", f"{events} is fewer than one event per file")
    if files_per_process < 1:
        raise ConfigError("files_per_process", f"must be >= 1, got {files_per_process}")
    if compression not in COMPRESSIONS:
        raise ConfigError("compression", f"{compression!r} not in {sorted(COMPRESSIONS)}")
    if not 50.0 < mw < 200.0:
        raise ConfigError("mw", f"{mw} GeV is outside the Breit-Wigner window 50-200 GeV")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    truth = DetectorTruth.from_seed(seed)
    n_mc = _counts(events, files_per_process)
    if lumi_pb is None:
        lumi_pb = n_mc["wmunu"] / (4.0 * PROCESSES["wmunu"].xsec_pb)
    plan = plan_lumisections(lumi_pb, _rng(seed, _LUMI))
    coefficients = {
        name: TheoryCoefficients(np.random.SeedSequence(seed, spawn_key=(_COEFF, i)))
        for i, name in enumerate(PROCESSES)
    }
    data_rng = _rng(seed, _DATA)
    n_data = {
        name: int(data_rng.poisson(s.xsec_pb * plan.lumi_all_pb)) for name, s in PROCESSES.items()
    }
    bar = _progress(sum(n_mc.values()) + sum(n_data.values()), progress)
    datasets: dict[str, dict[str, Any]] = {}
    for i, (name, spec) in enumerate(PROCESSES.items()):
        files, sumw, written = [], 0.0, 0
        for k, n_file in enumerate(_split(n_mc[name], files_per_process)):
            rel = f"{name}/nano_{k}.root"
            writer = _Writer(out / rel, compression)
            for b, n in enumerate(_batches(n_file, batch_size)):
                batch = generate_batch(
                    spec, n, _rng(seed, _MC, i, k, b), truth, coefficients[name], is_data=False
                )
                ids = written + np.arange(n, dtype=np.uint64)
                batch.flat["run"] = np.ones(n, np.uint32)
                batch.flat["luminosityBlock"] = (1 + ids // 1000).astype(np.uint32)
                batch.flat["event"] = ids + np.uint64(1)
                sumw += float(batch.flat["genWeight"].astype(np.float64).sum())
                written += n
                writer.write(to_branches(batch))
                bar.update(n)
            writer.close()
            files.append(rel)
        datasets[name] = {
            "process": spec.process,
            "is_data": False,
            "xsec_pb": float(spec.xsec_pb),
            "sumw": sumw,
            "nevents": written,
            "files": files,
        }
    data_files, data_written = _write_data(
        out, seed, plan, truth, coefficients, n_data, mw, files_per_process, compression,
        batch_size, bar,
    )  # fmt: skip
    bar.close()
    datasets["data"] = {
        "process": "Data",
        "is_data": True,
        "xsec_pb": None,
        "files": data_files,
        "lumi_csv": "lumi.csv",
        "golden_json": "golden.json",
    }
    plan.write_csv(out / "lumi.csv")
    plan.write_golden(out / "golden.json")
    truth_json = truth.to_json(
        generator_version=GENERATOR_VERSION,
        mw_ref_gev=MW_REF,
        mw_data_gev=float(mw),
        gamma_w_gev=GAMMA_W,
        mz_ref_gev=MZ_REF,
        mass_weights_mev=MASS_SHIFTS_MEV.tolist(),
        mass_weights_processes={"W": ["wmunu", "wtaunu"], "Z": ["zmumu", "ztautau"]},
        lumi_pb=plan.lumi_golden_pb,
        lumi_all_ls_pb=plan.lumi_all_pb,
        events_mc=n_mc,
        events_data_generated=n_data,
        events_data_written=data_written,
        xsec_pb={name: s.xsec_pb for name, s in PROCESSES.items()},
    )
    _write_text(out / "truth.json", json.dumps(truth_json, indent=1))
    if corrections:
        from corrections import build_corrections

        build_corrections(out / "truth.json", out / "corrections.json")
    spec_yaml = {"lumi_pb": plan.lumi_golden_pb, "datasets": datasets}
    _write_text(out / "datasets.yaml", yaml.safe_dump(spec_yaml, sort_keys=False))
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
    }
    _write_text(out / "provenance.json", json.dumps(provenance(args, command=command), indent=1))
    return out / "datasets.yaml"


def _write_data(
    out: Path,
    seed: int,
    plan: LumiPlan,
    truth: DetectorTruth,
    coefficients: dict[str, TheoryCoefficients],
    n_data: dict[str, int],
    mw: float,
    files_per_process: int,
    compression: str,
    batch_size: int,
    bar: Any,
) -> tuple[list[str], int]:
    """The data files: every process mixed in each batch, sorted by (run, lumisection)."""
    per_file = {name: _split(n, files_per_process) for name, n in n_data.items()}
    files, written = [], 0
    for k in range(files_per_process):
        total = sum(per_file[name][k] for name in PROCESSES)
        n_rounds = max(1, math.ceil(total / batch_size))
        shares = {name: _split(per_file[name][k], n_rounds) for name in PROCESSES}
        rel = f"data/nano_{k}.root"
        writer = _Writer(out / rel, compression)
        for r in range(n_rounds):
            pieces = []
            for i, (name, spec) in enumerate(PROCESSES.items()):
                n = shares[name][r]
                if n == 0:
                    continue
                pieces.append(
                    generate_batch(
                        spec,
                        n,
                        _rng(seed, _DATA, i, k, r),
                        truth,
                        coefficients[name],
                        is_data=True,
                        mw=mw if spec.w_mass else MW_REF,
                    )
                )
                bar.update(n)
            if not pieces:
                continue
            batch = Batch.concatenate(pieces)
            n = len(batch)
            run, ls = plan.assign(_rng(seed, _DATA_MIX, k, r), n)
            order = np.lexsort((ls, run))
            batch = batch.reorder(order)
            batch.flat["run"] = run[order]
            batch.flat["luminosityBlock"] = ls[order]
            batch.flat["event"] = written + np.arange(1, n + 1, dtype=np.uint64)
            written += n
            writer.write(to_branches(batch))
        writer.close()
        files.append(rel)
    return files, written


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


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
    parser.add_argument("--compression", choices=sorted(COMPRESSIONS), default=DEFAULT_COMPRESSION)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    """Run ``wmass generate``."""
    yaml_path = generate_samples(
        args.out,
        events=args.events,
        seed=args.seed,
        mw=args.mw,
        files_per_process=args.files_per_process,
        lumi_pb=args.lumi_pb,
        compression=args.compression,
        progress=not args.no_progress and args.events >= 500_000,
    )
    spec = yaml.safe_load(yaml_path.read_text())
    n = sum(d.get("nevents") or 0 for d in spec["datasets"].values())
    print(
        f"wrote {n} MC events and {len(spec['datasets']['data']['files'])} data file(s) "
        f"({spec['lumi_pb']:.4g} /pb) to {yaml_path.parent}; fileset {yaml_path}"
    )
    return 0
