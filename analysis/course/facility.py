"""Where the course runs: a laptop, or an analysis facility with 50 students.

Environment variables (all optional; a laptop needs none):

``WMASS_COURSE_DIR``
    the student's own, writable work directory (default ``course-work/`` in the current
    directory): outputs of the exercises, and the sample when there is no shared one.
``WMASS_COURSE_SAMPLES``
    a **shared, read-only** directory the facilitator filled with ``wmass course generate``:
    one blinded sample per student, ``<samples>/<student-slug>/``. When set, nothing is
    generated in the student's directory.
``WMASS_STUDENT`` (or JupyterHub's ``JUPYTERHUB_USER``)
    whose sample this is (default: the login name).
``WMASS_COURSE_SCHEDULER`` (or dask's ``DASK_SCHEDULER_ADDRESS``)
    an existing Dask scheduler to run on (``tcp://...``, ``tls://...``).
a Dask Gateway (dask's configuration ``gateway.address``, e.g. ``DASK_GATEWAY__ADDRESS``)
    the standard dask-gateway configuration of the facility (address, proxy address,
    authentication: ``~/.config/dask/gateway.yaml`` or ``DASK_GATEWAY__*`` variables): each
    :func:`course_client` block gets a cluster of its own from the gateway, shut down at the
    end. ``WMASS_COURSE_GATEWAY=0`` ignores a configured gateway.
``JUPYTERHUB_SERVICE_PREFIX``
    set by JupyterHub: the dashboard link goes through jupyter-server-proxy
    (``<prefix>proxy/<port>/status``), which a browser outside the hub can reach.

:func:`course_client` takes the first of: a client the student already made in the notebook
(kept running), the scheduler address, the gateway, a LocalCluster (:func:`dask_backend` says
which it would take).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from analysis.course.blinding import (
    BLINDING_JSON,
    BlindingError,
    StudentSample,
    course_secret,
    make_student_sample,
    student_name,
    student_slug,
)

__all__ = [
    "COURSE_EVENTS",
    "course_client",
    "course_sample",
    "dask_backend",
    "dashboard_link",
    "gateway_address",
    "work_dir",
]

#: MC events of a course sample (about 15 s to generate)
COURSE_EVENTS = 200_000


def work_dir() -> Path:
    """The student's writable directory (``$WMASS_COURSE_DIR`` or ``course-work/``), created."""
    work = Path(os.environ.get("WMASS_COURSE_DIR", "course-work")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    return work


def course_sample(name: str | None = None, *, events: int = COURSE_EVENTS) -> StudentSample:
    """The student's blinded sample.

    With ``$WMASS_COURSE_SAMPLES`` it is ``<samples>/<slug of name>`` (read, never written);
    otherwise ``<work_dir>/samples``, generated there once at the hidden mass of
    ``(course secret, name)`` and reused by every later notebook.
    """
    name = name or student_name()
    shared = os.environ.get("WMASS_COURSE_SAMPLES")
    if shared:
        path = Path(shared) / student_slug(name)
        if not (path / BLINDING_JSON).exists():
            raise BlindingError(
                f"no sample for {name!r} in the shared directory {shared} (expected {path}): "
                "ask the facilitator (wmass course generate --students ...)"
            )
        return StudentSample.read(path)
    path = work_dir() / "samples"
    if (path / BLINDING_JSON).exists():
        sample = StudentSample.read(path)
        if sample.student == name:
            return sample
    return make_student_sample(path, name, course_secret(), events=events)


def _existing_client() -> Any:
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def _scheduler_address() -> str | None:
    return os.environ.get("WMASS_COURSE_SCHEDULER") or os.environ.get("DASK_SCHEDULER_ADDRESS")


def gateway_address() -> str | None:
    """The Dask Gateway the facility configured (dask config ``gateway.address``), or None
    (also when ``WMASS_COURSE_GATEWAY=0``)."""
    if os.environ.get("WMASS_COURSE_GATEWAY", "1").strip().lower() in {"0", "no", "false"}:
        return None
    import dask

    with contextlib.suppress(ImportError):  # registers the gateway's defaults
        import dask_gateway  # noqa: F401
    # DASK_GATEWAY__ADDRESS set after dask was imported is not in dask's config yet
    address = dask.config.get("gateway.address", None) or os.environ.get("DASK_GATEWAY__ADDRESS")
    return str(address) if address else None


def dask_backend() -> str:
    """Which Dask :func:`course_client` would use: ``"client"`` (one made in the notebook),
    ``"scheduler"``, ``"gateway"`` or ``"local"``."""
    if _existing_client() is not None:
        return "client"
    if _scheduler_address():
        return "scheduler"
    if gateway_address():
        return "gateway"
    return "local"


def _close_gateway(gateway: Any) -> None:
    """Close a dask-gateway client for good. Its ``__del__`` closes it again, which raises
    once distributed's loop has stopped ("Exception ignored in Gateway.__del__"): after the
    close here there is nothing left for it to do."""
    with contextlib.suppress(RuntimeError):
        gateway.close()
    gateway.__dict__.pop("_loop_runner", None)


@contextlib.contextmanager
def _gateway_client(workers: int, timeout: float) -> Iterator[Any]:
    try:
        from dask_gateway import Gateway
    except ImportError:
        raise BlindingError(
            f"a Dask Gateway is configured ({gateway_address()}) but dask-gateway is not "
            "installed: pip install -e '.[course]'"
        ) from None
    gateway = Gateway(address=gateway_address())
    try:
        cluster = gateway.new_cluster()
        try:
            cluster.scale(workers)
            # the default client: the runner waits on futures with distributed.wait, which needs one
            client = cluster.get_client(set_as_default=True)
            try:
                client.wait_for_workers(1, timeout=timeout)
                yield client
            finally:
                client.close()
        finally:
            cluster.shutdown()
            if getattr(cluster, "gateway", None) is not None:
                _close_gateway(cluster.gateway)
    finally:
        _close_gateway(gateway)


@contextlib.contextmanager
def course_client(workers: int = 2, *, gateway_timeout: float = 180.0) -> Iterator[Any]:
    """A Dask client: the notebook's own client (left running), else the configured scheduler,
    else a cluster of ``workers`` from the configured Dask Gateway (shut down on exit, once at
    least one worker joined within ``gateway_timeout`` s), else a LocalCluster of ``workers``
    processes (closed on exit)."""
    from analysis.runner.cluster import dask_client

    backend = dask_backend()
    if backend == "client":
        yield _existing_client()
    elif backend == "scheduler":
        with dask_client(scheduler=_scheduler_address(), quiet=True) as client:
            yield client
    elif backend == "gateway":
        with _gateway_client(workers, gateway_timeout) as client:
            yield client
    else:
        with dask_client(workers=workers, quiet=True) as client:
            yield client


def dashboard_link(client: Any = None, *, link: str | None = None) -> str:
    """The dashboard address a student's browser can open: through jupyter-server-proxy
    (``$JUPYTERHUB_SERVICE_PREFIX/proxy/<port>/status``) behind JupyterHub, else dask's link."""
    link = link if link is not None else str(client.dashboard_link)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    parsed = urlparse(link)
    if not prefix or parsed.path.startswith("/clusters/") or "/clusters/" in parsed.path:
        return link  # no hub, or a Dask Gateway's dashboard (the gateway proxies it itself)
    port = parsed.port or 8787
    path = parsed.path or "/status"
    return f"{prefix.rstrip('/')}/proxy/{port}{path}"
