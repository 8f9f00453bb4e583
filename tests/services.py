"""Real services for the tests that need them: a one-node SLURM cluster, an xrootd server,
headless Chromium and a Dask Gateway.

pytest never installs or configures anything on the machine: the Debian packages, the munge key
and munged are provisioned by ``deploy/provision-test-services.sh`` (``.ci/run`` calls it; on a
workstation, run it on purpose as root). Here the services are only detected; where one is
absent, the calling test is skipped with the reason and the command that would provide it.
What the tests do start (slurmctld and slurmd with a configuration in the test's temporary
directory, xrootd, ``dask-gateway-server`` with its local backend) listens on loopback and is
stopped at the end of the test. The gateway is a Python package (the ``test`` extra installs
``dask-gateway-server[local]``), not a Debian one: nothing for the provisioning script to do.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = [
    "PROVISION",
    "browser_page",
    "dask_gateway_server",
    "free_port",
    "require_binaries",
    "slurm_cluster",
    "xrootd_server",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: what provides the services (run on purpose, as root; ``.ci/run`` does)
PROVISION = "deploy/provision-test-services.sh"


def require_binaries(binaries: dict[str, str]) -> None:
    """Skip the test, with the reason, unless every binary of ``binaries`` ({binary: Debian
    package}) is on ``PATH``. Never installs anything."""
    missing = {exe: pkg for exe, pkg in binaries.items() if shutil.which(exe) is None}
    if missing:
        packages = sorted(set(missing.values()))
        pytest.skip(
            f"{', '.join(sorted(missing))} not installed (Debian packages {', '.join(packages)}):"
            f" run {PROVISION} as root to provide them"
        )


def _require_root(what: str) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"{what} needs root on this machine (the tests run it as root or nobody)")


def _wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not come up within {timeout} s")


def _munge_running() -> bool:
    try:
        out = subprocess.run("munge -n | unmunge", shell=True, capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return False
    return out.returncode == 0


@contextlib.contextmanager
def slurm_cluster(workdir: Path) -> Iterator[dict[str, str]]:
    """Start munged, slurmctld and slurmd for one node (this machine); yield the environment.

    The returned mapping holds ``SLURM_CONF``; pass it to subprocesses and ``dask_jobqueue``.
    """
    require_binaries(
        {"slurmctld": "slurm-wlm", "slurmd": "slurm-wlm", "srun": "slurm-wlm", "munge": "munge"}
    )
    _require_root("a one-node SLURM (slurmd)")
    if not _munge_running():
        pytest.skip(f"munged is not running (SLURM authenticates with it): run {PROVISION}")
    workdir = Path(workdir)
    (workdir / "state").mkdir(parents=True, exist_ok=True)
    (workdir / "spool").mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    conf = workdir / "slurm.conf"
    conf.write_text(
        "\n".join(
            [
                "ClusterName=wmasstest",
                f"SlurmctldHost={host}",
                "SlurmUser=root",
                "SlurmdUser=root",
                "AuthType=auth/munge",
                f"StateSaveLocation={workdir}/state",
                f"SlurmdSpoolDir={workdir}/spool",
                f"SlurmctldPidFile={workdir}/slurmctld.pid",
                f"SlurmdPidFile={workdir}/slurmd.pid",
                f"SlurmctldPort={free_port()}",
                f"SlurmdPort={free_port()}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "SchedulerType=sched/backfill",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core_Memory",
                "ReturnToService=2",
                "MpiDefault=none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                f"SlurmctldLogFile={workdir}/slurmctld.log",
                f"SlurmdLogFile={workdir}/slurmd.log",
                f"NodeName={host} CPUs={os.cpu_count()} RealMemory=8000 State=UNKNOWN",
                f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP"
                " OverSubscribe=YES",
                "",
            ]
        )
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    subprocess.run(["slurmctld", "-f", str(conf)], env=env, check=True)
    subprocess.run(["slurmd", "-f", str(conf)], env=env, check=True)

    def _idle() -> bool:
        out = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() in {"idle", "mix", "alloc"}

    try:
        _wait_for(_idle, 30, "slurm node")
        yield {"SLURM_CONF": str(conf)}
    finally:
        # jobs still running (e.g. dask workers) would keep slurmstepd alive after slurmd
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["scancel", "--full", "--user", str(os.geteuid())], env=env, timeout=10)

            def _no_jobs() -> bool:
                out = subprocess.run(
                    ["squeue", "-h"], env=env, capture_output=True, text=True, timeout=10
                )
                return out.returncode == 0 and not out.stdout.strip()

            with contextlib.suppress(TimeoutError):
                _wait_for(_no_jobs, 15, "slurm jobs to end")
        for name in ("slurmd", "slurmctld"):
            pid = workdir / f"{name}.pid"
            if pid.exists():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid.read_text().strip()), 15)


@contextlib.contextmanager
def xrootd_server(export: Path) -> Iterator[str]:
    """Serve ``export`` read-only with a real xrootd on 127.0.0.1; yield ``root://127.0.0.1:PORT``.

    xrootd refuses to run as root, so it runs as ``nobody`` (``-R nobody``).
    """
    require_binaries({"xrootd": "xrootd-server"})
    _require_root("xrootd (started as nobody with -R)")
    export = Path(export).resolve()
    for parent in export.parents:
        if not parent.stat().st_mode & 0o001:
            raise PermissionError(f"xrootd runs as nobody and cannot traverse {parent}")
    for path in [export, *export.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o004 | (0o001 if path.is_dir() else 0))
    port = free_port()
    admin = Path(tempfile.mkdtemp(prefix=f"wmass-xrootd-{port}-"))
    admin.chmod(0o755)
    shutil.chown(admin, "nobody")
    cfg = admin / "xrootd.cfg"
    cfg.write_text(
        f"all.export {export}\nxrd.port {port}\nxrd.network nodnr\n"
        f"all.adminpath {admin}\nall.pidpath {admin}\n"
    )
    proc = subprocess.Popen(
        ["xrootd", "-R", "nobody", "-c", str(cfg), "-l", str(admin / "xrootd.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def _listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        try:
            _wait_for(_listening, 20, "xrootd")
        except TimeoutError as err:  # say why: the server's exit code and the end of its log
            log = admin / "xrootd.log"
            tail = log.read_text(errors="replace")[-2000:] if log.is_file() else "(no log)"
            raise TimeoutError(
                f"{err} on port {port}; exit code {proc.poll()}; log:\n{tail}"
            ) from err
        yield f"root://127.0.0.1:{port}"
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        shutil.rmtree(admin, ignore_errors=True)


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000) -> Iterator[tuple[object, list[str]]]:
    """A page in Debian's headless Chromium driven by playwright; yield ``(page, errors)``.

    ``errors`` collects console errors and uncaught exceptions of every page loaded.
    """
    require_binaries({"chromium": "chromium"})
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            yield page, errors
        finally:
            browser.close()


@contextlib.contextmanager
def dask_gateway_server(
    workdir: Path, *, password: str = "wmass-test"
) -> Iterator[dict[str, object]]:
    """Start a real ``dask-gateway-server`` on 127.0.0.1 with its local backend; yield the dask
    configuration a client needs (``gateway.address``, ``gateway.proxy-address``,
    ``gateway.auth.type``: basic; the user name and password in ``gateway.auth.kwargs``).

    The backend is ``UnsafeLocalBackend``: schedulers and workers are local processes of this
    user (``LocalBackend`` would switch to the requesting user, which needs root and a system
    account per user). Every cluster left running is stopped with the server.
    """
    pytest.importorskip(
        "dask_gateway_server", reason="dask-gateway-server is not installed (the test extra)"
    )
    pytest.importorskip("dask_gateway", reason="dask-gateway is not installed (the test extra)")
    import sys

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    api, proxy = free_port(), free_port()
    config = workdir / "dask_gateway_config.py"
    config.write_text(
        "\n".join(
            [
                f"c.DaskGateway.address = '127.0.0.1:{api}'",
                f"c.Proxy.address = '127.0.0.1:{proxy}'",
                "c.DaskGateway.backend_class ="
                " 'dask_gateway_server.backends.local.UnsafeLocalBackend'",
                "c.DaskGateway.authenticator_class ="
                " 'dask_gateway_server.auth.SimpleAuthenticator'",
                f"c.SimpleAuthenticator.password = {password!r}",
                f"c.LocalBackend.clusters_directory = {str(workdir / 'clusters')!r}",
                f"c.DaskGateway.db_url = 'sqlite:///{workdir / 'gateway.sqlite'}'",
                f"c.ClusterConfig.scheduler_cmd = {str(bindir / 'dask-scheduler')!r}",
                f"c.ClusterConfig.worker_cmd = {str(bindir / 'dask-worker')!r}",
                "c.ClusterConfig.worker_cores = 1",
                "c.ClusterConfig.worker_threads = 1",
                "c.ClusterConfig.worker_memory = '1.5 G'",
                "c.ClusterConfig.scheduler_memory = '1 G'",
                "c.ClusterConfig.idle_timeout = 600",
                "",
            ]
        )
    )
    log = open(workdir / "dask-gateway-server.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [str(bindir / "dask-gateway-server"), "--config", str(config)],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )

    def _listening() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(
                f"dask-gateway-server exited ({proc.returncode}): "
                + (workdir / "dask-gateway-server.log").read_text(errors="replace")[-2000:]
            )
        with socket.socket() as s, socket.socket() as t:
            return s.connect_ex(("127.0.0.1", api)) == 0 and t.connect_ex(("127.0.0.1", proxy)) == 0

    try:
        _wait_for(_listening, 60, "dask-gateway-server")
        yield {
            "gateway.address": f"http://127.0.0.1:{api}",
            "gateway.proxy-address": f"gateway://127.0.0.1:{proxy}",
            "gateway.auth.type": "basic",
            "gateway.auth.kwargs": {"username": "student", "password": password},
        }
    finally:
        proc.terminate()  # the server stops its clusters' schedulers and workers
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(10)
        log.close()
