"""The fault campaign, small (``benchmarks/faults.py`` runs 20 trials per kind).

On one warm Dask cluster started from the command line and a small generated W sample:

- the ``wmass histmaker`` driver SIGKILLed at 3 random moments (seeded), each time followed by
  ``--resume``: the histograms equal those of an uninterrupted run;
- a random worker SIGKILLed at 3 random moments of a run: the run finishes by itself with the
  histograms of an uninterrupted run;
- the driver under a file-size limit (``RLIMIT_FSIZE``, what a full disk looks like to the
  writer): with room, the same histograms; out of room when the output is written, a named
  error (no traceback) with the previous output byte for byte intact and no temporary file
  left; out of room when a checkpoint is written, the same.

Each run is a subprocess with a time bound; a hang is a failure.
"""

from __future__ import annotations

import shutil

import pytest

from benchmarks import faults
from fit.provenance import temporary_prefix

pytestmark = pytest.mark.dask


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    if shutil.which("dask", path=str(faults.BIN)) is None:
        pytest.skip("the dask command line is not installed in this environment")
    c = faults.Campaign.start(tmp_path_factory.mktemp("faults"), seed=3)
    yield c
    c.close()


def _report(trials) -> str:
    import io

    buf = io.StringIO()
    faults.print_table(trials, file=buf)
    return buf.getvalue()


def test_driver_killed_at_random_moments_resumes_to_the_same_histograms(campaign):
    trials = [campaign.driver_kill(k) for k in range(3)]
    # not LEFTOVER: the resumed run removes the temporary of a checkpoint write the kill cut
    assert all(t.outcome == "identical" for t in trials), _report(trials)
    assert all(t.identical for t in trials), _report(trials)


def test_a_resumed_run_removes_the_temporary_file_of_a_killed_checkpoint_write(campaign):
    d = campaign.tmp / "stale-tmp"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    out = d / "hists.h5"
    # what atomic_path leaves when its process is killed (this host, a pid that is gone)
    ck = d / "hists.h5.checkpoint"
    stale = d / (temporary_prefix(ck, 2**22 + 7) + "k1lled00.tmp")
    stale.write_bytes(b"\0" * 4096)
    argv = faults.histmaker_argv(
        campaign.yaml_path, campaign.corrections, out, "--scheduler", campaign.cluster.address
    )
    run = faults.run_cli([*argv, "--resume"], campaign.env, campaign.timeout)
    assert run.returncode == 0, run.stderr
    assert faults.same_histograms(out, campaign.reference)[0]
    assert not stale.exists()


def test_worker_killed_at_random_moments_gives_the_same_histograms(campaign):
    trials = []
    for k in range(3):
        trials.append(campaign.worker_kill(k))
        campaign.cluster.wait_for(2)  # the replacement worker has joined
    assert all(t.outcome == "identical" for t in trials), _report(trials)
    assert any(t.state.startswith("killed worker") for t in trials), _report(trials)


def test_disk_full_when_the_output_is_written_is_a_named_error_and_keeps_the_old_output(
    campaign,
):
    size = campaign.reference.stat().st_size
    roomy = campaign.disk_full(0, limit=3 * size, checkpoints=True)
    assert roomy.outcome == "identical", _report([roomy])
    full = campaign.disk_full(1, limit=size // 2, checkpoints=False)
    assert full.outcome == "named error", _report([full])
    assert full.identical  # here: the previous output is intact
    assert "File too large" in full.detail and "hists.h5" in full.detail, full.detail
    # far too small: HDF5 itself used to meet the failing writes (a traceback, then SIGSEGV)
    tiny = campaign.disk_full(3, limit=size // 8, checkpoints=False)
    assert tiny.outcome == "named error" and tiny.identical, _report([tiny])


def test_disk_full_when_a_checkpoint_is_written_is_a_named_error(campaign):
    size = campaign.reference.stat().st_size
    trial = campaign.disk_full(2, limit=size // 20, checkpoints=True)
    assert trial.outcome == "named error", _report([trial])
    assert trial.identical  # the previous output is intact
