"""Getting a Dask client: local, an existing scheduler, a deploy YAML on a real SLURM."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from analysis.runner.cluster import dask_client, load_cluster_spec
from processors.errors import ConfigError
from tests.services import slurm_cluster

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_local_cluster_listens_on_loopback_only():
    with dask_client(workers=1, quiet=True) as client:
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        assert client.submit(sum, [1, 2, 3]).result() == 6
        (worker,) = client.scheduler_info()["workers"]
        assert worker.startswith("tcp://127.0.0.1:")


def test_tls_cluster_uses_tls():
    with dask_client(workers=1, tls=True, quiet=True) as client:
        assert client.scheduler.address.startswith("tls://127.0.0.1:")
        assert client.submit(pow, 2, 10).result() == 1024


def test_existing_scheduler_by_address():
    with (
        dask_client(workers=1, quiet=True) as first,
        dask_client(first.scheduler.address, quiet=True) as second,
    ):
        assert second.submit(max, [4, 7]).result() == 7


@pytest.mark.parametrize("name", ["slurm.yaml", "htcondor.yaml"])
def test_shipped_deploy_recipes_are_valid(name):
    spec = load_cluster_spec(DEPLOY / name)
    assert spec["jobs"] >= 1 and spec["cluster"]["cores"] == 1


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("kind: slurm\njob: 2\n", "job"),
        ("kind: lsf\n", "kind"),
        ("kind: slurm\njobs: 0\n", "jobs"),
        ("- a list\n", "cluster"),
    ],
)
def test_bad_deploy_yaml_names_the_key(tmp_path, text, key):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=rf"{str(path)}: {key}"):
        load_cluster_spec(path)


def test_missing_deploy_yaml_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_cluster_spec(tmp_path / "nope.yaml")


@pytest.mark.skipif(os.environ.get("WMASS_NO_SERVICES") == "1", reason="WMASS_NO_SERVICES=1")
def test_slurm_recipe_starts_workers_through_sbatch(tmp_path, monkeypatch):
    with slurm_cluster(tmp_path / "slurm") as env:
        monkeypatch.setenv("SLURM_CONF", env["SLURM_CONF"])
        spec = tmp_path / "slurm.yaml"
        spec.write_text(
            "kind: slurm\njobs: 2\nwait_timeout: 90\ncluster:\n  queue: debug\n  cores: 1\n"
            f"  processes: 1\n  memory: 1GB\n  walltime: '00:10:00'\n"
            f"  log_directory: {tmp_path}/logs\n  local_directory: {tmp_path}/work\n"
        )
        with dask_client(spec, quiet=True) as client:
            client.wait_for_workers(2, timeout=90)
            hosts = client.run(lambda: os.environ.get("SLURM_JOB_ID"))
    assert len(hosts) == 2
    assert all(job_id for job_id in hosts.values())
