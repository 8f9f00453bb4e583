"""NanoAOD v9 to v15: every branch the processors read is found in the real files of each version
here (tests/data/nanoaod), a v15 layout (``PFMET_*`` for ``MET_*``, made by renaming the
branches of a generated file: no real v15 file is here) fills the same histograms as the v9 one,
and a branch missing under all its names names the file, the branch, its aliases and versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors import MissingBranch, WLikeProcessor, WMassProcessor, ZDileptonProcessor
from processors.columns import ALIASES, NANOAOD_VERSIONS, Columns, alternatives
from processors.selection import GEN_BRANCHES, MUON_BRANCHES
from processors.variations import THEORY

NANO = Path(__file__).resolve().parents[1] / "data" / "nanoaod"
V15 = {"MET_pt": "PFMET_pt", "MET_phi": "PFMET_phi"}
PROCESSORS = (WMassProcessor, ZDileptonProcessor, WLikeProcessor)
EVENT = ("run", "luminosityBlock", "event", "MET_pt", "MET_phi")
MC = ("genWeight", "Pileup_nTrueInt", *GEN_BRANCHES)


@pytest.mark.parametrize(
    ("name", "is_data", "trigger"),
    [
        ("nano_dy.root", False, True),
        ("nano_dimuon.root", True, True),
        ("nano_tt_v12.root", False, False),  # NanoAOD v12, 2017-like menu: no HLT_IsoMu24
    ],
)
def test_real_files_carry_every_branch_the_processors_read(name, is_data, trigger, load_events):
    cols = Columns(load_events(NANO / name))
    wanted = (*EVENT, *MUON_BRANCHES, *(() if is_data else MC))
    # under their v9 names: no alias is needed before v15
    assert {b: cols.resolve(b) for b in wanted} == {b: b for b in wanted}
    assert cols.has("HLT_IsoMu24") is trigger
    if not is_data:
        assert cols.has("LHEPdfWeight") and cols.has("LHEScaleWeight")
        assert not cols.has(THEORY[2].branch)  # MEParamWeight: private production only


def _v9_and_v15(tmp_path: Path, make_sample, **kw) -> tuple[Path, Path]:
    v9 = make_sample(tmp_path / "v9.root", 600, seed=11, **kw)
    v15 = make_sample(tmp_path / "v15.root", 600, seed=11, rename=V15, **kw)
    return v9, v15


@pytest.mark.parametrize("cls", PROCESSORS)
@pytest.mark.parametrize("is_data", [False, True])
def test_v15_met_names_fill_the_same_histograms(
    cls, is_data, tmp_path, make_sample, load_events, corrections_json
):
    v9, v15 = _v9_and_v15(tmp_path, make_sample, is_data=is_data)
    cols = Columns(load_events(v15))
    assert cols.resolve("MET_pt") == "PFMET_pt"  # MET_pt is tried first: it is not there
    proc = cls(corrections=corrections_json, variations=["muonScale", "pdf"])
    a = proc.process(load_events(v9, is_data=is_data))["test"]
    b = proc.process(load_events(v15, is_data=is_data))["test"]
    assert a["events_selected"] == b["events_selected"] > 0
    assert a["sumw"] == b["sumw"] and set(a["histograms"]) == set(b["histograms"])
    for name, h in a["histograms"].items():
        assert h == b["histograms"][name], name
    if cls.uses_met:  # the MET is read at all, so the alias was exercised
        assert cols.flat("MET_pt").tolist() == Columns(load_events(v9)).flat("MET_pt").tolist()


@pytest.mark.parametrize("branch", ["MET_pt", "MET_phi"])
def test_met_missing_under_every_name_names_file_branch_and_versions(
    branch, tmp_path, make_sample, load_events
):
    path = make_sample(tmp_path / "v15.root", 50, rename=V15, drop=(branch,))
    assert Columns(load_events(path)).resolve(next(b for b in V15 if b != branch)) is not None
    with pytest.raises(MissingBranch) as info:
        WMassProcessor().process(load_events(path))
    err = info.value
    assert err.branch == branch and err.path == str(path)
    assert err.alternatives == (branch, V15[branch]) == alternatives(branch)
    text = str(err)
    assert str(path) in text and repr(V15[branch]) in text and "(v15)" in text
    assert NANOAOD_VERSIONS in text


def test_a_branch_without_alias_names_the_versions(tmp_path, make_sample, load_events):
    path = make_sample(tmp_path / "f.root", 50, drop=("Muon_dxy",))
    with pytest.raises(MissingBranch, match="Muon_dxy") as info:
        WMassProcessor().process(load_events(path))
    assert info.value.alternatives == ("Muon_dxy",) and "Muon_dxy" not in ALIASES
    assert str(path) in str(info.value) and f"NanoAOD {NANOAOD_VERSIONS}" in str(info.value)
