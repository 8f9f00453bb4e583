"""Batch workers get the local workers' environment: glibc's switches that keep a chunk's freed
memory for the next one (``analysis.heap.WORKER_ENVIRONMENT``) in place of distributed's
``MALLOC_TRIM_THRESHOLD_``, for workers with one thread.

distributed's nanny sets that variable for every worker it spawns, which freezes glibc's mmap
threshold and cost a worker 30 % of its rate (docs/scaling.md). A batch job's nanny reads its
config and its environment on the node, so the job script sets them. These tests run the job
script's line in a real shell, from a submitting environment that carries distributed's own
value (as a notebook that started a plain ``LocalCluster`` does), and print what a worker the
nanny spawns there inherits: the shell's environment with the nanny's ``pre-spawn-environ``
over it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dask_jobqueue
import pytest

from analysis.heap import WORKER_ENVIRONMENT
from analysis.runner.cluster import (
    SPAWNED_WORKER_PRELOAD,
    WORKER_CONFIG,
    WORKER_MALLOC_PROLOGUE,
    batch_worker_prologue,
    threads_per_batch_worker,
)

WORKER_ENV = (
    "import json, os; from distributed.nanny import _get_env_variables; "
    "env = {**os.environ, **_get_env_variables('distributed.nanny.pre-spawn-environ')}; "
    "print(json.dumps({k: v for k, v in env.items() if k.startswith(('MALLOC_', 'OMP_'))}))"
)

#: what a submitting process may carry: distributed's nanny writes it into its own environment
SUBMITTED = {"MALLOC_TRIM_THRESHOLD_": "65536"}


def _worker_env(prologue: list[str], submitted: dict[str, str] | None = None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    environ.update(SUBMITTED if submitted is None else submitted)
    script = "\n".join([*prologue, f'"{sys.executable}" -c "{WORKER_ENV}"'])
    out = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True, env=environ
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_without_the_prologue_the_nanny_sets_malloc_trim():
    # the default this module exists for: if distributed stops setting it, the override can go
    assert _worker_env([], submitted={})["MALLOC_TRIM_THRESHOLD_"] == "65536"


def test_a_one_thread_worker_gets_the_heap_switches_and_keeps_the_thread_limits():
    env = _worker_env(batch_worker_prologue(["export WMASS_TEST_MARK=1"]))
    assert {k: v for k, v in env.items() if k.startswith("MALLOC_")} == WORKER_ENVIRONMENT
    assert env.get("OMP_NUM_THREADS") == "1"


def test_a_worker_with_several_threads_keeps_glibcs_heaps_whatever_was_submitted():
    submitted = {**SUBMITTED, "MALLOC_ARENA_MAX": "1"}
    env = _worker_env(batch_worker_prologue(threads_per_worker=4), submitted=submitted)
    assert not any(k.startswith("MALLOC_") for k in env), env
    assert env.get("OMP_NUM_THREADS") == "1"


def test_glibcs_variables_the_yaml_sets_win():
    theirs = "export MALLOC_ARENA_MAX=2"
    prologue = batch_worker_prologue([theirs])
    assert WORKER_MALLOC_PROLOGUE not in prologue
    assert _worker_env(prologue)["MALLOC_ARENA_MAX"] == "2"


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


def _worker_config(prologue: list[str], keys: list[str]) -> dict:
    """The dask config ``keys`` that a process started after the job script's ``prologue`` sees."""
    script = "\n".join([*prologue, f'"{sys.executable}" -c "{WORKER_SEES}"'])
    out = subprocess.run(
        ["bash", "-c", script],
        input=json.dumps(keys),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_prologue_gives_the_worker_our_event_loop_config_unless_the_yaml_sets_it():
    def seen(prologue: list[str]) -> dict[str, str]:
        return _worker_config(prologue, list(WORKER_CONFIG))

    assert seen(batch_worker_prologue()) == WORKER_CONFIG
    theirs = "export DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=50ms"
    assert seen(batch_worker_prologue([theirs]))["distributed.admin.tick.interval"] == "50ms"


def test_the_prologue_gives_the_worker_the_registration_preload_unless_the_yaml_sets_one():
    def preload(prologue: list[str]) -> list[str]:
        key = "distributed.worker.preload"
        return _worker_config(prologue, [key])[key]

    assert preload(batch_worker_prologue()) == [SPAWNED_WORKER_PRELOAD]
    theirs = "export DASK_DISTRIBUTED__WORKER__PRELOAD=\"['mine']\""
    assert preload(batch_worker_prologue([theirs])) == ["mine"]
