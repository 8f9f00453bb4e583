"""Batch workers get the local workers' environment: glibc's switches that keep a chunk's freed
memory for the next one (``analysis.heap.WORKER_ENVIRONMENT``) in place of distributed's
``MALLOC_TRIM_THRESHOLD_``, for workers with one thread.

distributed's nanny sets that variable for every worker it spawns, which freezes glibc's mmap
threshold and cost a worker 30 % of its rate (docs/scaling.md). A batch job's nanny reads its
config on the node, so the job script exports the override. These tests run the job script's
line in a real shell and the nanny's own reading of the config in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys

import dask_jobqueue
import pytest

from analysis.heap import WORKER_ENVIRONMENT
from analysis.runner.cluster import (
    WORKER_CONFIG,
    WORKER_MALLOC_PROLOGUE,
    batch_worker_prologue,
    threads_per_batch_worker,
)

NANNY_ENV = (
    "import json; from distributed.nanny import _get_env_variables; "
    "print(json.dumps(_get_env_variables('distributed.nanny.pre-spawn-environ')))"
)


def _nanny_env(prologue: list[str]) -> dict[str, str]:
    script = "\n".join([*prologue, f'"{sys.executable}" -c "{NANNY_ENV}"'])
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_without_the_prologue_the_nanny_sets_malloc_trim():
    # the default this module exists for: if distributed stops setting it, the override can go
    assert "MALLOC_TRIM_THRESHOLD_" in _nanny_env([])


def test_a_one_thread_worker_gets_the_heap_switches_and_keeps_the_thread_limits():
    env = _nanny_env(batch_worker_prologue(["export WMASS_TEST_MARK=1"]))
    assert {k: env.get(k) for k in WORKER_ENVIRONMENT} == WORKER_ENVIRONMENT
    assert env.get("OMP_NUM_THREADS") == "1"


def test_a_worker_with_several_threads_keeps_glibcs_heaps_without_malloc_trim():
    env = _nanny_env(batch_worker_prologue(threads_per_worker=4))
    assert not any(k.startswith("MALLOC_") for k in env), env


def test_an_environment_the_yaml_exports_for_the_nanny_wins():
    theirs = "export DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON=\"{'MALLOC_ARENA_MAX': '2'}\""
    prologue = batch_worker_prologue([theirs])
    assert WORKER_MALLOC_PROLOGUE not in prologue
    assert _nanny_env(prologue).get("MALLOC_ARENA_MAX") == "2"


@pytest.mark.parametrize(
    "options",
    [{"cores": 1}, {"cores": 8}, {"cores": 8, "processes": 2}, {"cores": 6, "processes": 6}],
)
def test_threads_per_worker_are_the_ones_dask_jobqueue_starts(options):
    cluster = dask_jobqueue.SLURMCluster(
        memory="1GB",
        scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
        **options,
    )
    try:
        expected = cluster._dummy_job.worker_process_threads
    finally:
        cluster.close()
    assert threads_per_batch_worker("slurm", options) == expected


def test_the_job_script_carries_the_yaml_lines_then_the_override():
    cluster = dask_jobqueue.SLURMCluster(
        cores=1,
        memory="1GB",
        job_script_prologue=batch_worker_prologue(["module load root"]),
        scheduler_options={"host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"},
    )
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert script.index("module load root") < script.index(WORKER_MALLOC_PROLOGUE)
    again = batch_worker_prologue(["module load root"])
    assert batch_worker_prologue(again) == again  # each line once


WORKER_SEES = (
    "import json, dask, distributed; "
    "print(json.dumps({k: dask.config.get(k) for k in json.loads(input())}))"
)


def test_the_prologue_gives_the_worker_our_event_loop_config_unless_the_yaml_sets_it():
    def seen(prologue: list[str]) -> dict[str, str]:
        script = "\n".join([*prologue, f'"{sys.executable}" -c "{WORKER_SEES}"'])
        out = subprocess.run(
            ["bash", "-c", script],
            input=json.dumps(list(WORKER_CONFIG)),
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    assert seen(batch_worker_prologue()) == WORKER_CONFIG
    theirs = "export DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=50ms"
    assert seen(batch_worker_prologue([theirs]))["distributed.admin.tick.interval"] == "50ms"
