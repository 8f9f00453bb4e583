"""Facility mode: the shared samples directory, the Dask client, the dashboard link."""

from __future__ import annotations

import pytest

from analysis.course import BlindingError, course_client, course_sample, dashboard_link


def test_dashboard_link_goes_through_the_hub_proxy(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    assert dashboard_link(link="http://127.0.0.1:8787/status") == "http://127.0.0.1:8787/status"
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    assert dashboard_link(link="http://127.0.0.1:40123/status") == "/user/ada/proxy/40123/status"


def test_a_missing_shared_sample_names_the_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("WMASS_COURSE_SAMPLES", str(tmp_path))
    with pytest.raises(BlindingError, match="ada-lovelace"):
        course_sample("Ada Lovelace")


def test_a_shared_sample_is_read_not_generated(monkeypatch, tmp_path):
    from analysis.course import make_student_sample

    make_student_sample(tmp_path / "ada-lovelace", "Ada Lovelace", "s", events=9000)
    monkeypatch.setenv("WMASS_COURSE_SAMPLES", str(tmp_path))
    monkeypatch.setenv("WMASS_COURSE_DIR", str(tmp_path / "work"))
    s = course_sample("Ada Lovelace")
    assert s.path == tmp_path / "ada-lovelace"
    assert not (tmp_path / "work" / "samples").exists()


def test_the_notebooks_own_client_is_used(monkeypatch):
    from distributed import Client

    monkeypatch.delenv("WMASS_COURSE_SCHEDULER", raising=False)
    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)
    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as c:
        with course_client() as got:
            assert got is c
        assert c.status == "running"  # not closed by course_client


@pytest.mark.dask
def test_a_configured_scheduler_is_used(monkeypatch):
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cl:
        monkeypatch.setenv("WMASS_COURSE_SCHEDULER", cl.scheduler_address)
        with course_client() as got:
            assert got.scheduler.address == cl.scheduler_address
