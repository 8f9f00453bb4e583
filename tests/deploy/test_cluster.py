"""Getting a Dask client: local, an existing scheduler, a deploy YAML on a real SLURM."""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

import pytest

from analysis.heap import WORKER_ENVIRONMENT
from analysis.runner.cluster import (
    dask_client,
    load_cluster_spec,
    resolve_scheduler_host,
    routable_address,
)
from processors.errors import ConfigError
from tests.services import slurm_cluster
from tests.support import loopback_cluster

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


@pytest.fixture(scope="module")
def tls_cluster():
    """A TLS-only scheduler with one in-process worker on loopback, and its credentials."""
    from distributed.security import Security

    security = Security.temporary()
    with loopback_cluster(protocol="tls://", security=security) as cluster:
        yield cluster.scheduler_address, security


def test_tls_cluster_refuses_a_plaintext_client(tls_cluster):
    from distributed import Client

    address, _ = tls_cluster
    assert address.startswith("tls://127.0.0.1:")
    plaintext = address.replace("tls://", "tcp://")
    with pytest.raises((OSError, TimeoutError)), Client(plaintext, timeout="3s"):
        pass


def test_tls_cluster_refuses_a_client_of_another_ca(tls_cluster):
    from distributed import Client
    from distributed.security import Security

    address, _ = tls_cluster
    other_ca = Security.temporary()
    with pytest.raises((OSError, TimeoutError)), Client(address, timeout="3s", security=other_ca):
        pass


def test_tls_scheduler_is_reached_with_its_security(tls_cluster):
    address, security = tls_cluster
    with dask_client(scheduler=address, tls=True, security=security, quiet=True) as client:
        assert client.security is security
        assert client.submit(pow, 3, 4).result() == 81


def test_tls_scheduler_without_client_credentials_is_named(tls_cluster, monkeypatch):
    address, _ = tls_cluster
    for var in list(os.environ):
        if var.startswith("DASK_DISTRIBUTED__COMM__TLS") or var.startswith("DASK_DISTRIBUTED__CL"):
            monkeypatch.delenv(var)
    with (
        pytest.raises(ConfigError, match="uses TLS but no client credentials"),
        dask_client(address, quiet=True),
    ):
        pass


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:1", "ws://10.0.0.1:8786"])
def test_tls_with_a_plaintext_scheduler_address_stops(address):
    with (
        pytest.raises(ConfigError, match=r"--tls was given but the scheduler address .* not TLS"),
        dask_client(scheduler=address, tls=True, quiet=True),
    ):
        pass


def test_scheduler_and_cluster_together_are_refused():
    both = {"scheduler": "tcp://127.0.0.1:1", "cluster": DEPLOY / "slurm.yaml"}
    with (
        pytest.raises(ConfigError, match="--scheduler and --cluster were both given"),
        dask_client(**both, quiet=True),
    ):
        pass


def test_cli_refuses_scheduler_with_cluster(capsys):
    from analysis.cli import main

    with pytest.raises(SystemExit) as info:
        main(
            ["histmaker", "--datasets", "d.yaml", "--scheduler", "tcp://127.0.0.1:1"]
            + ["--cluster", str(DEPLOY / "slurm.yaml"), "--out", "x.h5"]
        )
    assert info.value.code == 2
    assert "not allowed with argument --scheduler" in capsys.readouterr().err


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
            # the job script's override reached the batch nanny (tests/deploy/test_batch_worker_env)
            heaps = client.run(lambda: {k: os.environ.get(k) for k in WORKER_ENVIRONMENT})
            # the job script's preload: they registered without importing pandas for its version
            pandas = client.run(lambda: "pandas" in sys.modules)
            client.get_versions(check=True)  # and report the versions installed
            scheduler = client.scheduler.address
    assert len(hosts) == 2
    assert all(job_id for job_id in hosts.values())
    assert list(heaps.values()) == [WORKER_ENVIRONMENT, WORKER_ENVIRONMENT]
    assert list(pandas.values()) == [False, False]
    # the batch workers reached a scheduler on the routable address, not on loopback
    host = routable_address()
    assert not ipaddress.ip_address(host).is_loopback
    assert scheduler.startswith(f"tcp://{host}:")
    assert all(addr.startswith(f"tcp://{host}:") for addr in hosts)


def test_scheduler_host_comes_from_the_command_line_then_the_yaml_then_the_route(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("kind: slurm\nscheduler_host: 10.1.2.3\n")
    spec = load_cluster_spec(path)
    assert resolve_scheduler_host(spec["scheduler_host"], None) == "10.1.2.3"
    assert resolve_scheduler_host(spec["scheduler_host"], "10.9.9.9") == "10.9.9.9"
    assert resolve_scheduler_host(None, None) == routable_address()
    assert resolve_scheduler_host("auto", None) == routable_address()
    path.write_text("kind: slurm\nscheduler_host: 3\n")
    with pytest.raises(ConfigError, match="scheduler_host"):
        load_cluster_spec(path)
