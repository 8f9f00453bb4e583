"""Running a processor over a fileset: chunks, executors, Dask clusters, failures, checkpoints.

:mod:`~analysis.runner.run` plans the chunks and runs them (:func:`run`);
:mod:`~analysis.runner.execute` processes them exactly once on Dask workers or in this process,
with the bookkeeping of :mod:`~analysis.runner.ledger`, the bad-file rules of
:mod:`~analysis.runner.badfiles` and the checkpoints of :mod:`~analysis.runner.checkpoint`;
:mod:`~analysis.runner.cluster` gives the Dask client; :mod:`~analysis.runner.chunks` is what
they share: a chunk's identity and its processing.
"""

from analysis.runner.badfiles import SKIPPABLE, ChunkFailed, chunk_label, is_skippable
from analysis.runner.checkpoint import (
    Checkpoint,
    CheckpointMismatch,
    checkpoint_path,
    code_version,
    fingerprint,
    read_checkpoint,
    run_config,
    write_checkpoint,
)
from analysis.runner.chunks import chunk_key, process_chunk
from analysis.runner.cluster import (
    JOBQUEUE_KINDS,
    ClusterSpec,
    PendingClient,
    dask_client,
    load_cluster_spec,
)
from analysis.runner.execute import Timeline, execute, harvest_local, held_chunks
from analysis.runner.ledger import ChunkLedger, LedgerStats
from analysis.runner.run import (
    DEFAULT_CHECKPOINT_INTERVAL,
    DEFAULT_CHUNKSIZE,
    EXECUTORS,
    RunResult,
    chunk_metadata,
    plan,
    run,
)

__all__ = [
    "Timeline",
    "DEFAULT_CHECKPOINT_INTERVAL",
    "DEFAULT_CHUNKSIZE",
    "EXECUTORS",
    "JOBQUEUE_KINDS",
    "SKIPPABLE",
    "Checkpoint",
    "CheckpointMismatch",
    "ChunkFailed",
    "ChunkLedger",
    "ClusterSpec",
    "LedgerStats",
    "PendingClient",
    "RunResult",
    "checkpoint_path",
    "chunk_key",
    "chunk_label",
    "chunk_metadata",
    "code_version",
    "dask_client",
    "execute",
    "fingerprint",
    "harvest_local",
    "held_chunks",
    "is_skippable",
    "load_cluster_spec",
    "plan",
    "process_chunk",
    "read_checkpoint",
    "run",
    "run_config",
    "write_checkpoint",
]
