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

SHARED = Path(__file__).resolve().parent / "data" / "nanoaod"


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


@pytest.mark.skipif(not SHARED.exists(), reason="tests/data/nanoaod is missing")
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


def test_an_absent_service_skips_with_the_reason_and_the_remedy():
    from tests.services import PROVISION, require_binaries

    with pytest.raises(pytest.skip.Exception, match=rf"wmass-no-such-daemon .*run {PROVISION}"):
        require_binaries({"wmass-no-such-daemon": "wmass-no-such-package"})


def test_pytest_never_provisions_the_machine():
    """Installing packages or writing system files belongs to deploy/provision-test-services.sh
    (called by .ci/run), never to a test: `make test` must not change the machine."""
    root = Path(__file__).resolve().parent
    forbidden = ("apt-get", "dpkg -i", "mungekey", "/etc/munge", "runuser")
    offenders = [
        f"{path.relative_to(root)}: {word}"
        for path in root.rglob("*.py")
        if path != Path(__file__).resolve()
        for word in forbidden
        if word in path.read_text()
    ]
    assert offenders == []
    provision = root.parent / "deploy" / "provision-test-services.sh"
    assert provision.stat().st_mode & 0o100, "the provisioning script must be executable"
    assert "deploy/provision-test-services.sh" in (root.parent / ".ci" / "run").read_text()
