"""Fill the analysis histograms, with all their variations, from NanoAOD (``wmass histmaker``).

Runs one of the processors (``--analysis wmass|zdilepton|wlike``) over the files of a
``datasets.yaml`` on Dask (an embedded local cluster by default, ``--scheduler ADDR`` for an
existing one, ``--cluster deploy/X.yaml`` for SLURM/HTCondor) or in this process
(``--executor iterative``), and writes ``hists.h5`` (layout: :mod:`analysis.io`): per dataset
the histograms, the sum of weights (and of w^2) of the files processed, events read and
selected, cross section, the integrated luminosity of the data lumisections processed (golden
JSON + lumi CSV), processed and failed files, every chunk, and the provenance.

The sum of weights of an MC dataset is that of every event generated for its files: the
``genEventSumw`` (``genEventSumw2``) of their ``Runs`` trees (read here, once per file, however
many chunks the file was split into), when every file processed was processed completely and
has the tree (a file with no events may lack it). Otherwise it is the sum of ``genWeight`` over
the events read (the only choice for files without the tree, e.g. generated samples, and right
for files not skimmed). ``meta["sumw_source"]`` of ``hists.h5`` says, per MC dataset, which one
was used (:data:`SUMW_RUNS` or :data:`SUMW_GENWEIGHT`), and a log message says why.

The lumisections of a data dataset are those listed in the ``LuminosityBlocks`` trees of the
files fully processed (read here, once per file: a lumisection without any event counts too);
files without that tree fall back to the lumisections of their events (a log message says which
was used). A file given up (``--skip-bad-files``) or left out (``--max-files``) adds none.

Corrections default to ``corrections.json`` beside the datasets.yaml when it exists.
``--max-files N`` keeps the first N files of each dataset; normalisation and luminosity then
follow the subset (they are always computed from what was processed).

>>> from analysis.histmaker import histmaker
>>> histmaker("wmass", "samples/datasets.yaml", "hists.h5", executor="iterative")  # doctest: +SKIP

Why one module of ~530 lines: it is one command, from datasets.yaml to hists.h5 (the
processor, the run, the normalisation of each dataset, the file and the command line); the
running itself lives in :mod:`analysis.runner`, the file format in :mod:`analysis.io`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from analysis.datasets import Dataset, load_datasets, read_gen_event_sumw
from analysis.io import DatasetHistograms, provenance, write_histograms
from analysis.lumi import integrated_lumi, processed_lumisections
from analysis.runner.checkpoint import checkpoint_path
from analysis.runner.cluster import PendingClient, dask_client
from analysis.runner.run import (
    DEFAULT_CHECKPOINT_INTERVAL,
    DEFAULT_CHUNKSIZE,
    EXECUTORS,
    RunResult,
    choose_executor,
    run,
)
from analysis.warmstart import warm_kernels_in_background, young_heap
from processors.errors import BadInputFile, ConfigError, CorrectionsWarning
from processors.fill import LazyHistograms

__all__ = [
    "ANALYSES",
    "SUMW_GENWEIGHT",
    "SUMW_RUNS",
    "add_arguments",
    "histmaker",
    "main",
    "make_processor",
    "mc_sum_of_weights",
    "summary_table",
    "to_histograms",
]

log = logging.getLogger(__name__)

#: ``meta["sumw_source"]`` values: the MC sum of weights from the files' ``Runs`` trees, or from
#: the ``genWeight`` of the events read
SUMW_RUNS = "Runs/genEventSumw"
SUMW_GENWEIGHT = "genWeight"

#: --analysis name -> processor class name in ``processors``
ANALYSES = {
    "wmass": "WMassProcessor",
    "zdilepton": "ZDileptonProcessor",
    "wlike": "WLikeProcessor",
}


def make_processor(
    analysis: str,
    datasets: Mapping[str, Dataset] | None = None,
    *,
    corrections: str | os.PathLike | None = None,
    variations: bool | Iterable[str] = True,
) -> Any:
    """The processor of ``analysis`` (a key of :data:`ANALYSES`)."""
    import processors

    if analysis not in ANALYSES:
        raise ConfigError("analysis", f"{analysis!r} is not one of {sorted(ANALYSES)}")
    cls = getattr(processors, ANALYSES[analysis])
    return cls(
        datasets=datasets,
        corrections=None if corrections is None else str(corrections),
        variations=variations,
        hist_output=False,  # raw accumulators per chunk, hist.Hist once at the end
    )


def default_corrections(datasets_yaml: str | os.PathLike) -> Path | None:
    """``corrections.json`` beside the datasets.yaml, when there is one."""
    path = Path(datasets_yaml).resolve().parent / "corrections.json"
    return path if path.is_file() else None


def mc_sum_of_weights(
    files: Iterable[str],
    planned: Mapping[str, set[tuple[str, int, int]]],
    done: set[tuple[str, int, int]],
    from_events: tuple[float, float],
    *,
    dataset: str = "mc",
) -> tuple[float, float, str]:
    """``(sumw, sumw2, source)`` of an MC dataset whose processed ``files`` had the chunks
    ``planned[file]``, of which ``done`` were processed; ``from_events`` is the processors'
    ``(sum genWeight, sum genWeight^2)`` of the events read.

    The ``Runs`` trees' sums (:func:`~analysis.datasets.read_gen_event_sumw`, each file read
    once) when every file is complete and has them, a file without events excepted; otherwise
    ``from_events``. ``source`` is :data:`SUMW_RUNS` or :data:`SUMW_GENWEIGHT`."""
    files = list(files)
    fallback = (float(from_events[0]), float(from_events[1]), SUMW_GENWEIGHT)
    if not files:
        return fallback
    partial = [f for f in files if not planned.get(f, set()) <= done]
    if partial:
        log.info(
            "%s: sum of genWeight of the events read (%d of %d files partly processed, e.g. %s)",
            dataset,
            len(partial),
            len(files),
            partial[0],
        )
        return fallback
    sumw = sumw2 = 0.0
    for path in files:
        try:
            sums = read_gen_event_sumw(path)
        except BadInputFile as err:
            log.warning("%s: sum of genWeight of the events read (%s)", dataset, err)
            return fallback
        if sums is None:
            if sum(stop - start for _, start, stop in planned.get(path, ())) == 0:
                continue  # no events: adds nothing either way
            log.info(
                "%s: sum of genWeight of the events read (%s has no Runs/genEventSumw)",
                dataset,
                path,
            )
            return fallback
        sumw += sums[0]
        sumw2 += sums[1]
    log.info("%s: sum of weights from the Runs trees of %d files", dataset, len(files))
    return sumw, sumw2, SUMW_RUNS


def to_histograms(
    result: RunResult,
    datasets: Mapping[str, Dataset],
    sumw_sources: dict[str, str] | None = None,
) -> tuple[dict[str, DatasetHistograms], float | None]:
    """The per-dataset content of ``hists.h5`` from a run, and the data luminosity in pb^-1
    (sum over the data datasets with a lumi CSV; ``None`` when there is none).

    The lumisections of a data dataset are read from the ``LuminosityBlocks`` trees of its
    files fully processed (:func:`analysis.lumi.processed_lumisections`), with the processor's
    event-derived ones as the fallback for files without the tree. The sum of weights of an MC
    dataset is :func:`mc_sum_of_weights`; ``sumw_sources``, when given, receives its source per
    MC dataset."""
    out: dict[str, DatasetHistograms] = {}
    data_lumi: float | None = None
    planned: dict[tuple[str, str], set[tuple[str, int, int]]] = {}
    for item in result.chunks:
        key = (item.dataset, item.filename)
        planned.setdefault(key, set()).add((item.filename, item.entrystart, item.entrystop))
    for name, ds in datasets.items():
        res = result.output.get(name, {})
        chunks = sorted(res.get("chunks", set()))
        failed = result.files_failed.get(name, [])
        failed_files = {f["file"] for f in failed}
        processed = sorted({c[0] for c in chunks} - failed_files)
        lumisections = sorted(res.get("lumisections", set()))
        lumi = None
        done = set(chunks)
        sumw, sumw2 = float(res.get("sumw", 0.0)), float(res.get("sumw2", 0.0))
        if not ds.is_data:
            sumw, sumw2, source = mc_sum_of_weights(
                processed,
                {f: planned.get((name, f), set()) for f in processed},
                done,
                (sumw, sumw2),
                dataset=name,
            )
            if sumw_sources is not None:
                sumw_sources[name] = source
        if ds.is_data:
            complete = [f for f in processed if planned.get((name, f), set()) <= done]
            found, _ = processed_lumisections(complete, lumisections, dataset=name)
            lumisections = sorted(found)
        if ds.is_data and ds.lumi_csv:
            lumi = integrated_lumi(lumisections, ds.lumi_csv, ds.golden_json)
            data_lumi = (data_lumi or 0.0) + lumi
        out[name] = DatasetHistograms(
            name=name,
            process=ds.process,
            is_data=ds.is_data,
            xsec_pb=ds.xsec_pb,
            sumw=sumw,
            sumw2=sumw2,
            events_read=int(res.get("events_read", 0)),
            events_selected=int(res.get("events_selected", 0)),
            lumi_pb=lumi,
            files_processed=processed,
            files_failed=list(failed),
            chunks=chunks,
            lumisections=lumisections,
            histograms=_histograms(res.get("histograms", {})),
            sumw_yaml=ds.sumw,
            nevents_yaml=ds.nevents,
            mass_reference_gev=ds.mass_reference_gev,
        )
    return out, data_lumi


def _histograms(hists: Mapping[str, Any]) -> MutableMapping[str, Any]:
    """A mapping of its own over a run's histograms; those not yet made ``hist.Hist`` stay
    accumulators (:class:`processors.fill.LazyHistograms`: the file is written from them)."""
    return hists.copy() if isinstance(hists, LazyHistograms) else dict(hists)


@young_heap()
def histmaker(
    analysis: str,
    datasets_yaml: str | os.PathLike,
    out: str | os.PathLike,
    *,
    executor: str = "auto",
    chunksize: int = DEFAULT_CHUNKSIZE,
    workers: int | None = None,
    scheduler: str | None = None,
    cluster: str | os.PathLike | None = None,
    tls: bool = False,
    scheduler_host: str | None = None,
    client: Any = None,
    max_files: int | None = None,
    corrections: str | os.PathLike | None = None,
    variations: bool | Iterable[str] = True,
    skip_bad_files: bool = False,
    progress: bool = True,
    meta: Mapping[str, Any] | None = None,
    resume: bool = False,
    checkpoint_interval: float = DEFAULT_CHECKPOINT_INTERVAL,
    retries: int = 2,
) -> tuple[Path, dict[str, DatasetHistograms], RunResult]:
    """Fill and write ``out``; returns (path, per-dataset content, the run's result).

    ``executor``: ``"dask"``, ``"iterative"`` or ``"auto"``: Dask when a client, scheduler,
    cluster or number of workers is given, else what
    :func:`~analysis.runner.run.choose_executor` picks for the input's size (printed).

    A checkpoint ``out.checkpoint`` is written every ``checkpoint_interval`` seconds and removed
    once ``out`` is written; ``resume=True`` continues an interrupted run from it.
    """
    datasets = load_datasets(datasets_yaml, max_files=max_files)
    if executor == "auto":
        if any(x is not None for x in (client, scheduler, cluster, workers)):
            executor = "dask"
        else:
            executor, why = choose_executor(datasets)
            if progress:
                print(f"[auto] {executor}: {why}", file=sys.stderr)
    elif executor not in EXECUTORS:
        raise ConfigError("executor", f"one of auto, {', '.join(EXECUTORS)}; got {executor!r}")
    if corrections is None:
        corrections = default_corrections(datasets_yaml)
    elif not Path(corrections).is_file():
        raise ConfigError("corrections", f"no such file {corrections}")
    with contextlib.ExitStack() as stack:
        if executor == "iterative":
            # numba's code generator starts (~1 s) while the processor is made, the provenance
            # taken and the files planned, instead of in the first chunk (analysis.warmstart)
            stack.callback(warm_kernels_in_background().join)
        if executor == "dask" and client is None and scheduler is None and cluster is None:
            # the embedded local cluster starts on a thread while the processor is made and
            # the chunks are planned here (analysis.runner.cluster.PendingClient)
            client = stack.enter_context(
                PendingClient(workers=workers, tls=tls, quiet=not progress)
            )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CorrectionsWarning)
            processor = make_processor(
                analysis, datasets, corrections=corrections, variations=variations
            )
        for w in caught:  # said where a person reads it, whatever the warning filters are
            if issubclass(w.category, CorrectionsWarning):
                print(f"wmass histmaker: warning: {w.message}", file=sys.stderr)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        inputs = [str(Path(datasets_yaml).resolve())]
        inputs += [f for ds in datasets.values() for f in ds.files]
        if corrections is not None:
            inputs.append(str(Path(corrections).resolve()))
        if meta is None:
            meta = provenance(
                args={
                    "analysis": analysis,
                    "datasets": str(datasets_yaml),
                    "executor": executor,
                    "chunksize": chunksize,
                    "workers": workers,
                    "max_files": max_files,
                    "corrections": None if corrections is None else str(corrections),
                    "variations": variations if isinstance(variations, bool) else list(variations),
                    "skip_bad_files": skip_bad_files,
                    "resume": resume,
                },
                inputs=inputs,
            )
        checkpoint = checkpoint_path(out)
        options = dict(
            chunksize=chunksize,
            progress=progress,
            skip_bad_files=skip_bad_files,
            retries=retries,
            checkpoint=checkpoint,
            checkpoint_interval=checkpoint_interval,
            resume=resume,
            config={
                "analysis": analysis,
                "variations": variations if isinstance(variations, bool) else sorted(variations),
                "corrections": _file_digest(corrections),
            },
        )
        if executor == "dask" and client is None:
            with dask_client(
                scheduler=scheduler,
                cluster=cluster,
                workers=workers,
                tls=tls,
                quiet=not progress,
                scheduler_host=scheduler_host,
            ) as c:
                result = run(processor, datasets, executor="dask", client=c, meta=meta, **options)
        else:
            result = run(
                processor, datasets, executor=executor, client=client, meta=meta, **options
            )
    sources: dict[str, str] = {}
    content, data_lumi = to_histograms(result, datasets, sources)
    meta = {**meta, "sumw_source": sources}
    lumi = data_lumi if data_lumi is not None else datasets.lumi_pb
    if result.timeline is not None:
        result.timeline.converted = time.time()
    path = write_histograms(out, content, meta, analysis=analysis, lumi_pb=lumi)
    if result.timeline is not None:
        result.timeline.written = time.time()
    checkpoint.unlink(missing_ok=True)  # the output is safely in place
    return path, content, result


def _file_digest(path: str | os.PathLike | None) -> str | None:
    import hashlib

    if path is None:
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def summary_table(content: Mapping[str, DatasetHistograms], result: RunResult) -> Any:
    """A rich table: per dataset files, events read/selected, sum of weights, lumi, failures."""
    from rich.table import Table

    table = Table(
        title=f"histmaker: {result.events:,} events in {result.seconds:.1f} s "
        f"({result.events_per_second:,.0f} ev/s, {result.executor}, "
        f"{result.workers} worker{'s' if result.workers != 1 else ''})"
    )
    for col in ("dataset", "files", "events read", "selected", "sumw", "lumi [pb-1]", "failed"):
        table.add_column(col, justify="left" if col == "dataset" else "right")
    for name, ds in content.items():
        table.add_row(
            name,
            str(len(ds.files_processed)),
            f"{ds.events_read:,}",
            f"{ds.events_selected:,}",
            f"{ds.sumw:,.6g}",
            "-" if ds.lumi_pb is None else f"{ds.lumi_pb:.6g}",
            str(len(ds.files_failed)),
        )
    return table


# -- command line ------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--analysis", choices=sorted(ANALYSES), default="wmass", help="which processor fills"
    )
    parser.add_argument("--datasets", required=True, help="datasets.yaml (docs/samples.md)")
    parser.add_argument("--out", default="hists.h5", help="output HDF5 file")
    parser.add_argument(
        "--executor",
        choices=("auto", *EXECUTORS),
        default="auto",
        help="dask: chunks on Dask workers; iterative: one after another in this process; "
        "auto (default): dask with --workers/--scheduler/--cluster, else a local cluster when the "
        "input is large enough to repay its start (~6M events on 2 cores), else this process",
    )
    parser.add_argument(
        "--chunksize",
        type=int,
        default=DEFAULT_CHUNKSIZE,
        help="target entries per chunk; chunks start at the files' cluster starts when the "
        "clusters are at most twice this (each basket decompressed once)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local cluster worker processes, forked from one process that imported the stack "
        "and loaded the fill kernels once (analysis.warmstart) (default: cores)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--scheduler", default=None, help="address of an existing scheduler")
    where.add_argument(
        "--cluster", default=None, help="deploy/*.yaml: a dask-jobqueue (SLURM/HTCondor) cluster"
    )
    parser.add_argument("--tls", action="store_true", help="secure the cluster with TLS")
    parser.add_argument(
        "--scheduler-host",
        default=None,
        metavar="ADDR",
        help="with --cluster: the address the scheduler listens on, reachable by the workers "
        "on other nodes (default: the YAML's scheduler_host, else this machine's routable "
        "address)",
    )
    parser.add_argument(
        "--max-files",
        type=int,
        default=None,
        help="first N files per dataset; sumw and lumi follow the subset",
    )
    parser.add_argument(
        "--corrections",
        default=None,
        help="correctionlib JSON (default: corrections.json beside the datasets.yaml)",
    )
    parser.add_argument(
        "--variations",
        nargs="*",
        default=None,
        metavar="NAME",
        help="variations to fill (default: all; none given: nominal only); names: "
        "pdf qcdScale massWeight pileup effStat prefiringStat muonScale",
    )
    parser.add_argument(
        "--skip-bad-files",
        action="store_true",
        help="give up files that cannot be read or lack a branch (listed in files_failed with "
        "the reason; sumw and lumi count only the files processed) instead of stopping",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from OUT.checkpoint (same datasets, analysis, "
        "chunksize and code, else refused)",
    )
    parser.add_argument(
        "--checkpoint-interval",
        type=float,
        default=DEFAULT_CHECKPOINT_INTERVAL,
        metavar="SECONDS",
        help="how often the merged histograms and the chunks done are checkpointed",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="Dask retries of a chunk that fails for a reason other than its file",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


#: the options of ``wmass histmaker`` passed to :func:`histmaker` as they are
_OPTIONS = (
    "executor",
    "chunksize",
    "workers",
    "scheduler",
    "cluster",
    "tls",
    "scheduler_host",
    "max_files",
    "corrections",
    "skip_bad_files",
    "resume",
    "checkpoint_interval",
    "retries",
)


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    variations: bool | list[str] = True if args.variations is None else list(args.variations)
    if variations == []:
        variations = False
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="coffea")
            path, content, result = histmaker(
                args.analysis,
                args.datasets,
                args.out,
                **{name: getattr(args, name) for name in _OPTIONS},
                variations=variations,
                progress=not args.quiet,
            )
    except KeyboardInterrupt:
        ck = checkpoint_path(args.out)
        if ck.exists():
            print(f"interrupted: the work done so far is in {ck}; rerun with --resume to continue")
        raise
    console = Console()
    console.print(summary_table(content, result))
    for name, ds in content.items():
        for failed in ds.files_failed:
            console.print(f"[red]failed[/red] {name}: {failed['file']}: {failed['error']}")
    stats = result.stats
    if stats is not None and (stats.redone or stats.workers_lost or result.resumed_chunks):
        console.print(
            f"recovery: {result.resumed_chunks} chunks from the checkpoint, {stats.redone} "
            f"redone, {len(stats.workers_lost)} workers lost, {stats.dropped_entries} partial "
            "results dropped; every chunk counted once"
        )
    console.print(f"wrote {path}")
    return 0
