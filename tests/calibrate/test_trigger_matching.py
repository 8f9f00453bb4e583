"""Trigger matching of the tag-and-probe muons: TrigObj matching on hand-made arrays with a
known answer and on the real NanoAOD files, and the generator's emulation."""

from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from analysis.calibrate import read_dimuons, select_probes
from analysis.calibrate.trigger import MAX_DR, emulated_match, match_trigger_objects
from analysis.datasets import load_datasets

NANO = Path(__file__).resolve().parents[1] / "data" / "nanoaod"


def test_match_on_a_hand_made_event_set():
    # event 0: muon 0 has an isolated single-muon object at dR 0.05, muon 1 only an electron
    #          (id 11) and a muon object without the Iso bit on top of it;
    # event 1: no trigger objects at all;
    # event 2: the object is across the phi = +-pi boundary (dphi 0.06), and one at dR 0.3;
    # event 3: an object with bits 2 | 8 | 16 (extra bits are fine) at dR 0.099, and one at
    #          0.101 for muon 1.
    mu_eta = ak.Array([[0.0, 1.0], [0.5, -0.5], [2.0, 0.0], [0.0, 1.0]])
    mu_phi = ak.Array([[0.0, 1.0], [0.0, 0.0], [3.11, 0.0], [0.0, 0.0]])
    obj_id = ak.Array([[13, 11, 13], [], [13, 13], [13, 13]])
    obj_bits = ak.Array([[10, 10, 8], [], [10, 10], [26, 10]])
    obj_eta = ak.Array([[0.03, 1.0, 1.0], [], [2.0, 0.3], [0.099, 1.101]])
    obj_phi = ak.Array([[0.04, 1.0, 1.0], [], [-3.113185307, 0.0], [0.0, 0.0]])
    matched, dr = match_trigger_objects(mu_eta, mu_phi, obj_id, obj_bits, obj_eta, obj_phi)
    assert ak.to_list(matched) == [[True, False], [False, False], [True, False], [True, False]]
    dr = ak.to_list(dr)
    assert dr[0][0] == pytest.approx(0.05)
    assert dr[0][1] == pytest.approx(np.hypot(0.97, 0.96))  # the only good object is muon 0's
    assert dr[1] == [np.inf, np.inf]
    assert dr[2][0] == pytest.approx(0.06, abs=1e-6)
    assert dr[2][1] == pytest.approx(0.3)
    assert dr[3][0] == pytest.approx(0.099) and dr[3][1] == pytest.approx(0.101)
    assert MAX_DR == 0.1


def test_emulation_is_the_generators_trigger_muon():
    tight_id = np.array([[True, True], [False, True], [False, False], [True, False]])
    hlt = np.array([True, True, True, False])
    assert emulated_match(tight_id, hlt).tolist() == [
        [True, False],
        [False, True],
        [False, False],
        [False, False],
    ]


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    out = tmp_path_factory.mktemp("real") / "datasets.yaml"
    out.write_text(
        "datasets:\n"
        f"  data: {{process: Data, is_data: true, files: [{NANO / 'nano_dimuon.root'}]}}\n"
        f"  zmumu: {{process: Zmumu, is_data: false, files: [{NANO / 'nano_dy.root'}]}}\n"
    )
    fileset = load_datasets(out)
    return {name: read_dimuons(fileset[name]) for name in ("data", "zmumu")}


@pytest.mark.parametrize("name", ["data", "zmumu"])
def test_real_files_are_matched_with_trigger_objects(real, name):
    pairs = real[name]
    assert pairs.trigobj.all()  # both files have TrigObj_*
    matched = pairs.trig_match
    assert matched.any(), "some muon of the real file is matched"
    assert np.all(pairs.trig_dr[matched] < MAX_DR)
    assert np.all(matched <= pairs.hlt[:, None])  # only in events that fired
    # the idip tags are the matched leading muons
    probes = select_probes(pairs, "idip")
    tags = matched[:, 0] & pairs.tight[:, 0]
    assert len(probes.mass) <= tags.sum()
    assert len(probes.mass) >= 1
    # trigger probes: the tag is matched, the probe passes only if it is matched too
    trig = select_probes(pairs, "trigger")
    assert trig.passed.sum() <= (matched[:, 0] & matched[:, 1]).sum()


def test_generated_files_use_the_emulation(tmp_path):
    from analysis.generate import generate_samples

    yaml = generate_samples(tmp_path / "s", events=4000, seed=3, processes=["zmumu"])
    pairs = read_dimuons(load_datasets(yaml)["zmumu"])
    assert not pairs.trigobj.any() and np.isnan(pairs.trig_dr).all()
    assert np.array_equal(pairs.trig_match, emulated_match(pairs.tight_id, pairs.hlt))
