"""The tag-and-probe selection on real CMS NanoAOD (tests/data/nanoaod: 40 Drell-Yan MC and 40
DoubleMuon data events): it reads the real branch layout, gives sane numbers, and the
calibration stops with a clear "too few events" error naming the files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analysis.calibrate import TooFewEvents, calibrate, read_dimuons, select_probes
from analysis.calibrate.scale import z_pairs
from analysis.calibrate.tnp import dimuon_mass
from analysis.datasets import load_datasets

NANO = Path(__file__).resolve().parents[1] / "data" / "nanoaod"


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("real") / "datasets.yaml"
    out.write_text(
        "datasets:\n"
        f"  data: {{process: Data, is_data: true, files: [{NANO / 'nano_dimuon.root'}]}}\n"
        f"  zmumu: {{process: Zmumu, is_data: false, files: [{NANO / 'nano_dy.root'}]}}\n"
    )
    return out


@pytest.mark.parametrize("name", ["data", "zmumu"])
def test_pairs_and_probes_are_sane(datasets, name):
    pairs = read_dimuons(load_datasets(datasets)[name])
    assert 5 <= len(pairs) <= 40  # events with two muons among the 40
    assert np.all(pairs.pt > 3) and np.all(np.abs(pairs.eta) < 2.5)
    assert set(np.unique(pairs.charge)) <= {-1, 1}
    assert np.all(pairs.tight <= pairs.tight_id)  # tight = tight ID + impact parameter + ...
    if name == "zmumu":
        assert np.all(pairs.weight != 0)
    z = pairs.subset(z_pairs(pairs))
    mass = dimuon_mass(z, z.pt)
    if name == "zmumu":  # Drell-Yan: the selected pairs sit at the Z peak
        assert len(mass) >= 3 and np.all((mass > 80) & (mass < 100))
    for kind in ("idip", "trigger"):
        probes = select_probes(pairs, kind)
        assert len(probes.mass) <= len(pairs)
        assert np.all(probes.mass > 0) and np.all(probes.pt > 3)


def test_calibration_says_too_few_events_and_names_the_file(datasets, tmp_path):
    import json

    from analysis.generate.truth import DetectorTruth
    from corrections import build_corrections

    truth = tmp_path / "truth.json"  # pileup and prefiring to copy through
    truth.write_text(json.dumps(DetectorTruth.from_seed(1).to_json()))
    build_corrections(truth, tmp_path / "corrections.json")
    with pytest.raises(TooFewEvents, match="too few events") as err:
        calibrate(datasets, corrections=tmp_path / "corrections.json")
    assert "nano_dimuon.root" in str(err.value) or "nano_dy.root" in str(err.value)
    assert err.value.pairs < err.value.needed
