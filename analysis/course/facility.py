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
    an existing Dask scheduler to run on (``tcp://...``, ``tls://...``); otherwise a Dask
    client already made in the notebook is used, otherwise a LocalCluster is started.
``JUPYTERHUB_SERVICE_PREFIX``
    set by JupyterHub: the dashboard link goes through jupyter-server-proxy
    (``<prefix>proxy/<port>/status``), which a browser outside the hub can reach.
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
    "dashboard_link",
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


@contextlib.contextmanager
def course_client(workers: int = 2) -> Iterator[Any]:
    """A Dask client: the configured scheduler, else the notebook's own client, else a
    LocalCluster of ``workers`` processes (closed on exit; an existing one is left running)."""
    from analysis.runner.cluster import dask_client

    address = os.environ.get("WMASS_COURSE_SCHEDULER") or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        with dask_client(scheduler=address, quiet=True) as client:
            yield client
        return
    client = _existing_client()
    if client is not None:
        yield client
        return
    with dask_client(workers=workers, quiet=True) as client:
        yield client


def dashboard_link(client: Any = None, *, link: str | None = None) -> str:
    """The dashboard address a student's browser can open: through jupyter-server-proxy
    (``$JUPYTERHUB_SERVICE_PREFIX/proxy/<port>/status``) behind JupyterHub, else dask's link."""
    link = link if link is not None else str(client.dashboard_link)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if not prefix:
        return link
    parsed = urlparse(link)
    port = parsed.port or 8787
    path = parsed.path or "/status"
    return f"{prefix.rstrip('/')}/proxy/{port}{path}"
