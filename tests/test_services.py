"""The real services the deployment tests stand on: SLURM runs a job, xrootd serves a file."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import uproot

from tests.services import slurm_cluster, xrootd_server

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nanoaod"


@pytest.mark.skipif(os.environ.get("WMASS_NO_SERVICES") == "1", reason="WMASS_NO_SERVICES=1")
def test_slurm_runs_a_job_on_this_machine(tmp_path):
    with slurm_cluster(tmp_path / "slurm") as env:
        out = subprocess.run(
            ["srun", "-N1", "-n1", "hostname"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == os.uname().nodename


@pytest.mark.skipif(not SHARED.exists(), reason="../shared/data/nanoaod not beside the checkout")
@pytest.mark.skipif(os.environ.get("WMASS_NO_SERVICES") == "1", reason="WMASS_NO_SERVICES=1")
def test_xrootd_serves_the_same_events_as_the_local_file():
    pytest.importorskip("fsspec_xrootd", reason="fsspec-xrootd is not installed")
    export = Path(tempfile.mkdtemp(prefix="wmass-export-"))  # /tmp: nobody can traverse it
    (export / "nano_dy.root").write_bytes((SHARED / "nano_dy.root").read_bytes())
    local = uproot.open(SHARED / "nano_dy.root")["Events"]["Muon_pt"].array()
    with xrootd_server(export) as url:
        remote = uproot.open(f"{url}/{export}/nano_dy.root")["Events"]["Muon_pt"].array()
    shutil.rmtree(export)
    assert remote.tolist() == local.tolist()
