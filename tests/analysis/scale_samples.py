"""Helpers for the scale, resume and bad-input tests: a small generated sample, datasets.yaml
variants around it, a real Dask cluster started from the command line, and comparisons.

Loaded by file path (the tests run in importlib mode).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import uproot
import yaml

BIN = Path(sys.executable).parent


def generate(out: Path, *, events: int = 3000, seed: int = 5) -> Path:
    """A generated sample (2 files per process, 400-event baskets); its datasets.yaml."""
    from analysis.generate import generate_samples

    return generate_samples(out, events=events, files_per_process=2, seed=seed, batch_size=400)


def shared_sample(tmp_path_factory) -> Path:
    """The generated sample, made once per test session (its datasets.yaml)."""
    base = tmp_path_factory.getbasetemp() / "h5-generated"
    done = base / "datasets.yaml"
    return done if done.exists() else generate(base)


def fileset(
    source: Path,
    out: Path,
    *,
    keep: tuple[str, ...] = ("wmunu", "data"),
    extra: dict[str, list[str]] | None = None,
    top: dict | None = None,
) -> Path:
    """A datasets.yaml at ``out`` with the datasets ``keep`` of the generated ``source`` (paths
    made absolute) and ``extra`` files appended per dataset (the YAML sumw then dropped)."""
    doc = yaml.safe_load(source.read_text())
    base = source.parent
    datasets = {}
    for name in keep:
        entry = dict(doc["datasets"][name])
        entry["files"] = [str(base / f) for f in entry["files"]]
        for key in ("lumi_csv", "golden_json"):
            if entry.get(key):
                entry[key] = str(base / entry[key])
        if extra and name in extra:
            entry["files"] += [str(f) for f in extra[name]]
            entry.pop("sumw", None)
            entry.pop("nevents", None)
        datasets[name] = entry
    body = {"lumi_pb": doc.get("lumi_pb"), "datasets": datasets, **(top or {})}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(body, sort_keys=False))
    return out


def sum_genweight(files: list[str]) -> float:
    return float(
        sum(
            uproot.open(f)["Events"]["genWeight"].array(library="np").astype(np.float64).sum()
            for f in files
        )
    )


def n_events(files: list[str]) -> int:
    return sum(uproot.open(f)["Events"].num_entries for f in files)


# -- comparisons ---------------------------------------------------------------------------------


def _values(h):
    view = h.view(flow=True)
    return (view["value"], view["variance"]) if view.dtype.names else (view, None)


def assert_same_hist(a, b, what: str, rtol: float = 1e-12) -> None:
    """Same axes, and contents equal up to the summation order (``rtol``)."""
    assert a.axes == b.axes, what
    for x, y in zip(_values(a), _values(b), strict=True):
        if x is None:
            continue
        scale = max(float(np.abs(y).max(initial=0.0)), 1.0)
        np.testing.assert_allclose(x, y, rtol=rtol, atol=rtol * scale, err_msg=what)


def assert_same_output(a: dict, b: dict, rtol: float = 1e-12) -> None:
    """Two processor outputs hold the same chunks, events, lumisections and histograms."""
    assert set(a) == set(b)
    for name in a:
        for key in ("events_read", "events_selected", "chunks", "lumisections"):
            assert a[name][key] == b[name][key], (name, key)
        assert np.isclose(a[name]["sumw"], b[name]["sumw"], rtol=rtol, atol=0), name
        assert set(a[name]["histograms"]) == set(b[name]["histograms"]), name
        for h in a[name]["histograms"]:
            assert_same_hist(a[name]["histograms"][h], b[name]["histograms"][h], f"{name}/{h}")


def assert_same_file(a, b, rtol: float = 1e-12) -> None:
    """Two read hists.h5 (``analysis.io.HistogramsFile``) agree in content and bookkeeping."""
    assert set(a.datasets) == set(b.datasets)
    assert np.isclose(a.lumi_pb or 0.0, b.lumi_pb or 0.0, rtol=rtol)
    for name in a.datasets:
        x, y = a[name], b[name]
        assert x.chunks == y.chunks and x.lumisections == y.lumisections, name
        assert (x.events_read, x.events_selected) == (y.events_read, y.events_selected), name
        assert x.files_processed == y.files_processed and x.files_failed == y.files_failed
        assert np.isclose(x.sumw, y.sumw, rtol=rtol, atol=0), name
        assert set(x.histograms) == set(y.histograms)
        for h in x.histograms:
            assert_same_hist(x.histograms[h], y.histograms[h], f"{name}/{h}", rtol)


# -- a Dask cluster started from the command line ------------------------------------------------


class CommandLineCluster:
    """``dask scheduler`` on 127.0.0.1 and ``dask worker`` processes (no nanny, one thread
    each), as subprocesses; :meth:`kill` SIGKILLs one worker."""

    def __init__(self, tmp: Path, workers: int = 2, timeout: float = 120.0) -> None:
        self.tmp = tmp
        self.file = tmp / "scheduler.json"
        self.procs: list[subprocess.Popen] = []
        self.workers: dict[str, subprocess.Popen] = {}
        env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        log = open(tmp / "scheduler.log", "w")  # noqa: SIM115 - closed with the process
        self.procs.append(
            subprocess.Popen(
                [
                    str(BIN / "dask"),
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--scheduler-file",
                    str(self.file),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp,
            )
        )
        deadline = time.monotonic() + timeout
        while not self.file.exists():
            if time.monotonic() > deadline or self.procs[0].poll() is not None:
                self.close()
                raise RuntimeError(
                    f"dask scheduler did not start: {(tmp / 'scheduler.log').read_text()}"
                )
            time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]
        for k in range(workers):
            self.add_worker(k, env)
        from distributed import Client

        self.client = Client(scheduler_file=str(self.file), timeout="60s")
        self.client.wait_for_workers(workers, timeout=timeout)
        pids = self.client.run(os.getpid)
        by_pid = {p.pid: p for p in self.procs}
        self.workers = {addr: by_pid[pid] for addr, pid in pids.items() if pid in by_pid}
        assert len(self.workers) == workers, pids

    def add_worker(self, k: int, env: dict) -> None:
        log = open(self.tmp / f"worker{k}.log", "w")  # noqa: SIM115
        self.procs.append(
            subprocess.Popen(
                [
                    str(BIN / "dask"),
                    "worker",
                    "--scheduler-file",
                    str(self.file),
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.tmp,
            )
        )

    def kill(self, address: str) -> None:
        """SIGKILL the worker process listening at ``address``."""
        proc = self.workers.pop(address)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
        for p in reversed(self.procs):  # workers first, the scheduler last
            if p.poll() is None:
                p.kill() if p is not self.procs[0] else p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
