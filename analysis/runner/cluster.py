"""Where the chunks run: an embedded local cluster, an existing scheduler, or a batch system.

:func:`dask_client` is the one way the chain gets a ``distributed.Client``:

- ``None``: an embedded ``LocalCluster``, one single-threaded worker process per core,
  scheduler and dashboard on 127.0.0.1 (nothing listens on other interfaces);
- ``"tcp://HOST:PORT"`` (or ``tls://``): an existing scheduler;
- a ``deploy/*.yaml`` path: a dask-jobqueue cluster (SLURM, HTCondor) described by that file.

``tls=True`` secures the embedded or batch cluster with distributed's temporary TLS
credentials (an existing scheduler brings its own ``Security`` through dask's config).

>>> with dask_client(workers=1) as client:  # doctest: +SKIP
...     client.submit(sum, [1, 2]).result()
3
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from processors.errors import ConfigError

__all__ = ["JOBQUEUE_KINDS", "ClusterSpec", "dask_client", "load_cluster_spec"]

#: ``kind:`` of a deploy YAML -> the dask-jobqueue class that runs it.
JOBQUEUE_KINDS = {"slurm": "SLURMCluster", "htcondor": "HTCondorCluster", "pbs": "PBSCluster"}

_SPEC_KEYS = {"kind", "jobs", "wait_timeout", "cluster"}


class ClusterSpec(dict):
    """A deploy YAML: ``kind``, ``jobs`` (how many to start), ``cluster`` (class keywords)."""


def load_cluster_spec(path: str | os.PathLike) -> ClusterSpec:
    """Read and check a deploy YAML (see ``deploy/slurm.yaml``).

    Unknown keys and kinds raise :class:`ConfigError` naming the key and the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("cluster", f"no such file {path}", source=str(path))
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError("cluster", f"not valid YAML: {err}", source=str(path)) from err
    if not isinstance(spec, Mapping):
        raise ConfigError("cluster", "top level must be a mapping", source=str(path))
    unknown = set(spec) - _SPEC_KEYS
    if unknown:
        raise ConfigError(
            sorted(unknown)[0], f"unknown key; allowed: {sorted(_SPEC_KEYS)}", source=str(path)
        )
    kind = spec.get("kind")
    if kind not in JOBQUEUE_KINDS:
        raise ConfigError("kind", f"{kind!r} is not one of {sorted(JOBQUEUE_KINDS)}", str(path))
    jobs = spec.get("jobs", 1)
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError("jobs", f"must be a positive integer, got {jobs!r}", str(path))
    cluster = spec.get("cluster", {}) or {}
    if not isinstance(cluster, Mapping):
        raise ConfigError("cluster", "must be a mapping of cluster keywords", str(path))
    return ClusterSpec(
        kind=kind, jobs=jobs, wait_timeout=spec.get("wait_timeout", 120), cluster=dict(cluster)
    )


def _security(tls: bool) -> tuple[Any, str | None]:
    if not tls:
        return None, None
    from distributed.security import Security

    return Security.temporary(), "tls://"


@contextlib.contextmanager
def dask_client(
    where: str | os.PathLike | None = None,
    *,
    workers: int | None = None,
    tls: bool = False,
    memory_limit: str | None = "auto",
    quiet: bool = False,
) -> Iterator[Any]:
    """Yield a connected ``distributed.Client`` for ``where`` (see the module docstring).

    Clusters started here are closed on exit; an existing scheduler is left running.
    """
    from distributed import Client, LocalCluster

    security, protocol = _security(tls)
    say = (lambda *_: None) if quiet else print
    if where is None:
        n = workers or os.cpu_count() or 1
        with (
            LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                memory_limit=memory_limit,
                security=security,
                protocol=protocol,
            ) as cluster,
            Client(cluster, security=security) as client,
        ):
            say(f"[dask] local cluster: {n} workers, dashboard {client.dashboard_link}")
            yield client
        return
    text = os.fspath(where)
    if "://" in text:
        with Client(text, timeout="30s") as client:
            n = len(client.scheduler_info().get("workers", {}))
            say(f"[dask] scheduler {text}: {n} workers, dashboard {client.dashboard_link}")
            yield client
        return
    spec = load_cluster_spec(text)
    import dask_jobqueue

    cls = getattr(dask_jobqueue, JOBQUEUE_KINDS[spec["kind"]])
    options = {"scheduler_options": {"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}}
    options.update(spec["cluster"])
    if security is not None:
        options.update(security=security, protocol=protocol)
    try:
        cluster = cls(**options)
    except TypeError as err:
        raise ConfigError("cluster", str(err), source=text) from err
    with cluster, Client(cluster, security=security) as client:
        cluster.scale(jobs=spec["jobs"])
        say(
            f"[dask] {spec['kind']} cluster: {spec['jobs']} jobs, dashboard {client.dashboard_link}"
        )
        client.wait_for_workers(1, timeout=spec["wait_timeout"])
        yield client
