"""Luminosity: brilcalc CSV, golden JSON, the sum over the lumisections actually read, and the
golden-JSON mask of data events in the processors."""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest

from analysis.datasets import open_events
from analysis.lumi import LumiWarning, golden_mask, in_golden, integrated_lumi, read_lumi_csv
from processors import WMassProcessor
from processors.errors import ConfigError
from tests.analysis import h3_samples as h3
from tests.support import raises_naming, written

CSV = h3.NANO / "lumi_small.csv"
GOLDEN = h3.NANO / "Cert_294927-306462_13TeV_EOY2017ReReco_Collisions17_JSON.txt"
pytestmark = pytest.mark.skipif(not CSV.is_file(), reason="no real lumi CSV here")


def _csv_reference(path) -> dict[tuple[int, int], float]:
    """Independent reader: the csv module, recorded column in /pb (as the header says)."""
    out = {}
    with open(path) as f:
        for row in csv.reader(line for line in f if not line.startswith("#")):
            out[(int(row[0].split(":")[0]), int(row[1].split(":")[0]))] = float(row[6])
    return out


def test_csv_matches_coffea_lumidata_and_the_csv_module():
    from coffea.lumi_tools import LumiData

    table = read_lumi_csv(CSV)
    ref = _csv_reference(CSV)
    assert len(table.run) == len(ref) == 998
    assert table.lookup() == pytest.approx(ref, rel=1e-15)
    pairs = np.array(sorted(ref), dtype=np.uint32)
    assert integrated_lumi(map(tuple, pairs), CSV) == pytest.approx(
        LumiData(str(CSV)).get_lumi(pairs), rel=1e-12
    )


def test_lumi_counts_only_the_read_and_certified_lumisections(tmp_path):
    ref = _csv_reference(CSV)
    read = sorted(ref)[::7]  # a sparse subset over several runs, as a partial read gives
    golden = json.loads(GOLDEN.read_text())
    certified = [(r, ls) for r, ls in read if any(a <= ls <= b for a, b in golden.get(str(r), []))]
    assert len(certified) == len(read)  # the CSV was made from this golden JSON
    assert integrated_lumi(read + read[:5], CSV, GOLDEN) == pytest.approx(
        sum(ref[p] for p in read), rel=1e-12
    )
    # a golden JSON that drops one run
    drop = read[0][0]
    smaller = tmp_path / "golden.json"
    smaller.write_text(json.dumps({k: v for k, v in golden.items() if int(k) != drop}))
    kept = in_golden(read, smaller)
    assert kept == {p for p in read if p[0] != drop} and 0 < len(kept) < len(read)
    assert integrated_lumi(read, CSV, smaller) == pytest.approx(
        sum(ref[p] for p in kept), rel=1e-12
    )


def test_units_are_read_from_the_header(tmp_path):
    path = h3.write_lumi_csv(tmp_path / "ub.csv", [(1, 1, 1000.0), (1, 2, 3000.0)])
    assert "recorded(/ub)" in path.read_text()
    assert integrated_lumi([(1, 1), (1, 2), (1, 3)], path) == pytest.approx(4000e-6, rel=1e-12)


def test_2018_data_against_2017_lumi_is_zero_with_a_warning():
    events = open_events(str(h3.NANO / "nano_dimuon.root"))
    run = np.asarray(events.run)
    lumi = np.asarray(events.luminosityBlock)
    read = set(zip(run.tolist(), lumi.tolist(), strict=True))
    assert read == {(315267, 205)}
    with pytest.warns(LumiWarning, match="none is in the golden JSON"):
        assert integrated_lumi(read, CSV, GOLDEN) == 0.0
    with pytest.warns(LumiWarning, match="none of the certified ones is in the lumi CSV"):
        assert integrated_lumi(read, CSV) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert integrated_lumi(set(), CSV, GOLDEN) == 0.0  # nothing read: nothing to say


def test_bad_lumi_inputs_are_config_errors(tmp_path):
    bad_csv = written(tmp_path / "bad.csv", "297050:5839,12:12,x\n")
    with raises_naming(ConfigError, "header", source=str(bad_csv)):
        read_lumi_csv(bad_csv)
    bad_json = written(tmp_path / "bad.json", "[1, 2]")
    with pytest.raises(ConfigError, match="not a golden JSON"):
        in_golden([(1, 1)], bad_json)
    with pytest.raises(ConfigError, match="no such file"):
        integrated_lumi([(1, 1)], tmp_path / "absent.csv")


def test_data_outside_the_golden_json_is_not_filled(tmp_path):
    # 700 data events: ls 1 = entries 0-499, ls 2 = entries 500-699; the golden JSON keeps ls 1
    path = str(h3.write_sample(tmp_path / "data.root", 700, seed=21, is_data=True))
    golden = tmp_path / "golden.json"
    golden.write_text(json.dumps({"1": [[1, 1]]}))
    proc = WMassProcessor()
    meta = {"dataset": "data", "is_data": True}
    masked = proc.process(open_events(path, metadata={**meta, "golden_json": str(golden)}))["data"]
    first = proc.process(open_events(path, entry_stop=500, metadata=meta))["data"]
    full = proc.process(open_events(path, metadata=meta))["data"]
    assert masked["events_read"] == 700 and masked["lumisections"] == {(1, 1), (1, 2)}
    assert masked["events_selected"] == first["events_selected"] < full["events_selected"]
    assert masked["histograms"]["nominal"] == first["histograms"]["nominal"]


def test_golden_mask_equals_coffeas_lumimask_on_the_real_golden_json_and_random_ranges(tmp_path):
    """The chain's one golden-JSON mask (numpy searchsorted) against coffea's LumiMask: the
    real file's ranges, and random disjoint ones (coffea's parity lookup needs them disjoint,
    as real golden JSONs are; ours also merges overlapping ranges, see its doctest)."""
    from coffea.lumi_tools import LumiMask

    rng = np.random.default_rng(7)
    doc = {}
    for run in rng.choice(np.arange(1, 60), 25, replace=False):
        edges = np.sort(rng.choice(np.arange(1, 200), 2 * rng.integers(1, 6), replace=False))
        doc[str(run)] = edges.reshape(-1, 2).tolist()
    random_json = tmp_path / "random.json"
    random_json.write_text(json.dumps(doc))
    for path in (GOLDEN, random_json):
        runs_in = [int(r) for r in json.loads(path.read_text())]
        run = rng.choice(np.asarray(runs_in + [0, 1, 10**6]), 50_000).astype(np.uint32)
        ls = rng.integers(0, 2_000 if path == GOLDEN else 220, 50_000).astype(np.uint32)
        ours = golden_mask(path)(run, ls)
        theirs = np.asarray(LumiMask(str(path))(run, ls), dtype=bool)
        assert ours.dtype == bool
        assert 0.05 < ours.mean() < 0.95  # both answers occur
        np.testing.assert_array_equal(ours, theirs)
