"""Batch workers get the local workers' environment: no ``MALLOC_TRIM_THRESHOLD_``.

distributed's nanny sets that variable for every worker it spawns, which freezes glibc's mmap
threshold and cost a worker 30 % of its rate (docs/scaling.md). Local workers are started
without it; a batch job's nanny reads its config on the node, so the job script exports the
override. These tests run the job script's line in a real shell and the nanny's own reading of
the config in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys

import dask_jobqueue

from analysis.runner.cluster import (
    WORKER_CONFIG,
    WORKER_MALLOC_PROLOGUE,
    batch_worker_prologue,
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


def test_the_prologue_removes_malloc_trim_and_keeps_the_thread_limits():
    env = _nanny_env(batch_worker_prologue(["export WMASS_TEST_MARK=1"]))
    assert "MALLOC_TRIM_THRESHOLD_" not in env
    assert env.get("OMP_NUM_THREADS") == "1"


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
