"""Real NanoAOD files (tests/data/nanoaod) through each processor with coffea's Runner,
and missing branches."""

from __future__ import annotations

from pathlib import Path

import pytest
from coffea import processor
from coffea.nanoevents import NanoAODSchema

from processors import MissingBranch, WLikeProcessor, WMassProcessor, ZDileptonProcessor

NANO = Path(__file__).resolve().parents[1] / "data" / "nanoaod"
PROCESSORS = (WMassProcessor, ZDileptonProcessor, WLikeProcessor)


def _run(proc, fileset, chunksize=25):
    runner = processor.Runner(
        executor=processor.IterativeExecutor(), schema=NanoAODSchema, chunksize=chunksize
    )
    return runner(fileset, proc, treename="Events")


@pytest.mark.parametrize("cls", PROCESSORS)
def test_real_nanoaod_runs(cls, corrections_json):
    fileset = {
        "dy": [str(NANO / "nano_dy.root")],
        "data": {"files": [str(NANO / "nano_dimuon.root")], "metadata": {"is_data": True}},
        "empty": [str(NANO / "nano_dy_empty.root")],
    }
    out = _run(cls(corrections=corrections_json), fileset)
    assert set(out) == {"dy", "data", "empty"}
    dy, data, empty = out["dy"], out["data"], out["empty"]
    assert dy["events_read"] == 40 and data["events_read"] == 40 and empty["events_read"] == 0
    chunks = sorted(dy["chunks"])
    assert {c[0] for c in chunks} == {str(NANO / "nano_dy.root")} and len(chunks) == 2
    assert chunks[0][1] == 0 and chunks[0][2] == chunks[1][1] and chunks[1][2] == 40
    assert data["sumw"] == 40.0 and data["lumisections"] == {(315267, 205)}
    assert dy["lumisections"] == set() and dy["sumw"] != 0
    assert set(data["histograms"]) == {"nominal"}
    # 33 PDF weights and no MEParamWeight in this NanoAOD: those variations are skipped
    assert {"nominal", "qcdScale", "pileup", "effStat"} <= set(dy["histograms"])
    assert "pdf" not in dy["histograms"] and "massWeight" not in dy["histograms"]
    for h in dy["histograms"].values():
        assert h.axes.name[: len(cls().axes())] == tuple(a.name for a in cls().axes())


def test_no_corrections_on_data_and_mc():
    fileset = {"dy": [str(NANO / "nano_dy.root")], "data": [str(NANO / "nano_dimuon.root")]}
    out = _run(ZDileptonProcessor(), fileset, chunksize=100)
    assert out["data"]["events_selected"] > 0
    assert out["dy"]["histograms"]["nominal"].sum().value != 0 or out["dy"]["events_selected"] == 0


def test_other_nanoaod_version_missing_trigger():
    path = str(NANO / "nano_tt_v12.root")
    with pytest.raises(Exception) as info:  # coffea wraps the processor's exception
        _run(WMassProcessor(), {"tt": [path]}, chunksize=200)
    cause = info.value
    while not isinstance(cause, MissingBranch) and cause.__cause__ is not None:
        cause = cause.__cause__
    assert isinstance(cause, MissingBranch) and cause.branch == "HLT_IsoMu24"
    assert cause.path == path
    out = _run(WMassProcessor(trigger=None), {"tt": [path]}, chunksize=200)
    assert out["tt"]["events_read"] == 200 and "pdf" in out["tt"]["histograms"]


@pytest.mark.parametrize("branch", ["Muon_tightId", "Muon_pt", "MET_phi", "genWeight"])
def test_missing_required_branch(branch, tmp_path, load_events, make_sample):
    path = make_sample(tmp_path / "f.root", 50, drop=(branch,))
    events = load_events(path, "mc", is_data=False)
    with pytest.raises(MissingBranch, match=branch) as info:
        WMassProcessor().process(events)
    assert info.value.branch == branch and info.value.path == str(path)


def test_gen_match_keeps_matched(mc_file, load_events):
    plain = WMassProcessor(variations=False).process(load_events(mc_file))["test"]
    matched = WMassProcessor(variations=False, gen_match=True).process(load_events(mc_file))["test"]
    assert 0 < matched["events_selected"] < plain["events_selected"]


def test_processor_survives_cloudpickle(corrections_json, mc_file, load_events):
    """coffea ships the processor to workers with cloudpickle: corrections travel as JSON text."""
    import cloudpickle

    proc = WMassProcessor(corrections=corrections_json, variations=["pileup"])
    clone = cloudpickle.loads(cloudpickle.dumps(proc))
    a = proc.process(load_events(mc_file))["test"]["histograms"]["pileup"]
    b = clone.process(load_events(mc_file))["test"]["histograms"]["pileup"]
    assert a == b
