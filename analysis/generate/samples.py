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

The files are written by :mod:`analysis.generate.files` (one task per file) from batches of
:mod:`analysis.generate.batch` into :mod:`analysis.generate.rootfile`; the physics lives in
:mod:`analysis.generate.physics` (kinematics), :mod:`analysis.generate.processes` (the
processes), :mod:`analysis.generate.detector`, :mod:`analysis.generate.weights` (theory
weights), :mod:`analysis.generate.truth` and :mod:`analysis.generate.lumisections`. Same seed,
same arrays.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from analysis.generate.batch import generate_batch, to_branches
from analysis.generate.files import (
    BATCH_SIZE,
    KEY_DATA,
    KEY_LUMI,
    KEY_PARTIAL,
    FilePlan,
    progress_bar,
    split_by,
    split_evenly,
    stream,
    write_files,
)
from analysis.generate.lumisections import plan_lumisections
from analysis.generate.processes import (
    GAMMA_W,
    MASS_SHIFTS_MEV,
    MW_REF,
    MZ_REF,
    PROCESSES,
)
from analysis.generate.rootfile import COMPRESSIONS, DEFAULT_COMPRESSION
from analysis.generate.truth import DetectorTruth
from fit.provenance import atomic_write_text, provenance
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
#: datasets with ``MEParamWeight`` mass variations -> the boson mass (GeV) the shifts are
#: relative to (written as ``mass_reference_gev`` in datasets.yaml, ``mass_weights_processes``
#: in truth.json); the other datasets' mass weights are all 1
MASS_REFERENCE_GEV: dict[str, float] = {
    "wmunu": MW_REF,
    "wtaunu": MW_REF,
    "zmumu": MZ_REF,
    "ztautau": MZ_REF,
}


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
    prefix = () if processes is None else (KEY_PARTIAL,)
    lumi = plan_lumisections(lumi_pb, stream(prefix, seed, KEY_LUMI))
    data_rng = stream(prefix, seed, KEY_DATA)
    n_data = {
        name: int(data_rng.poisson(s.xsec_pb * lumi.lumi_all_pb))
        for name, s in PROCESSES.items()
        if name in names
    }
    # each data file owns a block of lumisections and the events of its share of the luminosity
    blocks = lumi.split(files_per_process)
    fractions = [float(lumi.recorded[b].sum()) for b in blocks]
    plan = FilePlan(
        out=out,
        seed=seed,
        mw=float(mw),
        truth=truth,
        lumi=lumi,
        compression=compression,
        batch_size=batch_size,
        n_mc={name: split_evenly(n, files_per_process) for name, n in n_mc.items()},
        n_data={name: split_by(n, fractions) for name, n in n_data.items()},
        lumi_blocks=tuple(blocks),
        prefix=prefix,
    )
    tasks = [(name, k) for name in [*names, "data"] for k in range(files_per_process)]
    bar = progress_bar(sum(n_mc.values()) + sum(n_data.values()), progress)
    results = write_files(plan, tasks, jobs, bar)
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


#: the options of ``wmass generate`` passed to :func:`generate_samples` as they are
_OPTIONS = ("events", "seed", "mw", "files_per_process", "lumi_pb", "compression", "jobs")


def main(args: argparse.Namespace) -> int:
    """Run ``wmass generate``."""
    processes = getattr(args, "processes", None)
    if getattr(args, "calibration_sample", False):
        if processes is not None and tuple(processes) != CALIBRATION_PROCESSES:
            raise ConfigError("--calibration-sample", "is --processes zmumu; give one of them")
        processes = list(CALIBRATION_PROCESSES)
    yaml_path = generate_samples(
        args.out,
        **{name: getattr(args, name) for name in _OPTIONS},
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
