"""The ``LuminosityBlocks`` tree: the generator lists every lumisection of each file (with or
without events), and the histmaker's data luminosity is computed over the certified lumisections
of those trees for the files it processed (falling back to the events for files without one)."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import uproot
import yaml

from analysis import generate
from analysis.generate.rootfile import RootWriter
from analysis.histmaker import histmaker
from analysis.lumi import LUMI_TREE, processed_lumisections, read_lumi_blocks
from processors.errors import BadInputFile, MissingBranch


def _tiny(out: Path, *, files: int = 2, seed: int = 7) -> Path:
    """A few hundred data events over the generator's 400 lumisections: most have none."""
    return generate.generate_samples(
        out, events=400, seed=seed, files_per_process=files, corrections=False
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return _tiny(tmp_path_factory.mktemp("tiny"))


def _pairs(path: Path, tree: str) -> list[tuple[int, int]]:
    t = uproot.open(path)[tree].arrays(["run", "luminosityBlock"], library="np")
    return list(zip(t["run"].tolist(), t["luminosityBlock"].tolist(), strict=True))


def _csv(path: Path) -> dict[tuple[int, int], float]:
    """Independent reader of the generator's lumi.csv (recorded, /pb)."""
    with open(path) as f:
        rows = csv.reader(line for line in f if not line.startswith("#"))
        return {(int(r[0].split(":")[0]), int(r[1].split(":")[0])): float(r[6]) for r in rows}


def _golden(path: Path) -> set[tuple[int, int]]:
    doc = json.loads(path.read_text())
    return {(int(r), ls) for r, ranges in doc.items() for a, b in ranges for ls in range(a, b + 1)}


def _lumi(pairs, base: Path) -> float:
    table, golden = _csv(base / "lumi.csv"), _golden(base / "golden.json")
    return sum(table[p] for p in set(pairs) & golden)


def _fileset(base: Path, out: Path, data_files: list[str]) -> Path:
    """A datasets.yaml with the data only (the MC adds nothing to the luminosity)."""
    doc = yaml.safe_load((base / "datasets.yaml").read_text())
    data = dict(doc["datasets"]["data"])
    data["files"] = [str(base / f) if not Path(f).is_absolute() else f for f in data_files]
    for key in ("lumi_csv", "golden_json"):
        data[key] = str(base / data[key])
    out.write_text(yaml.safe_dump({"lumi_pb": doc["lumi_pb"], "datasets": {"data": data}}))
    return out


def _histmaker(yaml_path: Path, out: Path, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="coffea")
        _, content, _ = histmaker(
            "wmass",
            yaml_path,
            out,
            executor="iterative",
            variations=False,
            progress=False,
            **kwargs,
        )
    return content


# -- the generator ----------------------------------------------------------------------------


def test_generated_files_list_the_plans_lumisections_once(tiny):
    base = tiny.parent
    spec = yaml.safe_load(tiny.read_text())
    truth = json.loads((base / "truth.json").read_text())
    plan = list(_csv(base / "lumi.csv"))
    per_file = []
    for rel in spec["datasets"]["data"]["files"]:
        tree = uproot.open(base / rel)[LUMI_TREE]
        assert tree["run"].typename == "uint32_t"
        assert tree["luminosityBlock"].typename == "uint32_t"
        blocks = _pairs(base / rel, LUMI_TREE)
        assert len(blocks) == len(set(blocks)) > 0
        # the events of a file lie in the lumisections that file owns
        assert set(_pairs(base / rel, "Events")) <= set(blocks)
        per_file.append(blocks)
    # every lumisection of the plan in exactly one file, in (run, ls) order
    assert sorted(p for blocks in per_file for p in blocks) == sorted(plan)
    assert [p for blocks in per_file for p in blocks] == plan
    assert _lumi(plan, base) == pytest.approx(truth["lumi_pb"], rel=1e-6)
    assert sum(_csv(base / "lumi.csv").values()) == pytest.approx(truth["lumi_all_ls_pb"], rel=1e-6)
    # many certified lumisections have no event: the events alone would miss their lumi
    events = [p for rel in spec["datasets"]["data"]["files"] for p in _pairs(base / rel, "Events")]
    assert _lumi(events, base) < 0.9 * truth["lumi_pb"]
    # MC files list the lumisections of their events too
    for rel in spec["datasets"]["wmunu"]["files"]:
        assert set(_pairs(base / rel, LUMI_TREE)) == set(_pairs(base / rel, "Events"))


def test_one_data_file_holds_the_whole_plan(tmp_path):
    _tiny(tmp_path, files=1, seed=3)
    blocks = _pairs(tmp_path / "data" / "nano_0.root", LUMI_TREE)
    assert blocks == list(_csv(tmp_path / "lumi.csv"))


# -- the histmaker ----------------------------------------------------------------------------


def test_histmaker_lumi_is_the_generators_golden_lumi(tiny, tmp_path):
    base = tiny.parent
    truth = json.loads((base / "truth.json").read_text())
    files = yaml.safe_load(tiny.read_text())["datasets"]["data"]["files"]
    content = _histmaker(_fileset(base, tmp_path / "d.yaml", files), tmp_path / "h.h5")
    data = content["data"]
    assert data.lumi_pb == pytest.approx(truth["lumi_pb"], rel=1e-6)
    assert sorted(data.lumisections) == sorted(_csv(base / "lumi.csv"))
    # the event-derived lumi (the old computation) is well below: this test tells them apart
    events = [p for rel in files for p in _pairs(base / rel, "Events")]
    assert _lumi(events, base) < 0.9 * data.lumi_pb


def test_max_files_and_skipped_files_add_no_lumisections(tiny, tmp_path):
    base = tiny.parent
    files = yaml.safe_load(tiny.read_text())["datasets"]["data"]["files"]
    first = _lumi(_pairs(base / files[0], LUMI_TREE), base)
    assert 0 < first < _lumi(_pairs(base / files[1], LUMI_TREE), base) + first
    sub = _histmaker(_fileset(base, tmp_path / "d.yaml", files), tmp_path / "sub.h5", max_files=1)
    assert sub["data"].lumi_pb == pytest.approx(first, rel=1e-9)
    # the second file broken (truncated): given up, its lumisections not counted
    broken = tmp_path / "broken.root"
    raw = (base / files[1]).read_bytes()
    broken.write_bytes(raw[: len(raw) // 2])
    yaml_path = _fileset(base, tmp_path / "b.yaml", [files[0], str(broken)])
    skipped = _histmaker(yaml_path, tmp_path / "skip.h5", skip_bad_files=True)
    assert [f["file"] for f in skipped["data"].files_failed] == [str(broken)]
    assert skipped["data"].lumi_pb == pytest.approx(first, rel=1e-9)


def test_files_without_the_tree_fall_back_to_the_events(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(RootWriter, "write_lumi_blocks", lambda self, run, ls: None)
    yaml_path = _tiny(tmp_path / "old", files=1, seed=3)
    base = yaml_path.parent
    data_file = base / "data" / "nano_0.root"
    assert LUMI_TREE not in uproot.open(data_file) and read_lumi_blocks(data_file) is None
    with caplog.at_level(logging.INFO, logger="analysis.lumi"):
        content = _histmaker(
            _fileset(base, tmp_path / "d.yaml", ["data/nano_0.root"]), tmp_path / "h.h5"
        )
    events = _pairs(data_file, "Events")
    assert sorted(content["data"].lumisections) == sorted(set(events))
    assert content["data"].lumi_pb == pytest.approx(_lumi(events, base), rel=1e-9)
    assert f"no {LUMI_TREE} tree" in caplog.text and str(data_file) in caplog.text


def test_the_source_is_reported(tiny):
    base = tiny.parent
    files = [str(base / f) for f in yaml.safe_load(tiny.read_text())["datasets"]["data"]["files"]]
    found, source = processed_lumisections(files, [], dataset="data")
    assert source == LUMI_TREE and found == set(_csv(base / "lumi.csv"))


# -- malformed trees --------------------------------------------------------------------------


def _write(path: Path, trees: dict) -> Path:
    with uproot.recreate(path) as f:
        for name, content in trees.items():
            f[name] = content
    return path


def test_malformed_lumi_trees_name_the_file(tmp_path):
    ints = np.array([1, 2], dtype=np.uint32)
    ok = _write(tmp_path / "ok.root", {LUMI_TREE: {"run": ints, "luminosityBlock": ints}})
    assert read_lumi_blocks(ok) == {(1, 1), (2, 2)}
    floats = _write(
        tmp_path / "floats.root",
        {LUMI_TREE: {"run": ints, "luminosityBlock": ints.astype(np.float32)}},
    )
    with pytest.raises(BadInputFile, match="luminosityBlock must hold") as err:
        read_lumi_blocks(floats)
    assert err.value.path == str(floats)
    missing = _write(tmp_path / "missing.root", {LUMI_TREE: {"run": ints}})
    with pytest.raises(MissingBranch, match="LuminosityBlocks/luminosityBlock") as err:
        read_lumi_blocks(missing)
    assert err.value.path == str(missing)
    hist = _write(tmp_path / "hist.root", {LUMI_TREE: np.histogram([1.0, 2.0])})
    with pytest.raises(BadInputFile, match="not a TTree") as err:
        read_lumi_blocks(hist)
    assert err.value.path == str(hist)
    garbage = tmp_path / "garbage.root"
    garbage.write_bytes(b"not root")
    with pytest.raises(BadInputFile, match="garbage.root"):
        read_lumi_blocks(garbage)


def test_histmaker_stops_on_a_malformed_tree_naming_the_file(tiny, tmp_path):
    base = tiny.parent
    files = yaml.safe_load(tiny.read_text())["datasets"]["data"]["files"]
    bad = tmp_path / "bad.root"
    shutil.copy(base / files[0], bad)
    with uproot.update(bad) as f:  # a second LuminosityBlocks cycle without luminosityBlock
        del f[LUMI_TREE]
        f[LUMI_TREE] = {"run": np.array([362616], dtype=np.uint32)}
    with pytest.raises(MissingBranch, match="bad.root"):
        _histmaker(_fileset(base, tmp_path / "d.yaml", [str(bad)]), tmp_path / "h.h5")
