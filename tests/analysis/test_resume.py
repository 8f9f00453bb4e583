"""``wmass histmaker`` killed (SIGKILL) after its first checkpoint and rerun with ``--resume``
gives the histograms of an uninterrupted run, processing only the chunks not yet done; a
checkpoint of another configuration is refused, naming what differs."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from analysis import cli
from analysis.histmaker import histmaker
from analysis.io import read_histograms
from analysis.runner.checkpoint import (
    CheckpointMismatch,
    checkpoint_path,
    read_checkpoint,
    read_tree,
    write_tree,
)
from analysis.runner.execute import held_chunks
from benchmarks._common import histmaker_argv
from processors.fill import TensorFill
from tests.analysis import scale_samples as h5

HERE = Path(__file__).resolve().parent
CHUNK = 250


def _args(sample: Path, yaml_path: Path, out: Path, *extra: str) -> list[str]:
    corrections = sample.parent / "corrections.json"
    return histmaker_argv(
        yaml_path, out, chunksize=CHUNK, corrections=corrections, variations=["pileup"], extra=extra
    )


def test_checkpoint_tree_round_trip_is_exact(tmp_path):
    import h5py
    import hist

    h = hist.Hist(hist.axis.Regular(4, 0, 1, name="pt"), storage=hist.storage.Weight())
    h.fill([0.1, 0.5, 0.5, 2.0], weight=[0.1, 1 / 3, 2.5, 1e-17])
    tree = {
        "w/nu": {
            "histograms": {"nominal": h},
            "sumw": 0.1 + 0.2,
            "events_read": 7,
            "chunks": {("/a/b.root", 0, 100), ("/a/b.root", 100, 200)},
            "lumisections": {(1, 2), (1, 3)},
            "note": None,
            "flags": [True, False],
        }
    }
    # the processors' raw accumulator: [bins, variations] sums with the variation axis last
    raw = TensorFill(
        [hist.axis.Regular(3, 0, 3, name="eta"), hist.axis.Boolean(name="passIso")],
        hist.axis.StrCategory(["up", "down"], name="pdf"),
        sumw2=True,
        label="pdf",
    )
    rng = np.random.default_rng(4)
    raw.sumw[...] = rng.normal(size=raw.sumw.shape)
    raw.sumw2[...] = rng.random(raw.sumw2.shape)
    tree["w/nu"]["histograms"]["pdf"] = raw
    with h5py.File(tmp_path / "t.h5", "w") as f:
        write_tree(f.create_group("acc"), tree)
    with h5py.File(tmp_path / "t.h5", "r") as f:
        back = read_tree(f["acc"])
    hists = back["w/nu"].pop("histograms")
    assert hists["nominal"] == h
    assert np.array_equal(hists["pdf"].sumw, raw.sumw)
    assert np.array_equal(hists["pdf"].sumw2, raw.sumw2)
    hists["pdf"] += raw  # the same binning: it merges with what workers send
    assert np.array_equal(hists["pdf"].sumw, 2 * raw.sumw)
    tree["w/nu"].pop("histograms")
    assert back == tree
    assert back["w/nu"]["sumw"] == 0.30000000000000004  # bit for bit


@pytest.mark.dask
@pytest.mark.slow
def test_driver_killed_after_a_checkpoint_resumes_to_the_same_histograms(
    generated_sample, cli_cluster, tmp_path, capsys
):
    yaml_path = h5.fileset(generated_sample, tmp_path / "datasets.yaml")
    ref, out = tmp_path / "reference.h5", tmp_path / "hists.h5"
    assert cli.main(_args(generated_sample, yaml_path, ref, "--executor", "iterative")) == 0

    ck = checkpoint_path(out)
    command = [str(h5.BIN / "wmass"), *_args(generated_sample, yaml_path, out)]
    command += ["--scheduler", cli_cluster.address, "--checkpoint-interval", "0.5"]
    with open(tmp_path / "driver.log", "w") as log:
        driver = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 600
        while not ck.exists() and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if driver.poll() is None:
            os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=60)
    assert ck.exists(), (tmp_path / "driver.log").read_text()
    assert not out.exists()
    stored = read_checkpoint(ck)
    n_chunks = len(stored.config["chunks"])
    assert 0 < len(stored.done) < n_chunks, "the driver was killed too late to test anything"

    # a checkpoint of another configuration is refused, naming what differs
    common = dict(
        executor="iterative",
        corrections=generated_sample.parent / "corrections.json",
        progress=False,
        resume=True,
    )
    with pytest.raises(CheckpointMismatch, match="options.chunksize"):
        histmaker("wmass", yaml_path, out, chunksize=CHUNK // 2, variations=["pileup"], **common)
    with pytest.raises(CheckpointMismatch, match="options.variations"):
        histmaker("wmass", yaml_path, out, chunksize=CHUNK, variations=["pdf"], **common)
    with pytest.raises(CheckpointMismatch, match=r"datasets\.\w+\.files"):
        histmaker(
            "wmass", yaml_path, out, chunksize=CHUNK, variations=["pileup"], max_files=1, **common
        )
    # rerunning without --resume does not overwrite it
    capsys.readouterr()
    assert cli.main(_args(generated_sample, yaml_path, out, "--executor", "iterative")) == 2
    assert "rerun with --resume" in capsys.readouterr().err
    assert read_checkpoint(ck).done == stored.done

    path, content, result = histmaker(
        "wmass",
        yaml_path,
        out,
        scheduler=cli_cluster.address,
        chunksize=CHUNK,
        corrections=generated_sample.parent / "corrections.json",
        variations=["pileup"],
        resume=True,
        progress=False,
    )
    assert result.resumed_chunks == len(stored.done)
    done_events = sum(stop - start for _, _, start, stop in stored.done)
    all_events = sum(ds.events_read for ds in content.values())
    assert result.events == all_events - done_events  # only the rest was processed
    assert not ck.exists()
    h5.assert_same_file(read_histograms(path), read_histograms(ref))
    # the killed driver's partial results do not linger on the workers
    assert sum(cli_cluster.client.run(held_chunks).values()) == 0


def test_resume_without_a_checkpoint_starts_from_the_beginning(generated_sample, tmp_path):
    yaml_path = h5.fileset(generated_sample, tmp_path / "datasets.yaml", keep=("data",))
    out = tmp_path / "hists.h5"
    path, content, result = histmaker(
        "wmass",
        yaml_path,
        out,
        executor="iterative",
        variations=False,
        resume=True,
        progress=False,
        checkpoint_interval=0.0,
    )
    assert result.resumed_chunks == 0 and content["data"].events_read > 0
    assert path.exists() and not checkpoint_path(out).exists()


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path):
    from processors.errors import BadInputFile

    fake = tmp_path / "hists.h5.checkpoint"
    fake.write_bytes(b"not hdf5")
    with pytest.raises(BadInputFile, match="not an HDF5 file"):
        read_checkpoint(fake)
