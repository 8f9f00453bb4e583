"""datasets.yaml loading and opening files: every mistake names the key, the file or branch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from analysis.datasets import (
    KEEP_OPEN,
    Dataset,
    drop_kept_files,
    load_datasets,
    num_entries,
    open_events,
    read_gen_event_sumw,
)
from processors.errors import BadInputFile, ConfigError, MissingBranch

_spec = importlib.util.spec_from_file_location(
    "h3_samples", Path(__file__).with_name("h3_samples.py")
)
h3 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(h3)


@pytest.fixture(scope="module")
def fileset(tmp_path_factory) -> Path:
    return h3.make_fileset(tmp_path_factory.mktemp("fs"), mc_files=3, mc_events=50, data_events=60)


def _rewrite(path: Path, tmp: Path, edit) -> Path:
    doc = yaml.safe_load(path.read_text())
    edit(doc)
    out = path.parent / f"edited_{tmp.name}.yaml"
    out.write_text(yaml.safe_dump(doc))
    return out


def test_load_resolves_paths_relative_to_the_yaml(fileset):
    ds = load_datasets(fileset)
    assert set(ds) == {"wmunu", "data"}
    w, d = ds["wmunu"], ds["data"]
    assert isinstance(w, Dataset) and w.process == "Wmunu" and not w.is_data
    assert w.files == tuple(str(fileset.parent / f"wmunu/nano_{k}.root") for k in range(3))
    assert w.xsec_pb == pytest.approx(20508.9) and w.nevents == 150 and w.treename == "Events"
    assert d.is_data and d.xsec_pb is None and d.sumw is None
    assert d.lumi_csv == str(fileset.parent / "lumi.csv")
    assert d.golden_json == str(fileset.parent / "golden.json")
    assert ds.lumi_pb == 1.0 and ds.source == str(fileset.resolve())


def test_max_files_is_a_deterministic_prefix_and_drops_the_yaml_normalisation(fileset):
    full = load_datasets(fileset)
    sub = load_datasets(fileset, max_files=2)
    assert sub["wmunu"].files == full["wmunu"].files[:2]
    assert sub["wmunu"].sumw is None and sub["wmunu"].nevents is None
    assert full["wmunu"].sumw is not None
    assert sub["data"] == full["data"]  # one file: nothing dropped


def test_absolute_paths_and_urls_are_kept(fileset, tmp_path):
    absolute = str(fileset.parent / "wmunu/nano_0.root")
    url = "root://localhost//store/nano.root"

    def edit(doc):
        doc["datasets"]["wmunu"]["files"] = [absolute, url]

    ds = load_datasets(_rewrite(fileset, tmp_path, edit))
    assert ds["wmunu"].files == (absolute, url)


@pytest.mark.parametrize(
    ("edit", "key", "words"),
    [
        (
            lambda d: d["datasets"]["wmunu"].update(colour="red"),
            "datasets.wmunu.colour",
            "unknown key",
        ),
        (lambda d: d["datasets"]["wmunu"].pop("is_data"), "datasets.wmunu.is_data", "missing"),
        (
            lambda d: d["datasets"]["wmunu"].update(xsec_pb="lots"),
            "datasets.wmunu.xsec_pb",
            "must be",
        ),
        (
            lambda d: d["datasets"]["wmunu"].update(is_data=1),
            "datasets.wmunu.is_data",
            "must be bool",
        ),
        (
            lambda d: d["datasets"]["data"].update(files=["gone.root"]),
            "datasets.data.files[0]",
            "gone.root",
        ),
        (
            lambda d: d["datasets"]["data"].update(golden_json="nope.json"),
            "datasets.data.golden_json",
            "nope.json",
        ),
        (lambda d: d.update(lumi="x"), "lumi", "unknown key"),
        (lambda d: d.pop("datasets"), "datasets", "missing"),
    ],
)
def test_config_errors_name_the_key_and_the_file(fileset, tmp_path, edit, key, words):
    bad = _rewrite(fileset, tmp_path, edit)
    with pytest.raises(ConfigError) as info:
        load_datasets(bad)
    assert info.value.key == key
    assert info.value.source == str(bad)
    assert words in str(info.value) and str(bad) in str(info.value)


def test_missing_or_broken_yaml(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_datasets(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("datasets: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_datasets(broken)


def test_open_events_reads_the_entry_range_of_real_nanoaod():
    path = str(h3.NANO / "nano_dy.root")
    events = open_events(path, entry_start=10, entry_stop=30, metadata={"dataset": "dy"})
    assert len(events) == 20
    assert events.metadata["filename"] == path and events.metadata["dataset"] == "dy"
    assert (events.metadata["entrystart"], events.metadata["entrystop"]) == (10, 30)
    assert num_entries(path)[0] == 40
    assert num_entries(str(h3.NANO / "nano_dy_empty.root"))[0] == 0


def test_open_events_names_the_bad_file(tmp_path):
    good = (h3.NANO / "nano_dy.root").read_bytes()
    truncated = tmp_path / "truncated.root"
    truncated.write_bytes(good[: len(good) // 2])
    text = tmp_path / "text.root"
    text.write_text("not a ROOT file\n")
    for path, words in (
        (truncated, "not a readable ROOT file"),
        (text, "not a readable ROOT file"),
        (tmp_path / "absent.root", "no such file"),
    ):
        with pytest.raises(BadInputFile) as info:
            open_events(str(path))
        assert info.value.path == str(path) and words in str(info.value)
    with pytest.raises(BadInputFile, match="no 'Runs2' tree") as info:
        open_events(str(h3.NANO / "nano_dy.root"), treename="Runs2")
    assert info.value.path == str(h3.NANO / "nano_dy.root")


def test_chunks_of_one_file_reuse_its_tree_until_the_file_changes(tmp_path, monkeypatch):
    """The next chunk of a file does not read its TTree again; a file rewritten or cut
    between two chunks is read anew (and a cut one is named as bad)."""
    import uproot

    opened: list[str] = []
    real_open = uproot.open
    monkeypatch.setattr(uproot, "open", lambda p, **kw: opened.append(str(p)) or real_open(p, **kw))
    drop_kept_files()
    path = h3.write_sample(tmp_path / "f.root", 40)
    first = open_events(str(path), entry_start=0, entry_stop=20)
    second = open_events(str(path), entry_start=20, entry_stop=40)
    assert opened == [str(path)]
    both = list(first.Muon.pt.tolist()) + list(second.Muon.pt.tolist())
    assert both == open_events(str(path)).Muon.pt.tolist()

    h3.write_sample(path, 30)  # rewritten: another size and mtime
    assert len(open_events(str(path))) == 30 and len(opened) == 2
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(BadInputFile, match="not a readable ROOT file|truncated"):
        open_events(str(path), entry_stop=10)

    # events a notebook holds still read their columns after their file left the kept ones
    others = [h3.write_sample(tmp_path / f"g{i}.root", 5, seed=i) for i in range(KEEP_OPEN + 1)]
    held = open_events(str(others[0]))
    for other in others[1:]:
        open_events(str(other))
    kept = __import__("analysis.datasets").datasets._KEPT.trees
    assert len(kept) == KEEP_OPEN and str(others[0]) not in {k[0] for k in kept}
    drop_kept_files()
    assert len(kept) == 0
    assert held.Muon.pt.tolist() == open_events(str(others[0])).Muon.pt.tolist()


def test_open_events_checks_required_branches(tmp_path):
    path = h3.write_sample(tmp_path / "f.root", 20, drop=("Muon_tightId",))
    with pytest.raises(MissingBranch) as info:
        open_events(str(path), branches=["Muon_pt", "Muon_tightId"])
    assert info.value.branch == "Muon_tightId" and info.value.path == str(path)


def test_the_dataset_name_is_the_default_process(fileset, tmp_path):
    def edit(doc):
        doc["datasets"]["wmunu"].pop("process")

    ds = load_datasets(_rewrite(fileset, tmp_path, edit))
    assert ds["wmunu"].process == "wmunu" and ds["data"].process != "data"


def test_read_gen_event_sumw_from_the_runs_tree(tmp_path):
    import numpy as np
    import uproot

    runs = uproot.open(h3.NANO / "nano_dy.root")["Runs"].arrays(library="np")
    got = read_gen_event_sumw(str(h3.NANO / "nano_dy.root"))  # genEventSumw_: older NanoAOD
    assert got == (float(runs["genEventSumw_"].sum()), float(runs["genEventSumw2_"].sum()))
    assert read_gen_event_sumw(str(h3.NANO / "nano_dimuon.root")) is None  # data: no sums
    assert read_gen_event_sumw(str(h3.NANO / "nano_tt_v12.root")) is None  # no Runs tree
    path = h3.write_sample(tmp_path / "f.root", 10)
    with uproot.update(path) as f:
        f["Runs"] = {"genEventSumw": np.array([1.5, 2.0]), "genEventSumw2": np.array([1.0, 3.0])}
    assert read_gen_event_sumw(str(path)) == (3.5, 4.0)
    with pytest.raises(BadInputFile, match="no such file"):
        read_gen_event_sumw(str(tmp_path / "absent.root"))


def test_programming_errors_are_not_taken_for_bad_files(monkeypatch):
    """Only what a broken file raises becomes BadInputFile; a bug in the code (here a
    TypeError from uproot) stays itself, with its traceback."""
    import uproot

    def broken_open(*args, **kwargs):
        raise TypeError("a bug, not a bad file")

    drop_kept_files()  # a file an earlier test read would not be opened again
    monkeypatch.setattr(uproot, "open", broken_open)
    for call in (open_events, num_entries, read_gen_event_sumw):
        with pytest.raises(TypeError, match="a bug"):
            call(str(h3.NANO / "nano_dy.root"))
