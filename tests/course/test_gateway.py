"""Facility mode against a real Dask Gateway: ``dask-gateway-server`` with its local backend,
started by the test (``tests/services.dask_gateway_server``), configured the standard way
(dask's ``gateway.*`` keys) and used by ``course_client()`` the way notebooks 02 and 05 use it.
The course's histmaker runs on the gateway's workers; its histograms must equal the iterative
run's bin by bin, and the W charge asymmetry of the pseudo-data must be the LHC's.
"""

from __future__ import annotations

import contextlib
import os

import dask
import numpy as np
import pytest

from analysis.course import course_client, dashboard_link, dask_backend
from analysis.course.facility import gateway_address
from tests.services import dask_gateway_server

pytestmark = [pytest.mark.dask, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
def no_other_dask(monkeypatch):
    # dask-gateway's defaults join dask's config when it is imported: before any config.set
    with contextlib.suppress(ImportError):
        import dask_gateway  # noqa: F401
    for var in ("WMASS_COURSE_SCHEDULER", "DASK_SCHEDULER_ADDRESS", "WMASS_COURSE_GATEWAY"):
        monkeypatch.delenv(var, raising=False)
    for var in list(os.environ):
        if var.startswith("DASK_GATEWAY__"):
            monkeypatch.delenv(var)


def test_without_a_gateway_the_course_uses_a_local_cluster(no_other_dask):
    with dask.config.set({"gateway.address": None}):
        assert gateway_address() is None
        assert dask_backend() == "local"


def test_a_configured_gateway_can_be_switched_off(no_other_dask, monkeypatch):
    with dask.config.set({"gateway.address": "http://gateway.example.org"}):
        assert dask_backend() == "gateway"
        monkeypatch.setenv("WMASS_COURSE_GATEWAY", "0")
        assert dask_backend() == "local"


def test_the_gateways_own_dashboard_link_is_kept_behind_the_hub(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    link = "https://hub.example.org/services/dask-gateway/clusters/default.abc/status"
    assert dashboard_link(link=link) == link


def test_the_histmaker_runs_through_a_real_dask_gateway(no_other_dask, tmp_path):
    from analysis.generate import generate_samples
    from analysis.histmaker import histmaker

    generate_samples(tmp_path / "s", events=16_000, seed=5, jobs=1, command="")
    datasets = tmp_path / "s" / "datasets.yaml"
    with dask_gateway_server(tmp_path / "gateway") as config, dask.config.set(config):
        assert gateway_address() == config["gateway.address"]
        assert dask_backend() == "gateway"
        with course_client(workers=1) as client:
            info = client.scheduler_info()
            assert len(info["workers"]) >= 1
            # a gateway cluster: its scheduler is reached through the gateway's TLS proxy
            assert client.scheduler.address.startswith("gateway://")
            assert "/clusters/" in dashboard_link(client)
            _, on_gateway, result = histmaker(
                "wmass",
                datasets,
                tmp_path / "gateway.h5",
                client=client,
                chunksize=8_000,
                progress=False,
                variations=False,
            )
            assert result.workers >= 1
        _, iterative, _ = histmaker(
            "wmass",
            datasets,
            tmp_path / "iterative.h5",
            executor="iterative",
            chunksize=8_000,
            progress=False,
            variations=False,
        )
    assert set(on_gateway) == set(iterative)
    for name, ds in iterative.items():
        assert on_gateway[name].events_read == ds.events_read > 0
        assert on_gateway[name].events_selected == ds.events_selected
        for hname, h in ds.histograms.items():
            np.testing.assert_allclose(
                on_gateway[name].histograms[hname].values(), h.values(), rtol=1e-12
            )
    # physics: more W+ than W- in the selected pseudo-data (u vs d valence quarks)
    nominal = on_gateway["data"].histograms["nominal"]
    by_charge = nominal.project("charge").values()
    asym = (by_charge[1] - by_charge[0]) / by_charge.sum()
    err = np.sqrt((1 - asym**2) / by_charge.sum())
    assert by_charge.sum() > 500
    assert 0.05 < asym < 0.4, f"charge asymmetry {asym:.3f} +- {err:.3f}"


def test_the_facility_config_template_is_what_course_client_reads(no_other_dask):
    """deploy/jupyter/gateway.yaml uses dask-gateway's own keys, and course_client reads it."""
    from pathlib import Path

    import yaml

    dask_gateway = pytest.importorskip("dask_gateway")
    root = Path(__file__).resolve().parents[2]
    ours = yaml.safe_load((root / "deploy" / "jupyter" / "gateway.yaml").read_text())
    theirs = yaml.safe_load((Path(dask_gateway.__file__).parent / "gateway.yaml").read_text())

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict) and v:
                out |= keys(v, prefix + k + ".")
        return out

    assert keys(ours["gateway"]) <= keys(theirs["gateway"]) | {"cluster.options"}
    with dask.config.set(ours):
        assert gateway_address() == ours["gateway"]["address"]
        assert dask_backend() == "gateway"
