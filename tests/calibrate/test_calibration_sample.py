"""``wmass generate --calibration-sample``: a Z -> mu mu sample (MC and data) with the detector
truth of the full sample of the same seed, independent events, and enough data for the
calibration; the default output of the generator is not touched by the option."""

from __future__ import annotations

import json

import numpy as np
import pytest
import uproot
import yaml

from analysis import cli
from analysis.generate import CALIBRATION_PROCESSES, generate_samples
from processors.errors import ConfigError


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    base = tmp_path_factory.mktemp("calib_sample")
    calib = base / "calib"
    argv = ["generate", "--out", str(calib), "--calibration-sample", "--events", "40000"]
    assert cli.main([*argv, "--seed", "9", "--no-progress"]) == 0
    full = generate_samples(base / "full", events=20_000, seed=9).parent
    return calib, full


def test_only_z_in_mc_and_data_with_as_many_data_events(samples):
    calib, _ = samples
    spec = yaml.safe_load((calib / "datasets.yaml").read_text())
    assert CALIBRATION_PROCESSES == ("zmumu",)
    assert list(spec["datasets"]) == ["zmumu", "data"]
    assert spec["datasets"]["zmumu"]["nevents"] == 40_000
    truth = json.loads((calib / "truth.json").read_text())
    assert truth["processes"] == ["zmumu"] and list(truth["events_mc"]) == ["zmumu"]
    # lumi_pb (golden) is chosen so that the data have as many Z events as the MC
    assert abs(truth["events_data_generated"]["zmumu"] - 40_000) < 5 * np.sqrt(40_000) + 1000
    with uproot.open(calib / "data" / "nano_0.root") as f:
        n_mu = f["Events"]["nMuon"].array(library="np")
    assert (
        len(n_mu) > 30_000 and np.mean(n_mu >= 2) > 0.5
    )  # Z -> mu mu (~58% with both in acceptance)


def test_same_detector_truth_independent_events(samples):
    calib, full = samples
    t_cal = json.loads((calib / "truth.json").read_text())
    t_full = json.loads((full / "truth.json").read_text())
    for key in ("efficiency", "momentum_scale", "pileup", "prefiring"):
        assert t_cal[key] == t_full[key], key
    with (
        uproot.open(calib / "zmumu" / "nano_0.root") as a,
        uproot.open(full / "zmumu" / "nano_0.root") as b,
    ):
        x = a["Events"]["Muon_pt"].array(library="np", entry_stop=50)
        y = b["Events"]["Muon_pt"].array(library="np", entry_stop=50)
    assert not any(len(u) == len(v) and np.array_equal(u, v) for u, v in zip(x, y, strict=True))


def test_unknown_process_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="processes"):
        generate_samples(tmp_path, events=1000, processes=["zmumu", "nope"])
