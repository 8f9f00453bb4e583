"""Broken input gets a clear answer from ``wmass histmaker``: without ``--skip-bad-files`` the
run stops naming the file and the reason; with it, the file is listed as failed (in hists.h5,
``wmass inspect --json`` and the summary) and the sum of weights and events count only the
files processed. A wrong datasets.yaml names the key and the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import uproot
import yaml

from analysis import cli
from analysis.io import read_histograms
from benchmarks._common import histmaker_argv
from processors.errors import BadInputFile, ConfigError, MissingBranch
from tests.analysis import scale_samples as h5
from tests.processors import synthetic as synthetic

HERE = Path(__file__).resolve().parent


def _truncated(path: Path, good: Path) -> None:
    data = good.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path, good: Path) -> None:
    path.write_bytes(np.random.default_rng(1).bytes(30_000))


def _empty(path: Path, good: Path) -> None:
    path.write_bytes(b"")


def _no_events_tree(path: Path, good: Path) -> None:
    with uproot.recreate(path) as f:
        f.mktree("Runs", {"run": np.uint32}).extend({"run": np.array([1], np.uint32)})


def _missing_branch(path: Path, good: Path) -> None:
    synthetic.write_sample(path, 200, seed=2, drop=("MET_pt",))


def _directory(path: Path, good: Path) -> None:
    path.mkdir()


#: case -> (how to break the file, what the error says besides the file name)
CASES = {
    "truncated": (_truncated, "bad input file"),
    "garbage": (_garbage, "not a readable ROOT file"),
    "empty": (_empty, "not a readable ROOT file"),
    "no Events tree": (_no_events_tree, "no 'Events' tree"),
    "missing branch": (_missing_branch, "missing branch 'MET_pt'"),
    "unreadable path": (_directory, "bad input file"),
}


@pytest.fixture(params=list(CASES))
def broken(request, generated_sample, tmp_path):
    make, reason = CASES[request.param]
    good = load_good(generated_sample)
    bad = tmp_path / "broken.root"
    make(bad, Path(good[0]))
    yaml_path = h5.fileset(
        generated_sample, tmp_path / "datasets.yaml", keep=("wmunu",), extra={"wmunu": [str(bad)]}
    )
    return yaml_path, bad, reason, good


def load_good(sample: Path) -> list[str]:
    doc = yaml.safe_load(sample.read_text())
    return [str(sample.parent / f) for f in doc["datasets"]["wmunu"]["files"]]


def _histmaker(yaml_path: Path, out: Path, *extra: str) -> int:
    return cli.main(
        histmaker_argv(yaml_path, out, executor="iterative", chunksize=400, extra=extra)
    )


def test_bad_file_stops_the_run_naming_file_and_reason(broken, tmp_path, capsys):
    yaml_path, bad, reason, _ = broken
    out = tmp_path / "hists.h5"
    assert _histmaker(yaml_path, out) in (BadInputFile.exit_code, MissingBranch.exit_code)
    err = capsys.readouterr().err
    assert "wmass histmaker: error: " in err
    assert str(bad) in err and reason in err, err
    assert not out.exists()


def test_skip_bad_files_records_it_and_normalises_without_it(broken, tmp_path, capsys):
    yaml_path, bad, reason, good = broken
    out = tmp_path / "hists.h5"
    assert _histmaker(yaml_path, out, "--skip-bad-files") == 0
    summary = capsys.readouterr().out
    assert f"failed wmunu: {bad}" in summary.replace("\n", "")

    w = read_histograms(out)["wmunu"]
    assert [f["file"] for f in w.files_failed] == [str(bad)]
    assert reason in w.files_failed[0]["error"]
    assert w.files_processed == sorted(good)
    assert w.events_read == h5.n_events(good)
    assert w.sumw == pytest.approx(h5.sum_genweight(good), rel=1e-12)
    assert {f for f, _, _ in w.chunks} == set(good)

    assert cli.main(["inspect", str(out), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["datasets"]["wmunu"]["files_failed"]
    assert [f["file"] for f in listed] == [str(bad)] and reason in listed[0]["error"]


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda doc: doc.update(lumi=1.0), "lumi: unknown key"),
        (lambda doc: doc["datasets"]["wmunu"].update(xsec=1.0), "datasets.wmunu.xsec: unknown key"),
        (lambda doc: doc["datasets"]["wmunu"].pop("is_data"), "datasets.wmunu.is_data: missing"),
        (
            lambda doc: doc["datasets"]["wmunu"]["files"].append("nowhere/nano_9.root"),
            "datasets.wmunu.files[2]: no such file",
        ),
    ],
    ids=["unknown top key", "unknown dataset key", "missing key", "missing file"],
)
def test_bad_datasets_yaml_names_key_and_file(generated_sample, tmp_path, capsys, edit, named):
    yaml_path = h5.fileset(generated_sample, tmp_path / "datasets.yaml", keep=("wmunu",))
    doc = yaml.safe_load(yaml_path.read_text())
    edit(doc)
    yaml_path.write_text(yaml.safe_dump(doc))
    assert _histmaker(yaml_path, tmp_path / "hists.h5") == ConfigError.exit_code
    err = capsys.readouterr().err
    assert named in err and str(yaml_path) in err, err
