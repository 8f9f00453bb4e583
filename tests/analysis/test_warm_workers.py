"""Warm workers (analysis.warmstart): local workers forked from a server that imported the stack
and loaded the fill kernels once are warm before their first chunk, and fill exactly what the
single process fills; the ``wmass`` command starts that server before its own imports."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import warmstart
from analysis.datasets import load_datasets
from analysis.io import read_histograms
from analysis.runner.cluster import WORKER_CONFIG
from analysis.runner.run import run
from processors import WMassProcessor
from tests.analysis import h3_samples as h3
from tests.analysis.test_run import SOME, _assert_same

pytestmark = pytest.mark.skipif(
    "forkserver" not in __import__("multiprocessing").get_all_start_methods(),
    reason="this platform has no multiprocessing forkserver",
)


def _worker_state() -> dict:
    """In a worker: how it was started and what it holds before any chunk ran there."""
    import sys

    import dask
    import psutil

    from analysis.runner.cluster import WORKER_CONFIG
    from processors import fill

    parent = psutil.Process(os.getppid()).cmdline()
    return {
        "parent": " ".join(parent),
        "processors_imported": "processors.wmass" in sys.modules,
        "kernels_loaded": sum(len(getattr(fill, k).overloads) for k in ("_fill_tensor",)),
        "config": {key: dask.config.get(key) for key in WORKER_CONFIG},
        "pandas_imported": "pandas" in sys.modules,
    }


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("warm")
    yaml_path = h3.make_fileset(tmp, mc_files=2, mc_events=400, data_events=500)
    return yaml_path, h3.corrections_for(tmp)


@pytest.mark.dask
def test_warm_workers_start_warm_and_fill_what_one_process_fills(sample):
    from analysis.runner.cluster import dask_client

    yaml_path, corrections = sample
    datasets = load_datasets(yaml_path)
    # the kernels' cache entries exist once something filled in this checkout
    local = run(
        WMassProcessor(datasets, corrections=corrections, variations=SOME),
        datasets,
        executor="iterative",
        chunksize=250,
        progress=False,
    )
    proc = WMassProcessor(datasets, corrections=corrections, variations=SOME, hist_output=False)
    with dask_client(workers=2, quiet=True, warm_workers=True) as client:
        states = client.run(_worker_state)
        versions = client.get_versions(check=True)  # raises on a mismatch
        dask = run(proc, datasets, executor="dask", chunksize=250, client=client, progress=False)
    assert len(states) == 2
    for state in states.values():
        # forked by multiprocessing's forkserver, not spawned by the nanny
        assert "forkserver" in state["parent"], state
        assert state["processors_imported"], state
        assert state["kernels_loaded"] >= 1, state
        # the event loop wakes less often: the sampler every 100 ms, the tick every 200 ms
        assert state["config"] == WORKER_CONFIG, state
        # registered without importing pandas for its version (0.4 s each), which it reported
        assert not state["pandas_imported"], state
    pandas = importlib.metadata.version("pandas")
    assert {w["packages"]["pandas"] for w in versions["workers"].values()} == {pandas}
    assert versions["scheduler"]["packages"]["pandas"] == pandas
    _assert_same(local.output, dask.output)
    # a library caller that did not ask keeps distributed's spawn
    assert not warmstart.enabled()


def test_only_a_certain_local_cluster_starts_the_server_early():
    for argv in (
        ["--executor", "iterative", "--workers", "2"],
        ["--datasets", "d.yaml"],  # auto: one process unless the input is large
        ["--workers", "2", "--scheduler", "tcp://10.0.0.1:8786"],
        ["--executor", "dask", "--cluster", "slurm.yaml"],
    ):
        assert warmstart.start_early(argv) is False, argv
    assert not warmstart.enabled()


def test_spawn_environment_is_the_nannys_with_the_heap_switches_for_malloc_trim():
    from analysis.heap import WORKER_ENVIRONMENT

    env = warmstart.spawn_environment()
    assert env["OMP_NUM_THREADS"] == "1" and env["OPENBLAS_NUM_THREADS"] == "1"
    assert {k: env[k] for k in WORKER_ENVIRONMENT} == WORKER_ENVIRONMENT


@pytest.mark.slow
@pytest.mark.dask
def test_the_command_with_workers_runs_on_warm_workers(sample, tmp_path):
    yaml_path, corrections = sample
    outs = {}
    for executor in ("iterative", "dask"):
        out = tmp_path / f"{executor}.h5"
        argv = ["histmaker", "--datasets", str(yaml_path), "--out", str(out)]
        argv += ["--corrections", str(corrections), "--chunksize", "250", "--quiet"]
        argv += ["--variations", *SOME, "--executor", executor]
        if executor == "dask":
            argv += ["--workers", "2"]
        # the console script, as a user runs it: main() from the command line
        code = "import sys; from analysis.cli import main; sys.argv[1:] = %r; sys.exit(main())"
        proc = subprocess.run(
            [sys.executable, "-c", code % argv],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=Path(__file__).resolve().parents[2],
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs[executor] = read_histograms(out)
    for name in ("wmunu", "data"):
        a, b = outs["iterative"][name], outs["dask"][name]
        assert a.events_read == b.events_read > 0
        for key, h in a.histograms.items():
            assert (h.view(flow=True) == b.histograms[key].view(flow=True)).all(), (name, key)


YIELD = """
import json, os, threading
from analysis import warmstart
before = os.getpriority(os.PRIO_PROCESS, 0)
alone = warmstart.yield_to_workers()  # a library caller: warm workers not enabled
warmstart.enable()
stop = threading.Event()
helper = threading.Thread(target=stop.wait)
helper.start()
lowered = warmstart.yield_to_workers()
nice = {t: os.getpriority(os.PRIO_PROCESS, int(t)) for t in os.listdir("/proc/self/task")}
stop.set()
print(json.dumps({"before": before, "alone": alone, "lowered": lowered, "nice": nice}))
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="no per-thread /proc")
def test_a_process_with_warm_workers_yields_every_thread_to_them_and_a_library_caller_does_not():
    # in a process of its own: no process can raise its priority back
    out = subprocess.run(
        [sys.executable, "-c", YIELD], capture_output=True, text=True, check=True
    ).stdout
    seen = __import__("json").loads(out.strip().splitlines()[-1])
    assert seen["alone"] is False and seen["lowered"] is True
    want = min(19, seen["before"] + warmstart.DRIVER_NICENESS)
    assert len(seen["nice"]) >= 2 and set(seen["nice"].values()) == {want}, seen
