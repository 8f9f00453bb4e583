"""``wmass histmaker`` end to end: real NanoAOD files, a generated sample (luminosity and
normalisation against the files themselves), ``--max-files`` and configuration errors."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import uproot
import yaml

from analysis.cli import main
from analysis.histmaker import SUMW_GENWEIGHT, SUMW_RUNS, mc_sum_of_weights
from analysis.io import read_histograms
from analysis.lumi import LumiWarning
from processors.errors import ConfigError

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("h3_samples", HERE / "h3_samples.py")
h3 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(h3)
NANO = h3.NANO


def real_fileset(tmp: Path) -> Path:
    doc = {
        "datasets": {
            "dy": {
                "process": "Zmumu",
                "is_data": False,
                "xsec_pb": 6077.2,
                "files": [str(NANO / "nano_dy.root"), str(NANO / "nano_dy_empty.root")],
            },
            "data": {
                "process": "Data",
                "is_data": True,
                "files": [str(NANO / "nano_dimuon.root")],
                "lumi_csv": str(NANO / "lumi_small.csv"),
                "golden_json": str(
                    NANO / "Cert_294927-306462_13TeV_EOY2017ReReco_Collisions17_JSON.txt"
                ),
            },
        }
    }
    path = tmp / "datasets.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_real_nanoaod_through_the_command(tmp_path, capsys):
    yaml_path = real_fileset(tmp_path)
    out = tmp_path / "hists.h5"
    argv = ["histmaker", "--analysis", "zdilepton", "--datasets", str(yaml_path)]
    argv += ["--out", str(out), "--executor", "iterative", "--chunksize", "25", "--quiet"]
    with pytest.warns(LumiWarning, match="none is in the golden JSON"):
        assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed.replace("\n", "") and "dy" in printed
    f = read_histograms(out)
    dy, data = f["dy"], f["data"]
    assert f.analysis == "zdilepton" and f.meta["args"]["analysis"] == "zdilepton"
    assert str(NANO / "nano_dy.root") in f.meta["inputs"]
    assert dy.events_read == 40 and data.events_read == 40
    assert dy.files_processed == sorted(
        [str(NANO / "nano_dy.root"), str(NANO / "nano_dy_empty.root")]
    )
    # real MC: normalised with the Runs tree's genEventSumw_ (older NanoAOD name) of the
    # 850098 events generated, not the genWeight of the 40 kept; nano_dy.root is read in two
    # chunks and counted once; nano_dy_empty.root has no events and no Runs tree
    runs = uproot.open(NANO / "nano_dy.root")["Runs"].arrays(library="np")
    assert dy.sumw == float(runs["genEventSumw_"].sum()) == pytest.approx(1.5166686735858717e10)
    assert dy.sumw2 == float(runs["genEventSumw2_"].sum())
    assert len({c for c in dy.chunks if c[0].endswith("nano_dy.root")}) == 2
    assert f.meta["sumw_source"] == {"dy": SUMW_RUNS}
    genw = uproot.open(NANO / "nano_dy.root")["Events"]["genWeight"].array(library="np")
    assert dy.sumw / float(genw.astype(np.float64).sum()) > 1e4
    assert dy.sumw_yaml is None and dy.xsec_pb == 6077.2
    # 2018 data against the 2017 golden JSON: nothing certified, nothing filled, lumi 0
    assert data.lumi_pb == 0.0 and f.lumi_pb == 0.0
    assert data.lumisections == [(315267, 205)]
    assert data.events_selected == 0 and data.histograms["nominal"].sum().value == 0
    dimuon = str(NANO / "nano_dimuon.root")
    assert sorted(data.chunks) == [(dimuon, 0, 20), (dimuon, 20, 40)]  # coffea's even split


def _csv_lumi(path: Path) -> dict[tuple[int, int], float]:
    out = {}
    with open(path) as f:
        header = next(line for line in f if "recorded(" in line)
        unit = header.split("recorded(")[1].split(")")[0]
        factor = {"/ub": 1e-6, "/nb": 1e-3, "/pb": 1.0}[unit]
        for row in csv.reader(line for line in f if not line.startswith("#")):
            out[(int(row[0].split(":")[0]), int(row[1].split(":")[0]))] = float(row[6]) * factor
    return out


def _certified(path: Path) -> set[tuple[int, int]]:
    golden = json.loads(path.read_text())
    return {
        (int(run), ls)
        for run, ranges in golden.items()
        for a, b in ranges
        for ls in range(a, b + 1)
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    generate = pytest.importorskip("analysis.generate")
    out = tmp_path_factory.mktemp("gen")
    return generate.generate_samples(out, events=3000, seed=5, files_per_process=2)


@pytest.mark.slow
@pytest.mark.dask
def test_generated_sample_on_dask_lumi_and_normalisation(generated, tmp_path):
    out = tmp_path / "hists.h5"
    argv = ["histmaker", "--datasets", str(generated), "--out", str(out), "--executor", "dask"]
    argv += ["--workers", "1", "--chunksize", "700", "--quiet", "--variations", "pdf", "massWeight"]
    assert main(argv) == 0
    f = read_histograms(out)
    spec = yaml.safe_load(generated.read_text())
    assert f.meta["args"]["corrections"] == str(generated.parent / "corrections.json")
    data_spec = spec["datasets"]["data"]
    read = set()
    for rel in data_spec["files"]:
        t = uproot.open(generated.parent / rel)["LuminosityBlocks"].arrays(
            ["run", "luminosityBlock"], library="np"
        )
        read |= set(zip(t["run"].tolist(), t["luminosityBlock"].tolist(), strict=True))
    lumi = _csv_lumi(generated.parent / data_spec["lumi_csv"])
    certified = _certified(generated.parent / data_spec["golden_json"])
    expected = sum(lumi.get(p, 0.0) for p in read & certified)
    assert expected > 0
    assert f["data"].lumi_pb == pytest.approx(expected, rel=1e-12)
    # the LuminosityBlocks trees list every lumisection, those a small sample leaves without
    # any event included: the lumi is the generator's
    assert f.lumi_pb == pytest.approx(spec["lumi_pb"], rel=1e-9)
    for name, ds in spec["datasets"].items():
        got = f[name]
        assert got.events_read == sum(
            uproot.open(generated.parent / p)["Events"].num_entries for p in ds["files"]
        )
        assert len(got.files_processed) == len(ds["files"]) and got.files_failed == []
        if not ds["is_data"]:
            assert got.sumw == pytest.approx(ds["sumw"], rel=1e-9)
            assert set(got.histograms) == {"nominal", "pdf", "massWeight"}
            assert got.histograms["pdf"].axes[-1].size == 103
    w = f["wmunu"]
    assert w.histograms["nominal"].sum().value > 0
    assert w.scale(f.lumi_pb) == pytest.approx(
        spec["datasets"]["wmunu"]["xsec_pb"] * f.lumi_pb / w.sumw
    )


@pytest.mark.slow
def test_max_files_subset_follows_normalisation_and_lumi(generated, tmp_path):
    out = tmp_path / "sub.h5"
    argv = ["histmaker", "--datasets", str(generated), "--out", str(out), "--executor"]
    argv += ["iterative", "--max-files", "1", "--variations", "--quiet"]
    assert main(argv) == 0
    f = read_histograms(out)
    spec = yaml.safe_load(generated.read_text())
    first = generated.parent / spec["datasets"]["wmunu"]["files"][0]
    genw = uproot.open(first)["Events"]["genWeight"].array(library="np").astype(np.float64)
    assert f["wmunu"].files_processed == [str(first)]
    assert f["wmunu"].sumw == pytest.approx(genw.sum(), rel=1e-12)
    assert f["wmunu"].sumw < 0.7 * spec["datasets"]["wmunu"]["sumw"]
    assert f["wmunu"].sumw_yaml is None and set(f["wmunu"].histograms) == {"nominal"}
    mc = [name for name, ds in spec["datasets"].items() if not ds["is_data"]]
    assert f.meta["sumw_source"] == dict.fromkeys(mc, SUMW_GENWEIGHT)  # no Runs tree
    data_file = generated.parent / spec["datasets"]["data"]["files"][0]
    t = uproot.open(data_file)["LuminosityBlocks"].arrays(["run", "luminosityBlock"], library="np")
    read = set(zip(t["run"].tolist(), t["luminosityBlock"].tolist(), strict=True))
    lumi = _csv_lumi(generated.parent / "lumi.csv")
    certified = _certified(generated.parent / "golden.json")
    assert f["data"].lumi_pb == pytest.approx(
        sum(lumi.get(p, 0) for p in read & certified), rel=1e-12
    )
    assert 0 < f["data"].lumi_pb < spec["lumi_pb"]


def test_configuration_errors_are_named(tmp_path, capsys):
    yaml_path = real_fileset(tmp_path)
    argv = ["histmaker", "--datasets", str(yaml_path), "--out", str(tmp_path / "h.h5")]
    assert main([*argv, "--corrections", str(tmp_path / "none.json")]) == ConfigError.exit_code
    assert "corrections" in capsys.readouterr().err
    assert main([*argv, "--variations", "pdf", "colour", "--executor", "iterative"]) == 2
    assert "colour" in capsys.readouterr().err
    assert main(["histmaker", "--datasets", str(tmp_path / "no.yaml")]) == ConfigError.exit_code
    assert "no.yaml" in capsys.readouterr().err
    assert not (tmp_path / "h.h5").exists()


def test_help_explains(capsys):
    with pytest.raises(SystemExit):
        main(["histmaker", "--help"])
    text = capsys.readouterr().out
    for word in (
        "--analysis",
        "--executor",
        "--scheduler",
        "--cluster",
        "--max-files",
        "corrections.json",
    ):
        assert word in text


def test_mc_sum_of_weights_from_runs_only_for_complete_files(tmp_path):
    dy = str(NANO / "nano_dy.root")
    runs = uproot.open(dy)["Runs"].arrays(library="np")
    from_runs = (float(runs["genEventSumw_"].sum()), float(runs["genEventSumw2_"].sum()))
    chunks = {(dy, 0, 20), (dy, 20, 40)}
    events = (12.0, 34.0)
    assert mc_sum_of_weights([dy], {dy: chunks}, chunks, events) == (*from_runs, SUMW_RUNS)
    # one chunk missing (a failed or unfinished chunk): the file is not whole
    half = {(dy, 0, 20)}
    assert mc_sum_of_weights([dy], {dy: chunks}, half, events) == (*events, SUMW_GENWEIGHT)
    # a file with events and no Runs tree (a generated sample): the genWeight sum for all
    gen = str(h3.write_sample(tmp_path / "gen.root", 30, seed=1))
    planned = {dy: chunks, gen: {(gen, 0, 30)}}
    done = chunks | {(gen, 0, 30)}
    assert mc_sum_of_weights([dy, gen], planned, done, events) == (*events, SUMW_GENWEIGHT)
    # the same file with genEventSumw under its current name
    with uproot.update(gen) as f:
        f["Runs"] = {
            "run": np.array([1, 2], np.uint32),
            "genEventSumw": np.array([5.0, 6.0]),
            "genEventSumw2": np.array([7.0, 8.0]),
        }
    got = mc_sum_of_weights([dy, gen], planned, done, events)
    assert got == (from_runs[0] + 11.0, from_runs[1] + 15.0, SUMW_RUNS)
    assert mc_sum_of_weights([], {}, set(), events) == (*events, SUMW_GENWEIGHT)
