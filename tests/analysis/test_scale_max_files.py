"""``--max-files N`` takes the first N files of each dataset, and the normalisation follows
the subset: the sum of genWeight of those files only, the luminosity of the data lumisections
they hold (their LuminosityBlocks trees; golden JSON x lumi CSV, computed here independently)."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import uproot
import yaml

from analysis.io import read_histograms
from tests.analysis import scale_samples as h5
from tests.support import histmaker_quiet

HERE = Path(__file__).resolve().parent


def certified_lumi(files: list[str], lumi_csv: str, golden_json: str) -> float:
    """pb^-1 recorded in the lumisections of ``files`` that the golden JSON certifies."""
    read = set()
    for f in files:
        ev = uproot.open(f)["LuminosityBlocks"].arrays(["run", "luminosityBlock"], library="np")
        read |= set(zip(ev["run"].tolist(), ev["luminosityBlock"].tolist(), strict=True))
    golden = json.loads(Path(golden_json).read_text())
    certified = {
        (int(run), ls)
        for run, ranges in golden.items()
        for lo, hi in ranges
        for ls in range(lo, hi + 1)
    }
    lines = Path(lumi_csv).read_text().splitlines()
    header = next(line for line in lines if line.startswith("#run"))
    unit = 1e-6 if "recorded(/ub)" in header else 1.0
    columns = header.lstrip("#").split(",")
    total = 0.0
    for row in csv.reader(line for line in lines if not line.startswith("#")):
        rec = dict(zip(columns, row, strict=True))
        key = (int(rec["run:fill"].split(":")[0]), int(rec["ls"].split(":")[0]))
        if key in read and key in certified:
            total += float(next(v for k, v in rec.items() if k.startswith("recorded"))) * unit
    return total


def test_max_files_is_a_prefix_and_the_normalisation_follows_it(generated_sample, tmp_path):
    yaml_path = h5.fileset(generated_sample, tmp_path / "datasets.yaml")
    doc = yaml.safe_load(yaml_path.read_text())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="coffea")
        _, content, _ = histmaker_quiet(
            yaml_path, tmp_path / "hists.h5", executor="iterative", variations=False, max_files=1
        )
    w, d = content["wmunu"], content["data"]
    first_w, first_d = doc["datasets"]["wmunu"]["files"][:1], doc["datasets"]["data"]["files"][:1]
    assert w.files_processed == first_w and d.files_processed == first_d
    assert w.events_read == h5.n_events(first_w) < h5.n_events(doc["datasets"]["wmunu"]["files"])
    assert w.sumw == pytest.approx(h5.sum_genweight(first_w), rel=1e-12)
    assert w.sumw_yaml is None  # the YAML's sum over all files is not used
    csv_path, golden = doc["datasets"]["data"]["lumi_csv"], doc["datasets"]["data"]["golden_json"]
    expected = certified_lumi(first_d, csv_path, golden)
    full = certified_lumi(doc["datasets"]["data"]["files"], csv_path, golden)
    assert 0 < expected < full
    assert d.lumi_pb == pytest.approx(expected, rel=1e-9)
    back = read_histograms(tmp_path / "hists.h5", histograms=False)
    assert back.lumi_pb == pytest.approx(expected, rel=1e-9)
    # the MC normalisation factor uses the subset's sum of weights
    scale = back["wmunu"].scale(back.lumi_pb)
    assert scale == pytest.approx(w.xsec_pb * expected / h5.sum_genweight(first_w), rel=1e-9)
    assert np.isfinite(scale)
