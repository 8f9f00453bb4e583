"""``wmass inspect``: the JSON of a histograms file follows the contract schema and the file's
content; anything else is refused by name."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import h5py
import jsonschema
import pytest

from analysis.cli import main
from analysis.inspect import describe_file
from analysis.io import read_histograms
from analysis.schemas import schema
from processors.errors import BadInputFile

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("h3_samples", HERE / "h3_samples.py")
h3 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(h3)


@pytest.fixture(scope="module")
def hists(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("inspect")
    yaml_path = h3.make_fileset(tmp, mc_files=2, mc_events=300, data_events=400)
    out = tmp / "hists.h5"
    argv = ["histmaker", "--datasets", str(yaml_path), "--out", str(out), "--executor"]
    argv += ["iterative", "--variations", "pdf", "--quiet"]
    assert main(argv) == 0
    return out


def test_json_follows_the_contract_and_the_file(hists, capsys):
    assert main(["inspect", str(hists), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, schema("histograms"))  # the packaged contract
    f = read_histograms(hists)
    assert doc["kind"] == "histograms" and doc["meta"]["command"] == f.meta["command"]
    for name, ds in f.datasets.items():
        d = doc["datasets"][name]
        assert d["events_read"] == ds.events_read and d["sumw"] == ds.sumw
        assert d["files_processed"] == ds.files_processed and d["lumi_pb"] == ds.lumi_pb
        for h, hist_ in ds.histograms.items():
            assert d["histograms"][h]["axes"] == list(hist_.axes.name)
            assert d["histograms"][h]["shape"] == list(hist_.view(flow=True).shape)
            total = hist_.sum(flow=True)
            total = getattr(total, "value", total)
            assert d["histograms"][h]["sum"] == pytest.approx(total, rel=1e-12)
    assert doc["datasets"]["data"]["lumi_pb"] == pytest.approx(1000e-6)  # ls 1 of the CSV


def test_human_output_names_datasets_and_provenance(hists, capsys):
    assert main(["inspect", str(hists)]) == 0
    text = capsys.readouterr().out
    for word in ("wmunu", "data", "provenance", "git_hash", "pdf"):
        assert word in text


def test_other_files_are_refused_by_name(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not hdf5")
    assert main(["inspect", str(text)]) == BadInputFile.exit_code
    assert str(text) in capsys.readouterr().err
    odd = tmp_path / "odd.h5"
    with h5py.File(odd, "w") as f:
        f.attrs["kind"] = "spreadsheet"
    with pytest.raises(BadInputFile, match="unknown kind 'spreadsheet'") as info:
        describe_file(odd)
    assert info.value.path == str(odd)


def test_a_directory_is_named_as_one_with_the_outputs_it_holds(hists, capsys):
    site = hists.parent
    assert main(["inspect", str(site)]) == BadInputFile.exit_code
    err = capsys.readouterr().err
    assert "a directory, not a file" in err and hists.name in err


def test_fit_files_go_to_the_fit_package(tmp_path, capsys):
    """A fitinput.h5 (made by the fit package's own writer) is described by ``fit.describe``."""
    spec = importlib.util.spec_from_file_location(
        "h3_fit_models", HERE.parent / "fit" / "fit_models.py"
    )
    fit_models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fit_models)
    path = fit_models.w_like_model(n_eta=2).write(tmp_path / "fitinput.h5")
    from fit import describe

    assert describe_file(path) == describe(str(path))
    assert main(["inspect", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "fitinput" and "processes" in doc
    assert main(["inspect", str(path)]) == 0
    assert "fitinput" in capsys.readouterr().out


def test_a_fit_result_reads_rounded_to_its_uncertainty(tmp_path, capsys):
    from analysis.inspect import _human

    pois = {"mW": {"value": 80529.4192449508, "error": 138.07128865056643, "unit": "MeV"}}
    assert _human("pois", pois) == "mW = 80530 ± 140 MeV"
    gof = {"chi2": 2389.4486426766366, "ndf": 2878, "p_value": 0.9999999999959254}
    assert _human("gof", gof) == "chi2/ndf = 2389.4/2878, p = 1"
    impacts = {"mW": {"PDF": 13.4730728545726, "data_stat": 119.34200685165479}}
    assert _human("global_impacts", impacts) == "mW: data_stat 119.3, PDF 13.5"
    assert _human("nll", 1194.7243213383183) == "1194.72"
