"""A Dask preload (``distributed.worker.preload``) for the spawned workers of a local cluster
that :func:`analysis.runner.cluster.dask_client` starts, and for batch workers (the job script
exports it: :func:`analysis.runner.cluster.batch_worker_prologue`): before the worker registers,
it reports the versions of packages it has not imported from their metadata
(:func:`analysis.warmstart.report_versions_from_metadata`) instead of importing pandas for its
version (0.4 s per worker). Warm workers get the same from their server
(:mod:`analysis._warm_server`)."""

from typing import Any

from analysis.warmstart import report_versions_from_metadata


def dask_setup(worker: Any) -> None:
    """Called by distributed in the worker process, before it registers with the scheduler."""
    report_versions_from_metadata()
