"""Where the chunks run: an embedded local cluster, an existing scheduler, or a batch system.

:func:`dask_client` is the one way the chain gets a ``distributed.Client``:

- ``None``: an embedded ``LocalCluster``, one single-threaded worker process per core,
  scheduler and dashboard on 127.0.0.1 (nothing listens on other interfaces);
- ``"tcp://HOST:PORT"`` (or ``tls://``): an existing scheduler;
- a ``deploy/*.yaml`` path: a dask-jobqueue cluster (SLURM, HTCondor) described by that file.

Transport (see ``docs/security.md``): chunk tasks are pickled calls, so whoever can talk to the
scheduler can run code on the workers. Therefore:

- a local cluster listens on 127.0.0.1 only (scheduler, workers, dashboard); a batch
  cluster's scheduler listens where its workers on other nodes reach it (``scheduler_host``
  of the YAML or ``--scheduler-host``; default: this machine's routable address) and its
  dashboard on 127.0.0.1: use ``--tls`` there; ``tls=True``
  also secures them with distributed's temporary TLS credentials (a fresh CA per run);
- a ``tls://`` scheduler is always reached with a ``Security`` object: the one passed in, or
  the client credentials of dask's config (``distributed.comm.tls.ca-file``,
  ``...client.cert``, ``...client.key``) or its ``distributed.client.security-loader``;
  without any, :class:`ConfigError` says what is missing instead of a handshake failure;
- ``tls=True`` with a plaintext address (``tcp://``) stops with :class:`ConfigError`: TLS is
  never dropped silently; a plaintext address without ``tls`` prints a warning;
- ``scheduler`` and ``cluster`` together are refused (:class:`ConfigError`).

>>> with dask_client(workers=1) as client:  # doctest: +SKIP
...     client.submit(sum, [1, 2]).result()
3

:class:`PendingClient` starts the same cluster on a thread, so that the command goes on
(imports, reading the datasets, planning the chunks) while the worker processes start.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shlex
import socket
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from analysis import warmstart
from analysis.heap import WORKER_ENVIRONMENT
from processors.errors import ConfigError

__all__ = [
    "JOBQUEUE_KINDS",
    "ClusterSpec",
    "PendingClient",
    "SPAWNED_WORKER_PRELOAD",
    "WORKER_CONFIG",
    "WORKER_MALLOC_PROLOGUE",
    "batch_worker_prologue",
    "config_variable",
    "dask_client",
    "load_cluster_spec",
    "resolve_where",
    "scheduler_security",
    "threads_per_batch_worker",
    "worker_environment",
    "worker_heap_plugin",
    "worker_malloc_prologue",
]

#: ``kind:`` of a deploy YAML -> the dask-jobqueue class that runs it.
JOBQUEUE_KINDS = {"slurm": "SLURMCluster", "htcondor": "HTCondorCluster", "pbs": "PBSCluster"}

_SPEC_KEYS = {"kind", "jobs", "wait_timeout", "cluster", "scheduler_host"}

#: address schemes whose connection is encrypted (``gateway://``: Dask Gateway's TLS proxy)
ENCRYPTED_SCHEMES = {"tls", "wss", "gateway"}


class ClusterSpec(dict):
    """A deploy YAML: ``kind``, ``jobs`` (how many to start), ``cluster`` (class keywords),
    ``scheduler_host`` (where the scheduler listens: ``auto`` or an address)."""


def routable_address() -> str:
    """This machine's address on its default route (no packet is sent), for a scheduler that
    workers on other nodes must reach; the host name's address when there is no route.

    >>> import ipaddress
    >>> ipaddress.ip_address(routable_address()).version
    4
    """
    # connect() on UDP sends nothing: it only asks the kernel which source address the route
    # to a (public, then private) address would use
    for target in ("8.8.8.8", "10.255.255.255"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.connect((target, 9))
            except OSError:  # no route there: try the next
                continue
            return str(s.getsockname()[0])
    return socket.gethostbyname(socket.gethostname())


def resolve_scheduler_host(spec_host: str | None, cli_host: str | None) -> str:
    """The address a batch cluster's scheduler listens on: the command line's
    ``--scheduler-host``, else the YAML's ``scheduler_host``, else ``auto`` (the machine's
    routable address: workers run on other nodes, loopback would not reach them)."""
    host = cli_host or spec_host or "auto"
    return routable_address() if host == "auto" else host


def load_cluster_spec(path: str | os.PathLike) -> ClusterSpec:
    """Read and check a deploy YAML (see ``deploy/slurm.yaml``).

    Unknown keys and kinds raise :class:`ConfigError` naming the key and the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError("cluster", f"no such file {path}", source=str(path))
    try:
        spec = yaml.safe_load(path.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError as err:
        reason = f"not UTF-8 text ({err.reason} at byte {err.start})"
        raise ConfigError("cluster", reason, source=str(path)) from None
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
    host = spec.get("scheduler_host")
    if host is not None and (not isinstance(host, str) or not host.strip()):
        raise ConfigError(
            "scheduler_host", f"must be 'auto' or an address, got {host!r}", str(path)
        )
    return ClusterSpec(
        kind=kind,
        jobs=jobs,
        wait_timeout=spec.get("wait_timeout", 120),
        cluster=dict(cluster),
        scheduler_host=host,
    )


def _security(tls: bool) -> tuple[Any, str | None]:
    if not tls:
        return None, None
    from distributed.security import Security

    return Security.temporary(), "tls://"


def resolve_where(
    where: str | os.PathLike | None = None,
    *,
    scheduler: str | None = None,
    cluster: str | os.PathLike | None = None,
) -> str | None:
    """The one place to run: ``where``, or ``scheduler`` (an address), or ``cluster`` (a deploy
    YAML). More than one of them is a :class:`ConfigError` (never silently drop one)."""
    given = {
        name: value
        for name, value in (("where", where), ("scheduler", scheduler), ("cluster", cluster))
        if value is not None
    }
    if len(given) > 1:
        names = " and ".join(f"--{n}" for n in given)
        raise ConfigError(
            "scheduler",
            f"{names} were both given: use --scheduler ADDRESS for an existing scheduler "
            "or --cluster deploy/X.yaml to start one, not both",
        )
    if scheduler is not None and "://" not in str(scheduler):
        raise ConfigError(
            "scheduler", f"{scheduler!r} is not an address (tls://HOST:PORT or tcp://HOST:PORT)"
        )
    value = next(iter(given.values()), None)
    return None if value is None else os.fspath(value)


def scheduler_security(address: str, *, tls: bool = False, security: Any = None) -> Any:
    """The ``Security`` to reach the existing scheduler at ``address`` with (``None``: plaintext,
    or let dask's ``distributed.client.security-loader`` provide it).

    ``tls=True`` with a non-TLS address, and a ``tls://`` address without client credentials,
    raise :class:`ConfigError` saying so.
    """
    import dask

    scheme = address.split("://", 1)[0].lower()
    if scheme not in ENCRYPTED_SCHEMES:
        if tls or security is not None:
            raise ConfigError(
                "tls",
                f"--tls was given but the scheduler address {address} is not TLS "
                f"({scheme}:// is plaintext and unauthenticated): use its tls:// address, "
                "or drop --tls to accept a plaintext connection knowingly",
            )
        return None
    if security is not None or scheme != "tls":
        return security  # wss://, gateway://: credentials come with the caller's or the config
    from distributed.security import Security

    configured = Security()  # the client credentials in dask's config, if any
    if configured.tls_ca_file and configured.tls_client_cert:
        return configured
    if dask.config.get("distributed.client.security-loader", None):
        return None  # distributed's Client calls the configured loader
    raise ConfigError(
        "tls",
        f"the scheduler {address} uses TLS but no client credentials are configured: set "
        "distributed.comm.tls.ca-file, distributed.comm.tls.client.cert and "
        "distributed.comm.tls.client.key in dask's config (or DASK_DISTRIBUTED__COMM__TLS__"
        "CA_FILE, ...__CLIENT__CERT, ...__CLIENT__KEY), issued by the scheduler's CA",
    )


def worker_environment() -> dict[str, Any]:
    """The environment the nanny gives a local worker process (one thread): distributed's
    defaults, with glibc's switches that keep freed memory for the next chunk
    (:data:`analysis.heap.WORKER_ENVIRONMENT`) in place of distributed's
    ``MALLOC_TRIM_THRESHOLD_``.

    distributed sets that variable to 64 kB, to hand freed memory back to the system. Setting
    it also freezes glibc's mmap threshold, so every large array a chunk allocates was a fresh
    ``mmap`` whose pages faulted in again: the histmaker's steady rate per worker was 0.70 of
    the same loop in one process with it. Without it, arrays above 32 MB still faulted in at
    every chunk (0.12 faults per event); with the switches a worker alone runs the same chunks
    1.22x faster, as fast as one process does (``docs/scaling.md``). The thread-count
    variables (one BLAS/OpenMP thread per single-threaded worker) stay.

    >>> env = worker_environment()
    >>> env["MALLOC_MMAP_MAX_"], env["MALLOC_ARENA_MAX"], env["OMP_NUM_THREADS"]
    ('0', '1', '1')
    """
    return dict(warmstart.spawn_environment())


def worker_heap_plugin() -> Any:
    """A worker plugin for the workers of clusters started here: the heap a chunk sees is the
    one the single process sees, and the process ends at once when the cluster closes.

    - **At setup**, :func:`analysis.warmstart.freeze_heap`: the objects alive
      (distributed, and with warm workers the whole stack) leave the full collections, and the
      youngest generation is collected every 10,000 allocations, as the ``wmass`` command
      does in its own process. Without it a worker ran its chunks at ~0.85 of the single
      process even alone on two cores (``docs/scaling.md``, eighth pass).
    - **At teardown**, :func:`gc.freeze`: a worker that ran the histmaker holds ~350k Python
      objects (awkward, coffea, numba); the interpreter's last garbage collections over them
      took 2-4 s, past the nanny's 4 s patience under load ("Worker process still alive after
      4.0 seconds, killing"). Frozen, they leave those collections nothing to walk: closing a
      2-worker cluster after a run went from 2.5-4.6 s to 0.3 s (measured).

    Only for workers of clusters started here; an existing scheduler's are not ours to change.
    (distributed is imported here, not with this module, which the iterative path imports.)
    """
    from distributed.diagnostics.plugin import WorkerPlugin

    class WorkerHeap(WorkerPlugin):
        name = "wmass-worker-heap"

        def setup(self, worker: Any) -> None:
            warmstart.freeze_heap()

        def teardown(self, worker: Any) -> None:
            gc.freeze()

    return WorkerHeap()


#: dask config of the workers of the clusters started here, local and batch. A busy worker's
#: event loop wakes for distributed's stack sampler every 10 ms and for its tick every 20 ms, and
#: each wake-up takes the GIL from the chunk being processed: the worker's main thread used
#: 5-9 % of a core beside the compute thread's 86-95 %. Sampling every 100 ms (the dashboard's
#: profile still fills, with fewer samples) and ticking every 200 ms left it 1-4 %, and the
#: compute thread 92-98 % (docs/scaling.md, eighth pass). An existing scheduler's workers are
#: not ours to change.
WORKER_CONFIG: dict[str, str] = {
    "distributed.worker.profile.interval": "100ms",
    "distributed.admin.tick.interval": "200ms",
}


#: the preload of the spawned workers of a local cluster and of batch workers: they register
#: without importing pandas for its version (:mod:`analysis._spawned_worker`)
SPAWNED_WORKER_PRELOAD = "analysis._spawned_worker"


def config_variable(key: str) -> str:
    """The environment variable through which dask reads the config ``key``.

    >>> config_variable("distributed.worker.profile.interval")
    'DASK_DISTRIBUTED__WORKER__PROFILE__INTERVAL'
    """
    return "DASK_" + key.upper().replace(".", "__").replace("-", "_")


#: the start of the job script line that sets the environment a batch job's nanny gives its
#: workers (dask reads this variable as a config override of ``pre-spawn-environ``)
_PRE_SPAWN_EXPORT = f"export {config_variable('distributed.nanny.pre-spawn-environ')}="


def worker_malloc_prologue(threads_per_worker: int = 1) -> str:
    """The job script line that gives a batch worker glibc's switches as a local worker has
    them (:func:`worker_environment`).

    - **One thread**: :data:`analysis.heap.WORKER_ENVIRONMENT`, exported in the job's shell. The
      nanny takes a ``pre-spawn-environ`` variable from its own environment where it is set
      there, so these replace distributed's ``MALLOC_TRIM_THRESHOLD_``, and the worker inherits
      them.
    - **Several threads**: none of them (one heap for several compute threads would put them
      on one lock): the variables are unset, in case the submitting shell passed them on, and
      distributed's ``MALLOC_TRIM_THRESHOLD_`` is set to None, which the nanny leaves out.

    >>> worker_malloc_prologue(1)
    'export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_ARENA_MAX=1'
    >>> print(worker_malloc_prologue(4))
    unset MALLOC_MMAP_MAX_ MALLOC_TRIM_THRESHOLD_ MALLOC_ARENA_MAX; export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON="{'MALLOC_TRIM_THRESHOLD_': None}"
    """  # noqa: E501
    if threads_per_worker == 1:
        return "export " + " ".join(f"{k}={v}" for k, v in WORKER_ENVIRONMENT.items())
    removed = {"MALLOC_TRIM_THRESHOLD_": None}
    return f'unset {" ".join(WORKER_ENVIRONMENT)}; {_PRE_SPAWN_EXPORT}"{removed!r}"'


#: :func:`worker_malloc_prologue` for a one-thread worker (the deploy YAMLs' ``cores: 1``)
WORKER_MALLOC_PROLOGUE = worker_malloc_prologue(1)


def batch_worker_prologue(prologue: Any = None, threads_per_worker: int = 1) -> list[str]:
    """The ``job_script_prologue`` of a dask-jobqueue cluster: the deploy YAML's own lines,
    then :func:`worker_malloc_prologue`, an ``export`` of each :data:`WORKER_CONFIG` key and
    one of the worker preload :data:`SPAWNED_WORKER_PRELOAD`, each unless the YAML sets it
    itself, so that batch workers run at the local workers' speed and register as fast.

    The preload's variable replaces a ``distributed.worker.preload`` of the batch node's
    config files; a YAML that needs one of its own exports the variable with both.

    >>> batch_worker_prologue(["module load root"])[0]
    'module load root'
    >>> batch_worker_prologue()[1]
    'export DASK_DISTRIBUTED__WORKER__PROFILE__INTERVAL=100ms'
    """
    if prologue is None:
        lines: list[str] = []
    elif isinstance(prologue, str):
        lines = [prologue]
    else:
        lines = [str(line) for line in prologue]
    # a YAML that sets the nanny's environment or one of glibc's variables itself decides
    theirs = any(_PRE_SPAWN_EXPORT in line or "MALLOC_" in line for line in lines)
    extra = [] if theirs else [worker_malloc_prologue(threads_per_worker)]
    # dask reads a variable's value as a Python literal where it is one (the preload's list)
    exports = {**WORKER_CONFIG, "distributed.worker.preload": json.dumps([SPAWNED_WORKER_PRELOAD])}
    for key, value in exports.items():
        variable = config_variable(key)
        if not any(variable + "=" in line for line in lines):
            extra.append(f"export {variable}={shlex.quote(value)}")
    return [*lines, *extra]


def threads_per_batch_worker(kind: str, options: dict[str, Any]) -> int:
    """How many threads each worker of a dask-jobqueue cluster of ``kind`` will run, from its
    keywords ``options`` (``cores`` per job over ``processes`` per job, dask-jobqueue's own
    rule and config where they are not given); 0 when ``cores`` is not known.

    >>> threads_per_batch_worker("slurm", {"cores": 8, "processes": 2})
    4
    """
    import dask.config

    cores = options.get("cores") or dask.config.get(f"jobqueue.{kind}.cores", default=None)
    if not cores:
        return 0
    processes = options.get("processes") or dask.config.get(
        f"jobqueue.{kind}.processes", default=None
    )
    if not processes:
        from distributed.deploy.local import nprocesses_nthreads

        processes, _ = nprocesses_nthreads(int(cores))
    return max(1, int(cores) // int(processes))


@contextlib.contextmanager
def _environ_set(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` while the block runs, each key's old value (or none) back
    on exit.

    distributed's nanny takes a variable of its ``pre-spawn-environ`` from this process's
    environment where it is set there, and writes its workers' environment into this process's
    before each spawn: a plain ``LocalCluster`` started earlier in a notebook leaves distributed's
    ``MALLOC_TRIM_THRESHOLD_`` behind, which would replace ours. Afterwards this process's own
    child processes should not keep a worker's switches.
    """
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def dask_client(
    where: str | os.PathLike | None = None,
    *,
    scheduler: str | None = None,
    cluster: str | os.PathLike | None = None,
    workers: int | None = None,
    tls: bool = False,
    security: Any = None,
    memory_limit: str | None = "auto",
    quiet: bool = False,
    scheduler_host: str | None = None,
    warm_workers: bool | None = None,
) -> Iterator[Any]:
    """Yield a connected ``distributed.Client`` for ``where`` (see the module docstring).

    ``scheduler`` / ``cluster``: the CLI's ``--scheduler`` / ``--cluster`` (at most one of them
    and ``where``). ``security``: a ``distributed.security.Security`` for an existing ``tls://``
    scheduler (default: dask's config). ``warm_workers``: a local cluster forks its workers
    from a warm server (:mod:`analysis.warmstart`; default: whether this process
    enabled it, as the ``wmass`` command does). Clusters started here are closed on exit; an
    existing scheduler is left running.
    """
    import dask  # here, not at the top: a run in one process never needs it (~0.07 s)
    from distributed import Client, LocalCluster

    where = resolve_where(where, scheduler=scheduler, cluster=cluster)
    say = (lambda *_: None) if quiet else print
    if where is not None and "://" in where:
        remote = scheduler_security(where, tls=tls, security=security)
        if where.split("://", 1)[0].lower() not in ENCRYPTED_SCHEMES:
            say(
                f"[dask] WARNING: {where} is plaintext: tasks (pickled calls) and results travel "
                "unencrypted and unauthenticated; use tls:// on a shared network"
            )
        with Client(where, timeout="30s", security=remote) as client:
            n = len(client.scheduler_info().get("workers", {}))
            say(f"[dask] scheduler {where}: {n} workers, dashboard {client.dashboard_link}")
            yield client
        return
    if security is not None:
        raise ConfigError("security", "only for an existing tls:// scheduler (use tls=True)")
    security, protocol = _security(tls)
    # the scheduler's side of registering a worker: local and batch schedulers run here
    warmstart.report_versions_from_metadata()
    if where is None:
        n = workers or os.cpu_count() or 1
        config: dict[str, Any] = {
            "distributed.nanny.pre-spawn-environ": worker_environment(),
            **WORKER_CONFIG,
        }
        warm = warmstart.enabled() if warm_workers is None else warm_workers
        if warm and warmstart.configure():
            warmstart.claim_preload()
            config["distributed.worker.multiprocessing-method"] = "forkserver"
        else:  # the workers' side: the warm server does it for warm workers
            preloads = list(dask.config.get("distributed.worker.preload", default=None) or [])
            config["distributed.worker.preload"] = [*preloads, SPAWNED_WORKER_PRELOAD]
        with (
            _environ_set(WORKER_ENVIRONMENT),
            dask.config.set(config),
            LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                memory_limit=memory_limit,
                security=security,
                protocol=protocol,
            ) as local,
            Client(local, security=security) as client,
        ):
            client.register_plugin(worker_heap_plugin())
            say(f"[dask] local cluster: {n} workers, dashboard {client.dashboard_link}")
            yield client
        return
    text = where
    spec = load_cluster_spec(text)
    import dask_jobqueue

    cls = getattr(dask_jobqueue, JOBQUEUE_KINDS[spec["kind"]])
    host = resolve_scheduler_host(spec.get("scheduler_host"), scheduler_host)
    # the workers (other nodes) must reach the scheduler; the dashboard stays on loopback
    options = {"scheduler_options": {"host": host, "dashboard_address": "127.0.0.1:0"}}
    options.update(spec["cluster"])
    options["job_script_prologue"] = batch_worker_prologue(
        options.get("job_script_prologue"), threads_per_batch_worker(spec["kind"], options)
    )
    if security is not None:
        options.update(security=security, protocol=protocol)
    try:
        batch = cls(**options)
    except TypeError as err:
        raise ConfigError("cluster", str(err), source=text) from err
    with batch, Client(batch, security=security) as client:
        client.register_plugin(worker_heap_plugin())
        batch.scale(jobs=spec["jobs"])
        say(
            f"[dask] {spec['kind']} cluster: {spec['jobs']} jobs, dashboard {client.dashboard_link}"
        )
        client.wait_for_workers(1, timeout=spec["wait_timeout"])
        yield client


class PendingClient:
    """:func:`dask_client` entered on a thread: the cluster starts while the caller works on.

    Starting an embedded local cluster costs seconds (worker processes spawn and import
    distributed) that the command can spend on its own start: importing the processors,
    reading ``datasets.yaml``, planning the chunks in this process.
    :meth:`result` waits for the client (and raises what starting it raised);
    ``ready`` is the time it became ready. A context manager: leaving it closes the cluster.

    >>> with PendingClient(workers=1, quiet=True) as pending:  # doctest: +SKIP
    ...     chunks = plan(datasets)  # while the workers start
    ...     client = pending.result()
    """

    def __init__(self, **options: Any) -> None:
        self._stack = contextlib.ExitStack()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="wmass-cluster-start")
        self.ready: float | None = None
        self._future: Future[Any] = self._pool.submit(self._start, options)

    def _start(self, options: dict[str, Any]) -> Any:
        client = self._stack.enter_context(dask_client(**options))
        self.ready = time.time()
        return client

    def result(self) -> Any:
        """The connected ``distributed.Client`` (waits for the cluster to be up)."""
        return self._future.result()

    def close(self) -> None:
        """Wait for the start to end, then close the cluster (if it started) on the thread that
        started it (distributed wants a client's context left where it was entered)."""
        with contextlib.suppress(BaseException):
            self._future.result()
        try:
            self._pool.submit(self._stack.close).result()
        finally:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> PendingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
